//! Shared helpers for the table-driven conformance cases.

/// `cases! { check_fn; name: input => expected; ... }` makes one `#[test]` per line, calling
/// `check_fn(input, expected)`.
macro_rules! cases {
    ($check:path; $( $name:ident : $input:expr => $expected:expr ; )*) => {
        $(
            #[test]
            fn $name() {
                $check($input, $expected);
            }
        )*
    };
}
