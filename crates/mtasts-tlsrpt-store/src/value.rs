//! The values that cross the query layer, the same for both backends: statement parameters
//! (typed even when NULL, since PostgreSQL checks every parameter's type) and result values,
//! with a [`Reader`] that decodes a row column by column and names the table, row and column
//! of anything that does not decode.

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::DecodeProblem;

/// A statement parameter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Param {
    /// A `BIGINT` (or NULL).
    Int(Option<i64>),
    /// A `TEXT` (or NULL).
    Text(Option<String>),
    /// A `BLOB` / `BYTEA`.
    Bytes(Vec<u8>),
}

impl Param {
    pub(crate) fn int(v: i64) -> Param {
        Param::Int(Some(v))
    }

    pub(crate) fn text(v: impl Into<String>) -> Param {
        Param::Text(Some(v.into()))
    }

    pub(crate) fn opt_text(v: Option<&str>) -> Param {
        Param::Text(v.map(str::to_owned))
    }
}

/// A value read from a result row.
#[derive(Debug)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Real,
    Text(String),
    /// SQLite text that is not UTF-8.
    BadText(std::string::FromUtf8Error),
    Bytes(Vec<u8>),
    /// A PostgreSQL type the query layer never selects.
    Unsupported,
}

impl Val {
    fn kind(&self) -> &'static str {
        match self {
            Val::Null => "NULL",
            Val::Int(_) => "an integer",
            Val::Real => "a floating-point number",
            Val::Text(_) | Val::BadText(_) => "text",
            Val::Bytes(_) => "bytes",
            Val::Unsupported => "a value of an unsupported type",
        }
    }
}

/// One result row.
pub(crate) type Row = Vec<Val>;

/// A decoding failure, before the backend, operation and target are added.
#[derive(Debug)]
pub(crate) struct Corrupt {
    pub(crate) table: &'static str,
    pub(crate) id: Option<i64>,
    pub(crate) column: &'static str,
    pub(crate) problem: DecodeProblem,
}

/// Reads the columns of one row, in any order, each at most once.
pub(crate) struct Reader {
    row: Row,
    table: &'static str,
    id: Option<i64>,
}

impl Reader {
    /// A row whose column 0 is its `id`.
    pub(crate) fn with_id(row: Row, table: &'static str) -> Result<Reader, Corrupt> {
        let mut r = Reader {
            row,
            table,
            id: None,
        };
        r.id = Some(r.int(0, "id")?);
        Ok(r)
    }

    /// A row computed by `GROUP BY`, or otherwise without an id.
    pub(crate) fn aggregate(row: Row, table: &'static str) -> Reader {
        Reader {
            row,
            table,
            id: None,
        }
    }

    /// The row's id ([`Reader::with_id`]), or 0.
    pub(crate) fn id(&self) -> i64 {
        self.id.unwrap_or(0)
    }

    fn fail(&self, column: &'static str, problem: DecodeProblem) -> Corrupt {
        Corrupt {
            table: self.table,
            id: self.id,
            column,
            problem,
        }
    }

    fn take(&mut self, i: usize, column: &'static str) -> Result<Val, Corrupt> {
        match self.row.get_mut(i) {
            Some(v) => Ok(std::mem::replace(v, Val::Null)),
            None => Err(self.fail(column, DecodeProblem::MissingColumn(i))),
        }
    }

    fn wrong(&self, column: &'static str, expected: &'static str, found: &Val) -> Corrupt {
        self.fail(
            column,
            DecodeProblem::WrongType {
                expected,
                found: found.kind(),
            },
        )
    }

    pub(crate) fn opt_int(
        &mut self,
        i: usize,
        column: &'static str,
    ) -> Result<Option<i64>, Corrupt> {
        match self.take(i, column)? {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(v)),
            other => Err(self.wrong(column, "an integer", &other)),
        }
    }

    pub(crate) fn int(&mut self, i: usize, column: &'static str) -> Result<i64, Corrupt> {
        match self.take(i, column)? {
            Val::Int(v) => Ok(v),
            other => Err(self.wrong(column, "an integer", &other)),
        }
    }

    /// A count or size: an integer that is not negative.
    pub(crate) fn count(&mut self, i: usize, column: &'static str) -> Result<u64, Corrupt> {
        let v = self.int(i, column)?;
        u64::try_from(v).map_err(|_| self.fail(column, DecodeProblem::Negative(v)))
    }

    pub(crate) fn opt_text(
        &mut self,
        i: usize,
        column: &'static str,
    ) -> Result<Option<String>, Corrupt> {
        match self.take(i, column)? {
            Val::Null => Ok(None),
            Val::Text(s) => Ok(Some(s)),
            Val::BadText(e) => Err(self.fail(column, DecodeProblem::Utf8(e))),
            other => Err(self.wrong(column, "text", &other)),
        }
    }

    pub(crate) fn text(&mut self, i: usize, column: &'static str) -> Result<String, Corrupt> {
        match self.take(i, column)? {
            Val::Text(s) => Ok(s),
            Val::BadText(e) => Err(self.fail(column, DecodeProblem::Utf8(e))),
            other => Err(self.wrong(column, "text", &other)),
        }
    }

    pub(crate) fn bytes(&mut self, i: usize, column: &'static str) -> Result<Vec<u8>, Corrupt> {
        match self.take(i, column)? {
            Val::Bytes(b) => Ok(b),
            other => Err(self.wrong(column, "bytes", &other)),
        }
    }

    /// A `YYYY-MM-DD` day.
    pub(crate) fn day(&mut self, i: usize, column: &'static str) -> Result<NaiveDate, Corrupt> {
        let s = self.text(i, column)?;
        parse_day(&s)
            .map_err(|source| self.fail(column, DecodeProblem::BadDay { value: s, source }))
    }

    /// A Unix time in seconds.
    pub(crate) fn time(
        &mut self,
        i: usize,
        column: &'static str,
    ) -> Result<DateTime<Utc>, Corrupt> {
        let v = self.int(i, column)?;
        DateTime::from_timestamp(v, 0).ok_or_else(|| self.fail(column, DecodeProblem::BadTime(v)))
    }

    /// A name decoded by `parse` (a `via` or a `trust`).
    pub(crate) fn name<T>(
        &mut self,
        i: usize,
        column: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, Corrupt> {
        let s = self.text(i, column)?;
        parse(&s).ok_or_else(|| self.fail(column, DecodeProblem::UnknownName(s)))
    }

    /// A `TEXT` column holding any JSON.
    pub(crate) fn json(
        &mut self,
        i: usize,
        column: &'static str,
    ) -> Result<serde_json::Value, Corrupt> {
        let s = self.text(i, column)?;
        serde_json::from_str(&s).map_err(|e| self.fail(column, DecodeProblem::Json(e)))
    }
}

/// The text form of a day, as stored.
pub(crate) fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

pub(crate) fn parse_day(s: &str) -> Result<NaiveDate, chrono::ParseError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
}
