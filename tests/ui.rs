//! Compile-time behaviour of `#[llm_task]`, `#[llm_policy]`, `#[llm_tool]` and `#[derive(LlmOutput)]`: shapes
//! that must compile (`tests/ui/pass`) and every promised compile error, with its exact message.
//!
//! The `.stderr` snapshots depend on the rustc version; regenerate them with
//! `TRYBUILD=overwrite cargo test -p harness-suite --test ui` after a toolchain change, and read them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/llm_output/*.rs");
    t.compile_fail("tests/ui/llm_task/*.rs");
    t.compile_fail("tests/ui/llm_policy/*.rs");
    t.compile_fail("tests/ui/llm_tool/*.rs");
}
