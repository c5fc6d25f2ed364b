//! Every timeout and size limit of the lab, in one place.

use std::time::Duration;

/// Longest delay a scenario may configure (DNS delay, HTTP delay, greeting delay).
pub const MAX_CONFIGURED_DELAY: Duration = Duration::from_secs(600);
/// Largest policy body the lab will generate (`oversize.bytes`).
pub const MAX_POLICY_BODY: usize = 16 * 1024 * 1024;
/// Most backends one SMTP host may have.
pub const MAX_BACKENDS_PER_HOST: usize = 16;

/// Time allowed for a client to send its TLS ClientHello.
pub const CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest ClientHello the policy listener reads before giving up.
pub const MAX_CLIENT_HELLO: usize = 64 * 1024;
/// Time allowed for a TLS handshake (HTTPS and STARTTLS).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `block = "hang"` policy host holds a connection before closing it.
pub const HANG_LIMIT: Duration = Duration::from_secs(120);
/// Time allowed for a client to send an HTTP request head.
pub const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest HTTP request head accepted (policy hosts and the control API).
pub const MAX_HTTP_HEAD: usize = 16 * 1024;
/// Largest request body the control API accepts.
pub const MAX_CONTROL_BODY: usize = 4 * 1024 * 1024;
/// Longest a single HTTPS or control connection may live.
pub const HTTP_CONNECTION_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Time the SMTP server waits for the next command line.
pub const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest SMTP command line accepted (RFC 5321 says 512; be generous).
pub const SMTP_MAX_LINE: usize = 4096;
/// Largest message accepted in DATA.
pub const SMTP_MAX_MESSAGE: usize = 32 * 1024 * 1024;
/// Time allowed for the whole DATA transfer.
pub const SMTP_DATA_TIMEOUT: Duration = Duration::from_secs(300);
/// Most commands one SMTP session may send before the server closes it.
pub const SMTP_MAX_COMMANDS: usize = 1000;

/// Idle timeout of a DNS-over-TCP connection.
pub const DNS_TCP_IDLE: Duration = Duration::from_secs(10);
/// Longest CNAME chain the DNS server follows inside one answer.
pub const MAX_CNAME_CHAIN: usize = 8;

/// Entries kept in each log (DNS queries, policy fetches, SMTP sessions); oldest dropped.
pub const MAX_LOG_ENTRIES: usize = 100_000;
/// Messages kept in the in-memory store; oldest dropped.
pub const MAX_STORED_MESSAGES: usize = 10_000;

/// Attempts at binding a world's sockets on fresh random addresses/ports.
pub const BIND_ATTEMPTS: usize = 32;
/// Time allowed for a world to start (certificates, sockets).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Time allowed for a world's servers to stop.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
