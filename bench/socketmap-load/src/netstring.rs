//! Netstrings (`<length>:<payload>,`), the framing of the Postfix socketmap protocol
//! (socketmap_table(5)).

use std::fmt;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The most digits a length may have (enough for any reply Postfix accepts).
const MAX_LENGTH_DIGITS: usize = 10;

/// Encode `payload` as a netstring.
pub(crate) fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 12);
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(payload);
    out.push(b',');
    out
}

/// Why a reply could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the connection before a reply started.
    Closed,
    /// The connection failed, or closed in the middle of a reply.
    Io(std::io::Error),
    /// The bytes are not a netstring, or it is longer than allowed.
    Malformed(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Closed => write!(f, "connection closed by the server"),
            ReadError::Io(e) => write!(f, "i/o error: {e}"),
            ReadError::Malformed(m) => write!(f, "malformed netstring: {m}"),
        }
    }
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Read one netstring from `r` into `payload` (replacing its contents). Rejects a length over
/// `max_len`, a non-digit before `:`, and a missing `,` terminator.
pub(crate) async fn read<R: AsyncBufRead + Unpin>(
    r: &mut R,
    payload: &mut Vec<u8>,
    max_len: usize,
) -> Result<(), ReadError> {
    let mut len: usize = 0;
    let mut digits = 0usize;
    loop {
        let byte = {
            let buf = r.fill_buf().await?;
            match buf.first() {
                Some(b) => *b,
                None if digits == 0 => return Err(ReadError::Closed),
                None => {
                    return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
            }
        };
        r.consume(1);
        match byte {
            b'0'..=b'9' => {
                digits += 1;
                if digits > MAX_LENGTH_DIGITS {
                    return Err(ReadError::Malformed("length has too many digits".into()));
                }
                len = len * 10 + usize::from(byte - b'0');
            }
            b':' if digits > 0 => break,
            other => {
                return Err(ReadError::Malformed(format!(
                    "unexpected byte 0x{other:02x} in the length"
                )));
            }
        }
    }
    if len > max_len {
        return Err(ReadError::Malformed(format!(
            "length {len} is over the limit {max_len}"
        )));
    }
    payload.clear();
    payload.resize(len, 0);
    r.read_exact(payload).await?;
    let mut term = [0u8; 1];
    r.read_exact(&mut term).await?;
    if term[0] != b',' {
        return Err(ReadError::Malformed(format!(
            "terminator is 0x{:02x}, not ','",
            term[0]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Vec<u8>, ReadError> {
        let mut r = tokio::io::BufReader::new(bytes);
        let mut out = Vec::new();
        read(&mut r, &mut out, 100).await.map(|()| out)
    }

    #[test]
    fn encode_matches_the_spec() {
        assert_eq!(encode(b"postfix a.test"), b"14:postfix a.test,");
        assert_eq!(encode(b""), b"0:,");
    }

    #[tokio::test]
    async fn reads_replies_and_rejects_garbage() {
        assert_eq!(
            parse(b"9:NOTFOUND ,").await.ok(),
            Some(b"NOTFOUND ".to_vec())
        );
        assert_eq!(parse(b"0:,").await.ok(), Some(Vec::new()));
        assert!(matches!(parse(b"").await, Err(ReadError::Closed)));
        assert!(matches!(
            parse(b"3:abc;").await,
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"x:abc,").await,
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            parse(b":abc,").await,
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(parse(b"101:").await, Err(ReadError::Malformed(_))));
        assert!(matches!(parse(b"5:ab").await, Err(ReadError::Io(_))));
        assert!(matches!(
            parse(b"99999999999:").await,
            Err(ReadError::Malformed(_))
        ));
    }
}
