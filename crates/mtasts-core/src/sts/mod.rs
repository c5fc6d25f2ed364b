//! RFC 8461 MTA Strict Transport Security: the `_mta-sts` TXT record (§3.1), the policy file
//! (§3.2), the rules for the policy fetch response (§3.3) and MX pattern matching (§4.1).

pub mod apply;
pub mod cache;
pub mod fetch;
pub mod mx;
pub mod policy;
pub mod record;
