//! Checking many domains: the input (domains one per line, `#` comments, every line bounded),
//! the run (a bounded number of domains in flight, results handed over in input order), and
//! the counts of the summary table.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};

use futures_util::StreamExt;
use mtasts_core::Severity;
use serde::Serialize;

use crate::assess::DomainReport;
use crate::run::Checker;

/// The longest input line accepted by default, in bytes: a domain name is at most 253
/// octets, and the rest leaves room for a comment.
pub const DEFAULT_MAX_LINE: usize = 4096;

/// One item of the input: a domain to check, or a line that cannot be one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputItem {
    /// A domain name (as written; the checker validates it).
    Domain {
        /// `FILE:LINE`, or `argument`.
        place: String,
        /// The text.
        domain: String,
    },
    /// A line that is not usable (too long, not UTF-8).
    BadLine {
        /// `FILE:LINE`.
        place: String,
        /// Why.
        reason: String,
    },
    /// The input could not be read further; nothing follows this item.
    ReadError {
        /// `FILE:LINE` of the line that could not be read.
        place: String,
        /// The I/O error.
        reason: String,
    },
}

/// Domains from a reader, one per line. Every line is bounded by `max_line` bytes (a longer
/// one is reported with its number and skipped without being kept), and a read error ends the
/// input after one [`InputItem::ReadError`], so a directory or a failing device cannot make
/// the reader spin.
#[derive(Debug)]
pub struct InputLines<R> {
    name: String,
    reader: R,
    line: usize,
    max_line: usize,
    done: bool,
}

impl<R: BufRead> InputLines<R> {
    /// Lines of `reader`, named `name` in messages.
    pub fn new(name: impl Into<String>, reader: R, max_line: usize) -> Self {
        InputLines {
            name: name.into(),
            reader,
            line: 0,
            max_line: max_line.max(1),
            done: false,
        }
    }

    /// Reads up to the next newline, keeping at most `max_line + 1` bytes. Returns the bytes
    /// kept, whether the line was longer than that, and whether anything was read at all.
    fn read_line(&mut self) -> io::Result<Option<(Vec<u8>, bool)>> {
        let mut buf = Vec::new();
        let cap = u64::try_from(self.max_line)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let n = (&mut self.reader).take(cap).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') || buf.len() <= self.max_line {
            return Ok(Some((buf, false)));
        }
        // Too long: drop the rest of the line without keeping it.
        loop {
            let (skip, found) = {
                let chunk = self.reader.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                match chunk.iter().position(|b| *b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (chunk.len(), false),
                }
            };
            self.reader.consume(skip);
            if found {
                break;
            }
        }
        Ok(Some((buf, true)))
    }
}

impl<R: BufRead> Iterator for InputLines<R> {
    type Item = InputItem;

    fn next(&mut self) -> Option<InputItem> {
        loop {
            if self.done {
                return None;
            }
            self.line += 1;
            let place = format!("{}:{}", self.name, self.line);
            let (bytes, too_long) = match self.read_line() {
                Ok(Some(x)) => x,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(InputItem::ReadError {
                        place,
                        reason: e.to_string(),
                    });
                }
            };
            if too_long {
                return Some(InputItem::BadLine {
                    place,
                    reason: format!(
                        "the line is longer than {} bytes (a domain name is at most 253)",
                        self.max_line
                    ),
                });
            }
            let Ok(text) = std::str::from_utf8(&bytes) else {
                return Some(InputItem::BadLine {
                    place,
                    reason: "the line is not UTF-8".into(),
                });
            };
            let domain = text.split('#').next().unwrap_or("").trim();
            if domain.is_empty() {
                continue;
            }
            return Some(InputItem::Domain {
                place,
                domain: domain.to_owned(),
            });
        }
    }
}

/// Domains given as arguments.
pub fn from_arguments(domains: Vec<String>) -> impl Iterator<Item = InputItem> + Send {
    domains.into_iter().map(|domain| InputItem::Domain {
        place: "argument".into(),
        domain,
    })
}

/// What became of one input item.
#[derive(Debug)]
pub enum Checked {
    /// The report.
    Report(Box<DomainReport>),
    /// The item is not a domain name (or the line is unusable); `place: reason`.
    BadInput(String),
    /// The input could not be read further; `place: reason`.
    InputEnded(String),
}

