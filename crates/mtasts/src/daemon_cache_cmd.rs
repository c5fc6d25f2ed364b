//! `mtasts daemon cache list|show|forget`: a running daemon's cache, through its admin socket
//! (`mtasts_daemon::admin`). The daemon answers with JSON documents; `--json` prints them as
//! they came, the text form is rendered here.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use mtasts_core::text::escape;
use mtasts_daemon::admin::{self, ForgetDocument, ListDocument, ListEntry, Request, ShowDocument};
use mtasts_daemon::config::DEFAULT_ADMIN_SOCKET;

use crate::{EXIT_FINDINGS, EXIT_OK, EXIT_TROUBLE};

/// The warning of `forget`, in its `--help` and, word for word, in docs/daemon.md.
macro_rules! forget_warning {
    () => {
        "Forgetting removes the protection against a downgrade that a cached policy gives \
         (RFC 8461 §5.1, §10.2): until the policy is fetched again, an attacker who blocks its \
         discovery (the _mta-sts TXT lookup or the HTTPS fetch) makes the domain look as if it \
         had no policy, and mail to it goes out without validated TLS. Forget a domain to pick \
         up a changed policy at once (its owner changed it without changing the id, or \
         published a policy by mistake), not to work around a delivery failure."
    };
}

#[cfg(test)]
const FORGET_WARNING: &str = forget_warning!();

#[derive(Subcommand)]
pub(crate) enum CacheCommand {
    /// One line per cached domain: state, mode, policy id, fetched/expires times, next
    /// refresh, where it is held; then the DANE assessments in memory
    List(ListArgs),
    /// One domain's entry in full, and what the daemon would answer for it now
    Show(ShowArgs),
    /// Remove domains' entries from memory and from the store, so that the next request
    /// fetches afresh (this removes the downgrade protection of a cached policy)
    #[command(long_about = concat!(
        "Remove domains' entries from memory and from the store, so that the next request \
         fetches afresh.\n\n\
         Removes each DOMAIN's entry from the daemon's memory and from its persistent store \
         (SQLite or Redis), and its DANE assessment, and says whether there was one. With a \
         Redis store shared by a fleet, the other daemons keep their copy in memory until it \
         expires or they are told to forget it too.\n\n\
         WARNING: ",
        forget_warning!()
    ))]
    Forget(ForgetArgs),
}

/// How to reach the daemon, and the output form: every `cache` command's options.
#[derive(Args)]
pub(crate) struct AdminArgs {
    /// The daemon's admin socket [default: the `admin` socket of --config, else
    /// /run/mtasts/admin.sock]
    #[arg(long, value_name = "PATH")]
    admin: Option<PathBuf>,
    /// The daemon's configuration file, to find its admin socket
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Seconds to wait for the connection and the answer (1-3600)
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// Print the daemon's JSON document instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct ListArgs {
    /// At most N domains (the total is still given) [default: all]
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Args)]
pub(crate) struct ShowArgs {
    /// The policy domain
    #[arg(value_name = "DOMAIN")]
    domain: String,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Args)]
pub(crate) struct ForgetArgs {
    /// The policy domains
    #[arg(required = true, value_name = "DOMAIN")]
    domains: Vec<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

/// The socket: `--admin`, else the `admin` of `--config`, else [`DEFAULT_ADMIN_SOCKET`].
fn socket(a: &AdminArgs) -> Result<PathBuf, String> {
    if let Some(p) = &a.admin {
        return Ok(p.clone());
    }
    let Some(config) = &a.config else {
        return Ok(PathBuf::from(DEFAULT_ADMIN_SOCKET));
    };
    let c =
        mtasts_daemon::Config::load(config).map_err(|e| format!("{e} (or give --admin PATH)"))?;
    match c.admin {
        Some(s) => Ok(s.path().to_path_buf()),
        None => Err(format!(
            "{}: no admin socket is configured: add `admin = {{ unix = \"{DEFAULT_ADMIN_SOCKET}\" }}` \
             and restart the daemon, or give --admin PATH",
            config.display()
        )),
    }
}

/// Sends `request` and returns the socket and the answer, or prints why not.
fn ask(
    name: &str,
    a: &AdminArgs,
    request: &Request,
    err: &mut dyn Write,
) -> Option<(PathBuf, serde_json::Value)> {
    let path = match socket(a) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "mtasts daemon cache {name}: {e}");
            return None;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                err,
                "mtasts daemon cache {name}: cannot start the runtime: {e}"
            );
            return None;
        }
    };
    let timeout = Duration::from_secs(a.timeout);
    match rt.block_on(admin::request(&path, request, timeout)) {
        Ok(v) => Some((path, v)),
        Err(e) => {
            let _ = writeln!(err, "mtasts daemon cache {name}: {e}");
            None
        }
    }
}

