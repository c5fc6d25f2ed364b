//! The policies served: from the configuration (`[domains."<domain>"]`) and from the policy
//! directory (`<domain>.txt`), each linted by the core at load. A policy with an error is
//! refused with the linter's findings, and the one served before for its domain (if any)
//! stays served.
//!
//! The text served is the policy's canonical text ([`Policy::to_text`]), the same text its id
//! is derived from ([`policy_id`]), so the id always names exactly what senders receive.
//!
//! The directory is read without following anything out of it: only regular files named
//! `<domain>.txt` (the domain in lower case, as A-labels), or symbolic links whose target
//! resolves inside the directory; anything else is skipped with a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtasts_core::sts::policy::{Policy, lint_policy};
use mtasts_core::sts::publish::policy_id;

use crate::config::Config;

/// The suffix of policy files.
pub const POLICY_SUFFIX: &str = ".txt";

/// Where a policy came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `[domains."<domain>"]` of the configuration file.
    Config,
    /// A file of the policy directory.
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Config => f.write_str("the configuration file"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One policy served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The policy.
    pub policy: Policy,
    /// Its canonical text: the response body.
    pub text: String,
    /// Its id (RFC 8461 §3.1), derived from `text`.
    pub id: String,
    /// Where it came from.
    pub origin: Origin,
}

impl Served {
    /// A policy to serve.
    pub fn new(policy: Policy, origin: Origin) -> Served {
        Served {
            text: policy.to_text(),
            id: policy_id(&policy),
            policy,
            origin,
        }
    }
}

/// A policy refused at load, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The domain.
    pub domain: String,
    /// Where.
    pub origin: String,
    /// The linter's errors (or why the file could not be read), one a line.
    pub problems: Vec<String>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the policy of {} is refused: {}",
            self.origin,
            self.domain,
            self.problems.join("; ")
        )
    }
}

/// What a load found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The policies to serve, by domain.
    pub served: BTreeMap<String, Served>,
    /// The policies refused (each keeps its previous one, when there is one).
    pub refused: Vec<Refused>,
    /// Files of the policy directory skipped (not `<domain>.txt`, or leading out of it).
    pub skipped: Vec<String>,
}

/// Lints and parses a policy's text.
pub fn parse(text: &[u8]) -> Result<Policy, Vec<String>> {
    let mut lint = lint_policy(text);
    match lint.policy.take() {
        Some(p) if lint.errors.is_empty() => Ok(p),
        _ => Err(lint.errors.iter().map(ToString::to_string).collect()),
    }
}

/// The domain a policy file's name is for, when it is `<domain>.txt` with the domain in lower
/// case as A-labels.
pub fn domain_of_file_name(name: &str) -> Option<String> {
    let stem = name.strip_suffix(POLICY_SUFFIX)?;
    match mtasts_core::domain::to_a_label(stem) {
        Ok(a) if a == stem && !stem.ends_with('.') => Some(a),
        _ => None,
    }
}

/// The path of `domain`'s policy file in `dir`.
pub fn file_of(dir: &Path, domain: &str) -> PathBuf {
    dir.join(format!("{domain}{POLICY_SUFFIX}"))
}

/// Reads a policy file of the directory, refusing what leads out of it.
fn read_in_dir(dir: &Path, canonical_dir: &Path, path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve: {e}"))?;
        if !target.starts_with(canonical_dir) {
            return Err(format!(
                "a symbolic link to {}, outside {}",
                target.display(),
                dir.display()
            ));
        }
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    if meta.len() > max {
        return Err(format!(
            "{} bytes, over max_policy_bytes = {max}",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

/// Loads every policy of `config`. `previous` supplies the policy kept for a domain whose new
/// one is refused. Only an unreadable policy directory is an error.
pub fn load(config: &Config, previous: &BTreeMap<String, Served>) -> Result<Loaded, String> {
    let mut out = Loaded::default();
    let refuse = |out: &mut Loaded, domain: &str, origin: String, problems: Vec<String>| {
        if let Some(p) = previous.get(domain) {
            out.served.insert(domain.to_owned(), p.clone());
        }
        out.refused.push(Refused {
            domain: domain.to_owned(),
            origin,
            problems,
        });
    };
    for (domain, d) in &config.domains {
        match parse(d.policy.as_bytes()) {
            Ok(p) => {
                out.served
                    .insert(domain.clone(), Served::new(p, Origin::Config));
            }
            Err(problems) => refuse(
                &mut out,
                domain,
                format!("the configuration file, domains.{domain}.policy"),
                problems,
            ),
        }
    }
    if let Some(dir) = &config.policy_dir {
        let canonical =
            std::fs::canonicalize(dir).map_err(|e| format!("policy_dir {}: {e}", dir.display()))?;
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("policy_dir {}: {e}", dir.display()))?;
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("policy_dir {}: {e}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                out.skipped
                    .push(format!("{}: not a UTF-8 name", entry.path().display()));
                continue;
            };
            if !name.ends_with(POLICY_SUFFIX) {
                // State files (`<domain>.retirement.json`) and the like.
                continue;
            }
            match domain_of_file_name(name) {
                Some(domain) => files.push((domain, entry.path())),
                None => out.skipped.push(format!(
                    "{}: not <domain>.txt with the domain in lower case and A-labels",
                    entry.path().display()
                )),
            }
        }
        files.sort();
        for (domain, path) in files {
            let origin = path.display().to_string();
            if config.domains.contains_key(&domain) {
                out.refused.push(Refused {
                    domain: domain.clone(),
                    origin,
                    problems: vec!["the domain's policy is also given in the configuration file, which is served".to_owned()],
                });
                continue;
            }
            match read_in_dir(dir, &canonical, &path, config.max_policy_bytes) {
                Err(why) => {
                    if why.contains("outside") || why.contains("not a regular file") {
                        out.skipped.push(format!("{origin}: {why}"));
                    } else {
                        refuse(&mut out, &domain, origin, vec![why]);
                    }
                }
                Ok(bytes) => match parse(&bytes) {
                    Ok(p) => {
                        out.served
                            .insert(domain, Served::new(p, Origin::File(path)));
                    }
                    Err(problems) => refuse(&mut out, &domain, origin, problems),
                },
            }
        }
    }
    Ok(out)
}

/// Writes `text` to `path` atomically (a temporary file beside it, then a rename), so that
/// the server never reads half a file.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_domains_in_a_labels() {
        assert_eq!(
            domain_of_file_name("example.com.txt").as_deref(),
            Some("example.com")
        );
        for bad in [
            "Example.com.txt",
            "../etc.txt",
            "a/b.txt",
            "example.com",
            ".txt",
            "exa mple.com.txt",
            "example.com..txt",
        ] {
            assert_eq!(domain_of_file_name(bad), None, "{bad}");
        }
    }
}
