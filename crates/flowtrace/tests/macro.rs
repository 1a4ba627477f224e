//! `#[flowtrace::main]`: what it accepts, and the errors it gives for what it does not.

#[test]
fn macro_expansions() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
    #[cfg(feature = "concurrency")]
    cases.pass("tests/ui/pass_with_concurrency/*.rs");
    #[cfg(not(feature = "concurrency"))]
    cases.compile_fail("tests/ui/fail_without_concurrency/*.rs");
}
