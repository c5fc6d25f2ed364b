//! Text that came from outside (a report, a DNS record, an HTTP header, an SMTP banner), made
//! safe to print for people: one function for every human output.
//!
//! A TXT record or a report's `organization-name` can hold `ESC[2J`, carriage returns and
//! newlines followed by forged lines (`\r\nverdict  FORGED;`); printed raw, they rewrite what
//! the operator sees. [`escape`] writes every control character (C0, DEL, C1) and every
//! Unicode bidirectional override as a visible escape (`\x1b`, `\r`, `\n`, `\u{202e}`), and a
//! backslash as `\\`, so the printed text is one line that reads exactly as received. JSON
//! output stays exact: serde escapes what JSON needs and nothing is lost.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must not reach a terminal as it is.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        // Bidirectional embeddings, overrides and isolates (the "Trojan Source" characters).
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// `s` with every control character, bidirectional control and backslash escaped; borrowed
/// when nothing needed it.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// As [`escape`], for bytes that may not be UTF-8 (a TXT record): invalid sequences become
/// `\xNN`.
pub fn escape_bytes(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => escape(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                for c in chunk.valid().chars() {
                    push_escaped(&mut out, c);
                }
                for byte in chunk.invalid() {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
            }
            Cow::Owned(out)
        }
    }
}

fn push_escaped(out: &mut String, c: char) {
    if !needs_escape(c) {
        out.push(c);
        return;
    }
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// `s` cut to its first `max` characters, with `…` when something was cut: for messages that
/// quote input, so a 16 MiB line is not echoed back whole.
pub fn excerpt(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((at, _)) => Cow::Owned(format!("{}…", &s[..at])),
    }
}

/// Displays a string escaped as by [`escape`]: `format!("{}", Untrusted(name))`.
#[derive(Clone, Copy, Debug)]
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("mx1.example.com"), Cow::Borrowed(_)));
        assert_eq!(escape("Bücher GmbH"), "Bücher GmbH");
    }

    #[test]
    fn terminal_escapes_and_line_forgery_are_visible() {
        assert_eq!(
            escape("Google\u{1b}[2J\r\nverdict  FORGED;"),
            "Google\\x1b[2J\\r\\nverdict  FORGED;"
        );
        assert_eq!(escape("a\u{9b}b\u{7f}"), "a\\x9bb\\x7f");
        assert_eq!(escape("tab\there"), "tab\\there");
    }

    #[test]
    fn bidi_overrides_and_backslashes() {
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(
            escape("a\\x1b"),
            "a\\\\x1b",
            "a literal backslash cannot forge an escape"
        );
    }

    #[test]
    fn excerpts_cut_long_text_only() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("abcdefghij", 4), "abcd…");
        assert_eq!(excerpt("ééééé", 2), "éé…");
    }

    #[test]
    fn invalid_utf8_bytes() {
        assert_eq!(
            escape_bytes(b"v=STSv1; id=\xff\x1b"),
            "v=STSv1; id=\\xff\\x1b"
        );
        assert_eq!(Untrusted("x\ny").to_string(), "x\\ny");
    }
}