fn print_json(out: &mut dyn Write, v: &serde_json::Value) {
    let _ = serde_json::to_writer_pretty(&mut *out, v);
    let _ = writeln!(out);
}

fn decoded<T: admin::Document>(
    name: &str,
    path: &std::path::Path,
    v: serde_json::Value,
    err: &mut dyn Write,
) -> Option<T> {
    match admin::decode::<T>(path, v) {
        Ok(d) => Some(d),
        Err(e) => {
            let _ = writeln!(err, "mtasts daemon cache {name}: {e}");
            None
        }
    }
}

/// Runs one `mtasts daemon cache` command.
pub(crate) fn cache(c: &CacheCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match c {
        CacheCommand::List(a) => list(a, out, err),
        CacheCommand::Show(a) => show(a, out, err),
        CacheCommand::Forget(a) => forget(a, out, err),
    }
}

/// `list`: 0, or 2 when the daemon could not be asked or its store could not be read.
fn list(a: &ListArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some((path, v)) = ask("list", &a.admin, &Request::List { limit: a.limit }, err) else {
        return EXIT_TROUBLE;
    };
    let json = a.admin.json.then(|| v.clone());
    let Some(doc) = decoded::<ListDocument>("list", &path, v, err) else {
        return EXIT_TROUBLE;
    };
    match json {
        Some(v) => print_json(out, &v),
        None => {
            let _ = write_list(out, &doc);
        }
    }
    if doc.truncated {
        let _ = writeln!(
            err,
            "mtasts daemon cache list: {} of {} domains shown (--limit)",
            doc.entries.len(),
            doc.total
        );
    }
    match &doc.store_error {
        Some(e) => {
            let _ = writeln!(
                err,
                "mtasts daemon cache list: the {} store could not be read, only the entries in \
                 memory are listed: {}",
                doc.store_backend,
                escape(e)
            );
            EXIT_TROUBLE
        }
        None => EXIT_OK,
    }
}

fn held(memory: bool, store: bool) -> &'static str {
    match (memory, store) {
        (true, true) => "memory, store",
        (true, false) => "memory",
        (false, true) => "store",
        (false, false) => "-",
    }
}

/// When the answer the entry gives stops: the policy's expiry, else the negative answer's.
fn expires(e: &ListEntry) -> &str {
    e.expires_at
        .as_deref()
        .or(e.negative_until.as_deref())
        .unwrap_or("-")
}

fn write_list(out: &mut dyn Write, doc: &ListDocument) -> std::io::Result<()> {
    if doc.entries.is_empty() {
        writeln!(out, "no domain cached ({} store)", doc.store_backend)?;
    } else {
        let header = [
            "DOMAIN",
            "STATE",
            "MODE",
            "ID",
            "FETCHED",
            "EXPIRES",
            "NEXT REFRESH",
            "HELD",
        ];
        let rows: Vec<[String; 8]> = doc
            .entries
            .iter()
            .map(|e| {
                let refresh = match (&e.refresh_at, e.refresh_due) {
                    (Some(t), true) => format!("{t} (due)"),
                    (Some(t), false) => t.clone(),
                    (None, _) => "-".to_owned(),
                };
                [
                    e.domain.clone(),
                    e.state.as_str().to_owned(),
                    e.mode.clone().unwrap_or_else(|| "-".into()),
                    e.policy_id.clone().unwrap_or_else(|| "-".into()),
                    e.fetched_at.clone().unwrap_or_else(|| "-".into()),
                    expires(e).to_owned(),
                    refresh,
                    held(e.memory, e.store).to_owned(),
                ]
            })
            .collect();
        let mut width = header.map(str::len);
        for r in &rows {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[&str]| -> String {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    s.push_str(&format!("{cell:<w$}  "));
                }
            }
            s
        };
        writeln!(out, "{}", line(&header))?;
        for r in &rows {
            let owned: Vec<String> = r.iter().map(|c| escape(c).into_owned()).collect();
            let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
            writeln!(out, "{}", line(&refs))?;
        }
        writeln!(
            out,
            "{} domain{} cached ({} store)",
            doc.total,
            if doc.total == 1 { "" } else { "s" },
            doc.store_backend
        )?;
    }
    for d in &doc.dane {
        writeln!(
            out,
            "DANE  {}  {}  until {}",
            escape(&d.domain),
            d.decision,
            d.expires_at
        )?;
    }
    Ok(())
}

