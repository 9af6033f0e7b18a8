//! Compile-fail tests of `#[memassert::track_alloc]`'s argument errors.
//!
//! Regenerate the expected output with
//! `TRYBUILD=overwrite cargo test -p memassert-tests --test trybuild`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