/// Counts for the final table and the exit status.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Domains checked.
    pub domains: usize,
    /// Input items that were not domain names.
    pub invalid_input: usize,
    /// Why the input ended early, if it did.
    pub input_error: Option<String>,
    /// Domains per verdict.
    pub outcomes: BTreeMap<&'static str, usize>,
    /// Domains per category.
    pub categories: BTreeMap<&'static str, usize>,
    /// The worst severity over all domains.
    pub worst: Option<Severity>,
    /// Domains whose check was inconclusive because of the checking side (its resolver did
    /// not answer, no SMTP connection succeeded).
    pub inconclusive: usize,
}

impl Summary {
    /// Counts one result.
    pub fn add(&mut self, c: &Checked) {
        match c {
            Checked::Report(r) => {
                self.domains += 1;
                *self.outcomes.entry(r.verdict.outcome.as_str()).or_default() += 1;
                for cat in &r.categories {
                    *self.categories.entry(cat).or_default() += 1;
                }
                self.worst = self.worst.max(r.worst);
                self.inconclusive += usize::from(r.inconclusive);
            }
            Checked::BadInput(_) => self.invalid_input += 1,
            Checked::InputEnded(e) => self.input_error = Some(e.clone()),
        }
    }
}

/// Runs the checks over `source` with `concurrency` domains in flight, handing each result to
/// `sink` in input order. Reading the input happens on a blocking thread, through a bounded
/// channel, so a slow or endless input never holds more than a few lines in memory.
pub async fn run_all<I>(
    checker: &Checker,
    source: I,
    concurrency: usize,
    now: i64,
    mut sink: impl FnMut(usize, Checked),
) where
    I: Iterator<Item = InputItem> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<InputItem>(1024);
    let reader = tokio::task::spawn_blocking(move || {
        for item in source {
            if tx.blocking_send(item).is_err() {
                break;
            }
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
            .enumerate()
            .map(|(i, item)| {
                let checker = checker.clone();
                async move {
                    let result = match item {
                        InputItem::Domain { place, domain } => {
                            match checker.check(&domain, now).await {
                                Ok(r) => Checked::Report(Box::new(r)),
                                Err(e) => Checked::BadInput(format!("{place}: {e}")),
                            }
                        }
                        InputItem::BadLine { place, reason } => {
                            Checked::BadInput(format!("{place}: {reason}"))
                        }
                        InputItem::ReadError { place, reason } => {
                            Checked::InputEnded(format!("{place}: cannot read: {reason}"))
                        }
                    };
                    (i, result)
                }
            })
            .buffer_unordered(concurrency.max(1));
    futures_util::pin_mut!(stream);
    let mut pending: BTreeMap<usize, Checked> = BTreeMap::new();
    let mut next = 0usize;
    while let Some((i, result)) = stream.next().await {
        pending.insert(i, result);
        while let Some(result) = pending.remove(&next) {
            sink(next, result);
            next += 1;
        }
    }
    for (i, result) in std::mem::take(&mut pending) {
        sink(i, result);
    }
    let _ = reader.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &[u8], max: usize) -> Vec<InputItem> {
        InputLines::new("in", io::Cursor::new(input.to_vec()), max).collect()
    }

    #[test]
    fn comments_blank_lines_and_places() {
        let got = items(b"# list\nexample.com\n\n  b.example  # second\n", 100);
        assert_eq!(
            got,
            vec![
                InputItem::Domain {
                    place: "in:2".into(),
                    domain: "example.com".into()
                },
                InputItem::Domain {
                    place: "in:4".into(),
                    domain: "b.example".into()
                },
            ]
        );
    }

    #[test]
    fn a_long_line_is_reported_and_skipped_not_kept() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nexample.com\n");
        let got = items(&input, 300);
        assert!(
            matches!(&got[0], InputItem::BadLine { place, reason } if place == "in:1" && reason.contains("longer than 300")),
            "{got:?}"
        );
        assert!(matches!(&got[1], InputItem::Domain { domain, .. } if domain == "example.com"));
        assert_eq!(got.len(), 2);
    }

    /// Regression (issue 13): a read error used to repeat forever.
    #[test]
    fn a_read_error_ends_the_input_once() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("Is a directory (os error 21)"))
            }
        }
        let got: Vec<_> = InputLines::new("dir", io::BufReader::new(Failing), 100)
            .take(5)
            .collect();
        assert_eq!(
            got,
            vec![InputItem::ReadError {
                place: "dir:1".into(),
                reason: "Is a directory (os error 21)".into()
            }]
        );
    }
}
