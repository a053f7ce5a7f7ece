//! Compile-time behaviour of `#[derive(DomainEvent)]`: each misuse in `ui/` fails with the message in its
//! `.stderr`; every input in `pass/` compiles and runs.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/pass/*.rs");
}