/// `show`: 0 when the domain is cached, 1 when not, 2 when the daemon could not be asked or
/// its store could not be read.
fn show(a: &ShowArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let request = Request::Show {
        domain: a.domain.clone(),
    };
    let Some((path, v)) = ask("show", &a.admin, &request, err) else {
        return EXIT_TROUBLE;
    };
    let json = a.admin.json.then(|| v.clone());
    let Some(doc) = decoded::<ShowDocument>("show", &path, v, err) else {
        return EXIT_TROUBLE;
    };
    match json {
        Some(v) => print_json(out, &v),
        None => {
            let _ = write_show(out, &doc);
        }
    }
    if let Some(e) = &doc.store_error {
        let _ = writeln!(
            err,
            "mtasts daemon cache show: the {} store could not be read: {}",
            doc.store_backend,
            escape(e)
        );
        return EXIT_TROUBLE;
    }
    if doc.found { EXIT_OK } else { EXIT_FINDINGS }
}

fn write_show(out: &mut dyn Write, doc: &ShowDocument) -> std::io::Result<()> {
    let where_held = match (doc.memory, doc.store) {
        (true, true) => format!("in memory and in the {} store", doc.store_backend),
        (true, false) => "in memory".to_owned(),
        (false, true) => format!("in the {} store", doc.store_backend),
        (false, false) => String::new(),
    };
    let (Some(state), Some(e)) = (doc.state, &doc.entry) else {
        writeln!(
            out,
            "{}: not cached (nothing in memory or in the {} store): the next request looks it up",
            escape(&doc.domain),
            doc.store_backend
        )?;
        return write_dane(out, doc);
    };
    let mode = e
        .policy
        .as_ref()
        .map(|p| format!(" (mode {})", p.mode))
        .unwrap_or_default();
    writeln!(
        out,
        "{}: {}{mode}, held {where_held}",
        escape(&doc.domain),
        state.as_str()
    )?;
    writeln!(
        out,
        "  answer now    {}: {}",
        doc.answer.decision,
        escape(&doc.answer.explanation)
    )?;
    let width = doc
        .answer
        .replies
        .iter()
        .map(|r| r.map.chars().count())
        .max()
        .unwrap_or(0);
    for r in &doc.answer.replies {
        let reply = r
            .reply
            .as_deref()
            .map_or_else(|| "(looked up first)".into(), escape);
        writeln!(out, "  reply         {:<width$}  {reply}", escape(&r.map))?;
    }
    if let Some(p) = &e.policy {
        writeln!(
            out,
            "  policy        id {}, mode {}, max_age {} s, {}",
            escape(&p.id),
            p.mode,
            p.max_age,
            if p.valid { "valid" } else { "expired" }
        )?;
        if !p.mx.is_empty() {
            writeln!(out, "  mx patterns   {}", escape(&p.mx.join(", ")))?;
        }
        writeln!(
            out,
            "  fetched       {} (or last confirmed by an unchanged id)",
            p.fetched_at
        )?;
        writeln!(out, "  expires       {}", p.expires_at)?;
    }
    if let Some(t) = &e.refresh_at {
        let due = if e.refresh_due { " (due now)" } else { "" };
        writeln!(out, "  next refresh  {t}{due}")?;
    }
    writeln!(out, "  checked       {} (the TXT record)", e.checked_at)?;
    writeln!(out, "  kept until    {}", e.kept_until)?;
    if let Some(n) = &e.negative {
        writeln!(
            out,
            "  negative      {} until {}: {}",
            n.kind,
            n.until,
            escape(&n.reason)
        )?;
    }
    if let Some(f) = &e.failed_fetch {
        writeln!(
            out,
            "  last failure  the fetch for id {} failed at {}: {}",
            escape(&f.id),
            f.at,
            escape(&f.reason)
        )?;
    }
    write_dane(out, doc)?;
    if let Some(p) = &e.policy {
        for (i, l) in p.text.lines().enumerate() {
            let label = if i == 0 { "policy text" } else { "" };
            writeln!(out, "  {label:<12}  {}", escape(l.trim_end_matches('\r')))?;
        }
    }
    Ok(())
}

