//! Where reports come from on disk: files (`.json`, `.json.gz`, `.gz`, `.eml`, or anything
//! the core recognises by content), mbox files (one report e-mail per message), Maildir folders
//! (`cur/` and `new/`), and directories of any of these, recursively (in a directory, only
//! the names [`looks_like_input`] accepts). Each yields
//! [`Input`]s one at a time, so a mailbox of any size is read in bounded memory: at most one
//! message (capped at the input limit) is held at once.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The file names a directory walk reads (a path named explicitly is always read): not
/// hidden, and with no extension (mbox files often have none) or one of `.json`, `.gz`,
/// `.eml`, `.msg`, `.mbox`, `.mbx`. A README or a CSV beside the reports is not an input.
/// Maildir messages are read whatever their names.
pub fn looks_like_input(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name.starts_with('.') {
        return false;
    }
    match path.extension().and_then(|e| e.to_str()) {
        None => true,
        Some(ext) => ["json", "gz", "eml", "msg", "mbox", "mbx"]
            .iter()
            .any(|k| ext.eq_ignore_ascii_case(k)),
    }
}

/// One input to ingest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The bytes (at most the limit; see `too_large`).
    pub bytes: Vec<u8>,
    /// Where it came from: the path, with `#N` for the Nth message of an mbox file.
    pub origin: String,
    /// Whether the input is one e-mail message (an mbox message, a Maildir file, an `.eml`),
    /// which must carry a DKIM signature (RFC 8460 §3); `None` when only its content can
    /// tell.
    pub kind: InputKind,
    /// `Some(size)` when the input was larger than the limit: only its first bytes were kept
    /// (to show in the refusal), and it is not parsed.
    pub too_large: Option<u64>,
}

/// What the source says an input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A message of an mbox file or a Maildir: an e-mail.
    Message,
    /// A file: its content decides (JSON, gzip, or an e-mail).
    File,
}

/// A path that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct SourceError {
    /// The path.
    pub path: String,
    /// Why.
    #[source]
    pub source: io::Error,
}

enum Pending {
    Path(PathBuf),
    Mbox(Mbox),
}

/// The inputs under some paths, in a stable order (directories sorted by name).
pub struct Sources {
    queue: VecDeque<Pending>,
    max_bytes: usize,
}

impl Sources {
    /// The inputs under `paths`; every input is read to at most `max_bytes` (+1 to tell an
    /// oversize one).
    pub fn new(paths: &[PathBuf], max_bytes: usize) -> Sources {
        Sources {
            queue: paths.iter().cloned().map(Pending::Path).collect(),
            max_bytes,
        }
    }

    fn error(path: &Path, source: io::Error) -> SourceError {
        SourceError {
            path: path.display().to_string(),
            source,
        }
    }

