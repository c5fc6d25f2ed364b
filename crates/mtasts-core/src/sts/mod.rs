//! RFC 8461 MTA Strict Transport Security: the `_mta-sts` TXT record (§3.1), the policy file
//! (§3.2), the rules for the policy fetch response (§3.3), MX pattern matching (§4.1), and the
//! policy host's decisions (`publish`: the id, promotion, retirement; §3.1, §5, §8).

pub mod apply;
pub mod cache;
pub mod fetch;
pub mod mx;
pub mod policy;
pub mod publish;
pub mod record;