fn write_dane(out: &mut dyn Write, doc: &ShowDocument) -> std::io::Result<()> {
    if let Some(d) = &doc.dane {
        writeln!(
            out,
            "  DANE          {}, looked up {}, until {}",
            d.decision, d.checked_at, d.expires_at
        )?;
    }
    Ok(())
}

/// `forget`: 0 when every domain had an entry, 1 when some had none (each is said), 2 when
/// the daemon could not be asked or a store entry could not be removed.
fn forget(a: &ForgetArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let request = Request::Forget {
        domains: a.domains.clone(),
    };
    let Some((path, v)) = ask("forget", &a.admin, &request, err) else {
        return EXIT_TROUBLE;
    };
    let json = a.admin.json.then(|| v.clone());
    let Some(doc) = decoded::<ForgetDocument>("forget", &path, v, err) else {
        return EXIT_TROUBLE;
    };
    if let Some(v) = json {
        print_json(out, &v);
    }
    let mut missing = false;
    let mut failed = false;
    for f in &doc.forgotten {
        if !a.admin.json {
            if f.existed {
                let what = match (&f.state, &f.mode, &f.policy_id) {
                    (Some(s), Some(m), Some(id)) => {
                        format!("{} (mode {m}, id {})", s.as_str(), escape(id))
                    }
                    (Some(s), _, _) => s.as_str().to_owned(),
                    (None, _, _) => "a DANE assessment only".to_owned(),
                };
                let mut from = Vec::new();
                if f.memory {
                    from.push("memory".to_owned());
                }
                if f.store {
                    from.push(format!("the {} store", doc.store_backend));
                }
                if f.dane {
                    from.push("the DANE cache".to_owned());
                }
                let from = match from.split_last() {
                    None => String::new(),
                    Some((last, [])) => format!("; removed from {last}"),
                    Some((last, rest)) => format!("; removed from {} and {last}", rest.join(", ")),
                };
                let _ = writeln!(out, "{}: forgotten, was {what}{from}", escape(&f.domain));
            } else {
                let _ = writeln!(out, "{}: not cached, nothing to forget", escape(&f.domain));
            }
        }
        missing |= !f.existed;
        if f.forgot_a_policy() {
            let _ = writeln!(
                err,
                "mtasts daemon cache forget: warning: {} had a valid cached policy; until it is \
                 fetched again, nothing protects mail to it against a downgrade (RFC 8461 §10.2)",
                escape(&f.domain)
            );
        }
        if let Some(e) = &f.store_error {
            failed = true;
            let _ = writeln!(
                err,
                "mtasts daemon cache forget: {}: the {} store entry could not be removed, it is \
                 still there: {}",
                f.domain,
                doc.store_backend,
                escape(e)
            );
        }
    }
    if missing {
        EXIT_FINDINGS
    } else if failed {
        EXIT_TROUBLE
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_warning_of_the_help_is_the_documented_one() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/daemon.md"))
                .unwrap_or_default();
        let words = |s: &str| {
            s.split_whitespace()
                .filter(|w| *w != ">")
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(
            words(&doc).contains(&words(super::FORGET_WARNING)),
            "docs/daemon.md must carry the forget warning as `mtasts daemon cache forget --help` prints it"
        );
    }
}
