//! placeholder: the report helper replaces this file with `mtasts report parse`.
pub(crate) fn parse_reports(
    _paths: &[std::path::PathBuf],
    _json: bool,
    _out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> u8 {
    let _ = writeln!(err, "mtasts: report parse is not built yet");
    crate::EXIT_TROUBLE
}
