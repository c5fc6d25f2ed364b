//! Changes to a running world, shared by the Rust API ([`crate::World::apply`]) and the control
//! API (`POST /v1/mutate`, the same JSON).

use serde::{Deserialize, Serialize};

use crate::scenario::{BlockMode, CertSpec, DnsNameSpec, HostSpec, PolicySpec, StarttlsMode};

/// One change to a running world. JSON form: `{"op": "set-dns", "name": ..., "set": {...}}`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Mutation {
    /// Change records or behaviour of a DNS name: every field present in `set` replaces that
    /// aspect (`txt = []` removes the TXT records, `fault = "none"` clears a fault,
    /// `cname = ""` removes a CNAME); absent fields stay as they are. Creates the name if
    /// needed.
    SetDns {
        /// Absolute name.
        name: String,
        /// What to change.
        set: DnsNameSpec,
    },
    /// Remove a name and all its records (queries then get NXDOMAIN).
    RemoveName {
        /// Absolute name.
        name: String,
    },
    /// Publish or replace the policy host of a domain (body, HTTP behaviour, TLS, cert).
    /// Adds the `mta-sts.<domain>` A record if the name has none.
    SetPolicy {
        /// The policy domain.
        domain: String,
        /// The new behaviour.
        policy: PolicySpec,
    },
    /// Take the policy host away: its SNI is no longer recognised (TLS handshake failure)
    /// and its A record is removed.
    RemovePolicy {
        /// The policy domain.
        domain: String,
    },
    /// Make the policy host reset or stall connections (`"none"` serves again).
    BlockPolicyHost {
        /// The policy domain.
        domain: String,
        /// The block mode.
        block: BlockMode,
    },
    /// Replace an SMTP host's behaviour and certificate. The number of backends cannot change
    /// while the world runs.
    SetHost {
        /// The host name.
        name: String,
        /// The new behaviour.
        host: HostSpec,
    },
    /// Change STARTTLS behaviour of every backend of an SMTP host (e.g. `"strip"`).
    SetStarttls {
        /// The host name.
        name: String,
        /// The new mode.
        mode: StarttlsMode,
    },
    /// Issue a new certificate for an SMTP host (all backends) or a policy host
    /// (`mta-sts.<domain>`).
    SetCert {
        /// The host name.
        name: String,
        /// The certificate.
        cert: CertSpec,
    },
    /// Forget all logged DNS queries, policy fetches, SMTP sessions and stored messages.
    ClearLogs,
}
