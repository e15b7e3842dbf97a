//! What generated code accepts and rejects, pinned with trybuild.

#[test]
fn generated_handler_traits() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/compile/pass_*.rs");
    cases.compile_fail("tests/compile/fail_*.rs");
}
