//! The syntax the two TXT records share (RFC 8461 §3.1, RFC 8460 §3):
//!
//! ```text
//! record = version 1*(delim field) [delim]
//! delim  = *WSP ";" *WSP
//! field  = name "=" value
//! name   = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! value  = 1*(%x21-3A / %x3C / %x3E-7E)     ; for extensions
//! ```

/// Joins the character-strings of one TXT record with nothing in between (RFC 8461 §3.1,
/// RFC 7208 §3.3 convention).
pub(crate) fn join_strings<S: AsRef<[u8]>>(strings: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(strings.iter().map(|s| s.as_ref().len()).sum());
    for s in strings {
        out.extend_from_slice(s.as_ref());
    }
    out
}

/// Whether `text` begins with the version tag, followed by a delimiter or the end: the rule
/// that decides whether a TXT record is of this kind at all.
pub(crate) fn has_version(text: &[u8], version: &str) -> bool {
    let v = version.as_bytes();
    text.starts_with(v)
        && matches!(
            text.get(v.len()),
            None | Some(b';') | Some(b' ') | Some(b'\t')
        )
}

pub(crate) fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// One `name=value` field after the version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawField<'a> {
    /// 1-based position among the fields after the version.
    pub(crate) position: usize,
    /// The whole field text (trimmed of delimiter whitespace).
    pub(crate) text: &'a str,
}

/// Splits a record (known to be ASCII and to begin with the version) into its fields.
/// Returns `Err(position)` for an empty field in the middle (`;;`), which the ABNF forbids.
pub(crate) fn split_fields<'a>(text: &'a str, version: &str) -> Result<Vec<RawField<'a>>, usize> {
    let rest = &text[version.len()..];
    let mut pieces: Vec<&str> = rest.split(';').collect();
    // The first piece is what follows the version before the first ';': only WSP allowed,
    // but a record of just "v=X" has no ';' at all.
    let head = pieces.remove(0);
    let mut out = Vec::new();
    if !head.trim_matches(is_wsp).is_empty() {
        // "v=STSv1 id=..." : the version is not followed by a delimiter.
        out.push(RawField {
            position: 0,
            text: head.trim_matches(is_wsp),
        });
        return Ok(out);
    }
    let n = pieces.len();
    for (i, p) in pieces.into_iter().enumerate() {
        let t = p.trim_matches(is_wsp);
        if t.is_empty() {
            if i + 1 == n {
                // trailing delimiter: allowed ("[delim]")
                continue;
            }
            return Err(i + 1);
        }
        out.push(RawField {
            position: i + 1,
            text: t,
        });
    }
    Ok(out)
}

/// `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`
pub(crate) fn is_field_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// `1*(%x21-3A / %x3C / %x3E-7E)`: visible ASCII except `;` and `=`.
pub(crate) fn is_ext_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|c| matches!(c, 0x21..=0x3A | 0x3C | 0x3E..=0x7E))
}
