//! The accept loop every lab listener shares.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The next connection, or `None` once `stop` is cancelled. Transient accept errors
/// (EMFILE, ECONNABORTED...) are retried after a short back-off.
pub(crate) async fn next_connection(
    listener: &TcpListener,
    stop: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => return Some(x),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            () = stop.cancelled() => return None,
        }
    }
}
