//! The state kept on disk, in one directory:
//!
//! ```text
//! DIR/                           0700
//!   account-<hash>.json          0600  the ACME account (its id, URL and private key) for the
//!                                      directory URL whose SHA-256 starts with <hash>
//!   certs/                       0700
//!     <name>.pem                 0600  the certificate's private key (PKCS#8) and its chain,
//!                                      leaf first, in one file so they change together
//! ```
//!
//! Every file is written atomically: a temporary file in the same directory (created 0600),
//! written, synced, renamed over the old one, and the directory synced; a crash leaves the old
//! file or the new one, never half of either, and the key and chain of a certificate never
//! disagree.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::Digest;

use crate::AcmeError;

/// The largest account file read (it is a few hundred bytes).
const MAX_ACCOUNT_FILE_BYTES: u64 = 64 * 1024;

/// The storage directory.
#[derive(Clone, Debug)]
pub struct Storage {
    dir: PathBuf,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> AcmeError {
    AcmeError::Storage {
        what: what.to_owned(),
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

impl Storage {
    /// The directory `dir`, created (0700) with `certs/` if missing.
    pub fn open(dir: &Path) -> Result<Storage, AcmeError> {
        for d in [dir.to_path_buf(), dir.join("certs")] {
            if !d.is_dir() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&d)
                    .map_err(|e| io_error("create the directory", &d, e))?;
            }
        }
        Ok(Storage {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The account file for the ACME directory `directory_url`.
    pub fn account_path(&self, directory_url: &str) -> PathBuf {
        let digest = sha2::Sha256::digest(directory_url.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("account-{hex}.json"))
    }

    /// The certificate file (key and chain) of `name` (a validated DNS name, see
    /// [`crate::valid_name`]).
    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.dir.join("certs").join(format!("{name}.pem"))
    }

    /// The stored account of `directory_url`, if there is one.
    pub fn read_account(&self, directory_url: &str) -> Result<Option<Vec<u8>>, AcmeError> {
        use std::io::Read;
        let path = self.account_path(directory_url);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read the account", &path, e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_ACCOUNT_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_error("read the account", &path, e))?;
        if bytes.len() as u64 > MAX_ACCOUNT_FILE_BYTES {
            return Err(AcmeError::Storage {
                what: "read the account".into(),
                path: path.display().to_string(),
                detail: format!("larger than {MAX_ACCOUNT_FILE_BYTES} bytes"),
            });
        }
        Ok(Some(bytes))
    }

    /// Stores the account of `directory_url`.
    pub fn write_account(&self, directory_url: &str, json: &[u8]) -> Result<(), AcmeError> {
        write_atomic(&self.account_path(directory_url), json)
    }

    /// Stores the certificate of `name`: its private key (PEM) and chain (PEM).
    pub fn write_cert(&self, name: &str, key_pem: &str, chain_pem: &str) -> Result<(), AcmeError> {
        let mut both = String::with_capacity(key_pem.len() + chain_pem.len() + 1);
        both.push_str(key_pem);
        if !both.ends_with('\n') {
            both.push('\n');
        }
        both.push_str(chain_pem);
        write_atomic(&self.cert_path(name), both.as_bytes())
    }
}

/// Writes `bytes` to `path` atomically, the file 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AcmeError> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_error("create", &tmp, e))?;
        // The mode of `open` is masked by the umask; 0600 is what is meant.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error("chmod", &tmp, e))?;
        f.write_all(bytes).map_err(|e| io_error("write", &tmp, e))?;
        f.sync_all().map_err(|e| io_error("sync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_error("rename into place", path, e))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn files_are_written_0600_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(&dir.path().join("acme")).unwrap();
        assert_eq!(
            std::fs::metadata(s.dir()).unwrap().mode() & 0o777,
            0o700,
            "the storage directory"
        );
        s.write_account("https://acme.test/dir", b"{\"a\":1}")
            .unwrap();
        s.write_account("https://acme.test/dir", b"{\"a\":2}")
            .unwrap();
        let path = s.account_path("https://acme.test/dir");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":2}");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        s.write_cert("mta-sts.example.com", "KEY", "CHAIN\n")
            .unwrap();
        let cert = s.cert_path("mta-sts.example.com");
        assert_eq!(std::fs::read_to_string(&cert).unwrap(), "KEY\nCHAIN\n");
        assert_eq!(std::fs::metadata(&cert).unwrap().mode() & 0o777, 0o600);
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(s.dir().join("certs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["mta-sts.example.com.pem".to_owned()]);
    }

    #[test]
    fn accounts_of_different_directories_are_kept_apart() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        assert_ne!(
            s.account_path("https://staging.test/dir"),
            s.account_path("https://production.test/dir")
        );
        assert_eq!(s.read_account("https://staging.test/dir").unwrap(), None);
    }
}
