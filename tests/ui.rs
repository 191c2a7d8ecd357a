//! Compile errors a user can act on: one mistake per file in `tests/ui/`, with the exact
//! message and the tokens it points at in the committed `.stderr` beside it.

#[test]
fn ui() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
