//! # mtasts-postfix
//!
//! What Postfix speaks to an MTA-STS policy map, sans-IO: the socketmap protocol
//! (`socketmap_table(5)`: netstrings, requests, replies) and the `smtp_tls_policy_maps`
//! reply forms, built from the decisions of [`mtasts_core`]. Kept out of the RFC core
//! because it is Postfix's interface, not a standard's; `mtasts-daemon` serves it over
//! sockets.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod socketmap;