    /// Expands one path: a directory into its entries (a Maildir into its messages), an mbox
    /// file into a reader, a file into one input.
    fn expand(&mut self, path: PathBuf) -> Option<Result<Input, SourceError>> {
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => return Some(Err(Self::error(&path, e))),
        };
        if meta.is_dir() {
            let maildir = ["cur", "new"].iter().any(|d| path.join(d).is_dir());
            let dirs: Vec<PathBuf> = if maildir {
                ["cur", "new"]
                    .iter()
                    .map(|d| path.join(d))
                    .filter(|p| p.is_dir())
                    .collect()
            } else {
                vec![path.clone()]
            };
            let mut entries = Vec::new();
            for dir in dirs {
                let read = match std::fs::read_dir(&dir) {
                    Ok(r) => r,
                    Err(e) => return Some(Err(Self::error(&dir, e))),
                };
                for entry in read {
                    match entry {
                        Ok(e) => entries.push(e.path()),
                        Err(e) => return Some(Err(Self::error(&dir, e))),
                    }
                }
            }
            entries.sort();
            // Depth first, in name order: push in reverse at the front.
            for p in entries.into_iter().rev() {
                if maildir && p.is_dir() {
                    continue;
                }
                if !maildir && !p.is_dir() && !looks_like_input(&p) {
                    continue;
                }
                self.queue.push_front(Pending::Path(p));
            }
            return None;
        }
        let mut file = match File::open(&path) {
            Ok(f) => BufReader::new(f),
            Err(e) => return Some(Err(Self::error(&path, e))),
        };
        // An mbox begins with a "From " line; anything else is one input.
        let head = match file.fill_buf() {
            Ok(h) => h,
            Err(e) => return Some(Err(Self::error(&path, e))),
        };
        if head.starts_with(b"From ") {
            self.queue.push_front(Pending::Mbox(Mbox {
                path,
                reader: file,
                index: 0,
                in_message: false,
                done: false,
            }));
            return None;
        }
        let cap = u64::try_from(self.max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        // Sized by the file's length (bounded by the limit), so reading it is one read, not a
        // series of growing ones.
        let mut bytes =
            Vec::with_capacity(usize::try_from(meta.len().min(cap)).unwrap_or(self.max_bytes));
        if let Err(e) = (&mut file).take(cap).read_to_end(&mut bytes) {
            return Some(Err(Self::error(&path, e)));
        }
        let too_large = (bytes.len() > self.max_bytes).then_some(meta.len());
        bytes.truncate(self.max_bytes);
        let is_message = path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("eml"))
            || path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|d| d == "cur" || d == "new");
        Some(Ok(Input {
            bytes,
            origin: path.display().to_string(),
            kind: if is_message {
                InputKind::Message
            } else {
                InputKind::File
            },
            too_large,
        }))
    }
}

impl Iterator for Sources {
    type Item = Result<Input, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.queue.pop_front()? {
                Pending::Path(p) => {
                    if let Some(item) = self.expand(p) {
                        return Some(item);
                    }
                }
                Pending::Mbox(mut m) => match m.next_message(self.max_bytes) {
                    Some(item) => {
                        self.queue.push_front(Pending::Mbox(m));
                        return Some(item);
                    }
                    None => continue,
                },
            }
        }
    }
}

/// An mbox file being read (mboxo and mboxrd: a message starts at a line beginning with
/// `From `; `>From ` lines are unquoted one level).
struct Mbox {
    path: PathBuf,
    reader: BufReader<File>,
    index: usize,
    /// A `From ` separator has been read and its message not yet returned.
    in_message: bool,
    done: bool,
}

impl Mbox {
    fn next_message(&mut self, max_bytes: usize) -> Option<Result<Input, SourceError>> {
        if self.done {
            return None;
        }
        let mut bytes = Vec::new();
        let mut size: u64 = 0;
        let mut line = Vec::new();
        let mut started = self.in_message;
        loop {
            line.clear();
            // A line is read in bounded pieces: a hostile mbox without newlines costs at most
            // the limit.
            let cap = u64::try_from(max_bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(2);
            let n = match (&mut self.reader).take(cap).read_until(b'\n', &mut line) {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(Sources::error(&self.path, e)));
                }
            };
            if n == 0 {
                self.done = true;
                break;
            }
            if line.starts_with(b"From ") {
                if started {
                    // The next message begins; `in_message` stays set for the next call.
                    break;
                }
                started = true;
                self.in_message = true;
                continue;
            }
            if !started {
                continue;
            }
            let content: &[u8] = match line.iter().position(|b| *b != b'>') {
                Some(i) if i > 0 && line[i..].starts_with(b"From ") => &line[1..],
                _ => &line,
            };
            size = size.saturating_add(content.len() as u64);
            if bytes.len() < max_bytes {
                let room = max_bytes - bytes.len();
                bytes.extend_from_slice(&content[..content.len().min(room)]);
            }
        }
        if !started && bytes.is_empty() {
            return None;
        }
        // The blank line before the next "From " belongs to the mbox, not the message.
        if bytes.ends_with(b"\n\n") {
            bytes.pop();
        }
        self.index += 1;
        let too_large = (size > max_bytes as u64).then_some(size);
        Some(Ok(Input {
            bytes,
            origin: format!("{}#{}", self.path.display(), self.index),
            kind: InputKind::Message,
            too_large,
        }))
    }
}
