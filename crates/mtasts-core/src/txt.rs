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

/// A syntax problem common to both record kinds; each kind maps it into its own error enum.
#[derive(Debug)]
pub(crate) enum FieldProblem<'a> {
    NotAscii(usize),
    MissingDelimiter,
    EmptyField(usize),
    FieldWithoutValue(&'a str),
    InvalidFieldName(&'a str),
    InvalidFieldValue(&'a str, &'a str),
}

/// Maps [`FieldProblem`] into a record kind's error enum, whose variants for the shared
/// syntax have the same names and fields in both kinds.
macro_rules! impl_from_field_problem {
    ($error:ident) => {
        impl From<txt::FieldProblem<'_>> for $error {
            fn from(p: txt::FieldProblem<'_>) -> Self {
                use txt::FieldProblem as P;
                match p {
                    P::NotAscii(offset) => $error::NotAscii { offset },
                    P::MissingDelimiter => $error::MissingDelimiter,
                    P::EmptyField(position) => $error::EmptyField { position },
                    P::FieldWithoutValue(field) => $error::FieldWithoutValue {
                        field: field.to_string(),
                    },
                    P::InvalidFieldName(name) => $error::InvalidFieldName {
                        name: name.to_string(),
                    },
                    P::InvalidFieldValue(name, value) => $error::InvalidFieldValue {
                        name: name.to_string(),
                        value: value.to_string(),
                    },
                }
            }
        }
    };
}
pub(crate) use impl_from_field_problem;

/// A record split into the values of its one required field (every occurrence, for the
/// caller to judge) and its extension fields.
pub(crate) struct RecordFields<'a> {
    pub(crate) required: Vec<&'a str>,
    pub(crate) extensions: Vec<(&'a str, &'a str)>,
    /// The record ends in whitespace that is not part of a final delimiter (`"...; id=1 "`):
    /// outside the ABNF (`[delim]` with `delim = *WSP ";" *WSP`), rejected by some parsers.
    pub(crate) trailing_whitespace: bool,
}

/// Whether `text` ends in WSP not preceded (through WSP) by a `;`.
pub(crate) fn has_trailing_whitespace(text: &[u8]) -> bool {
    let trimmed = text
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(0, |i| i + 1);
    trimmed < text.len() && text.get(trimmed.wrapping_sub(1)) != Some(&b';')
}

/// Parses `version 1*(delim field) [delim]` for a record already known to begin with
/// `version`. `required` names the kind's own field (`id`, `rua`), whose value the caller
/// validates; every other field must be a well-formed extension.
pub(crate) fn parse_record<'a>(
    text: &'a [u8],
    version: &str,
    required: &str,
) -> Result<RecordFields<'a>, FieldProblem<'a>> {
    if let Some(offset) = text.iter().position(|b| !b.is_ascii()) {
        return Err(FieldProblem::NotAscii(offset));
    }
    let text = std::str::from_utf8(text).map_err(|e| FieldProblem::NotAscii(e.valid_up_to()))?;
    let fields = split_fields(text, version).map_err(FieldProblem::EmptyField)?;
    let mut out = RecordFields {
        required: Vec::new(),
        extensions: Vec::new(),
        trailing_whitespace: has_trailing_whitespace(text.as_bytes()),
    };
    for field in fields {
        if field.position == 0 {
            return Err(FieldProblem::MissingDelimiter);
        }
        let Some((name, value)) = field.text.split_once('=') else {
            return Err(FieldProblem::FieldWithoutValue(field.text));
        };
        if name == required {
            out.required.push(value);
        } else if !is_field_name(name) {
            return Err(FieldProblem::InvalidFieldName(name));
        } else if !is_ext_value(value) {
            return Err(FieldProblem::InvalidFieldValue(name, value));
        } else {
            out.extensions.push((name, value));
        }
    }
    Ok(out)
}

/// How many records of the kind an RRset holds, when it is not exactly one.
pub(crate) enum Count {
    None,
    Multiple(usize),
}

/// The RFC 8461 §3.1 / RFC 8460 §3 RRset rule: join each record's strings, discard those not
/// of this kind, and return the index and text of the one left.
pub(crate) fn select_one<R, S>(
    rrset: &[R],
    is_kind: impl Fn(&[u8]) -> bool,
) -> Result<(usize, Vec<u8>), Count>
where
    R: AsRef<[S]>,
    S: AsRef<[u8]>,
{
    let mut found: Vec<(usize, Vec<u8>)> = rrset
        .iter()
        .map(|r| join_strings(r.as_ref()))
        .enumerate()
        .filter(|(_, t)| is_kind(t))
        .collect();
    match found.len() {
        0 => Err(Count::None),
        1 => Ok(found.remove(0)),
        n => Err(Count::Multiple(n)),
    }
}
