//! Two tasks of one name in one program compile (they live in two modules), but the registry and
//! the harness refuse them at start, naming both modules.
#![deny(warnings, unused_qualifications, unused_results, missing_debug_implementations)]
use harness_core::prelude::*;

/// A summary.
#[derive(Debug, LlmOutput)]
pub struct Summary {
    text: String,
}

#[llm_policy(
    on_timeout = fail,
    on_rate_limited = fail,
    on_provider_error = fail,
    on_invalid_output = fail,
    on_refusal = fail,
)]
#[derive(Debug)]
pub struct Plain;

mod emails {
    use harness_core::prelude::*;

    #[llm_task(prompt = "Summarize: {text}", policy = super::Plain)]
    pub async fn summarize(text: &str) -> TaskResult<super::Summary>;
}

mod tickets {
    use harness_core::prelude::*;

    #[llm_task(prompt = "Summarize the ticket: {text}", policy = super::Plain)]
    pub async fn summarize(text: &str) -> TaskResult<super::Summary>;
}

fn main() {
    let _ = emails::summarize::CONTRACT;
    let _ = tickets::summarize::CONTRACT;
    let err = harness_core::registry::program().expect_err("two tasks named `summarize`");
    let text = err.to_string();
    assert!(
        text.contains(
            "task name `summarize` is declared 2 times, in `"
        ) && text.contains("::emails`, `") && text.contains("::tickets`: "),
        "{text}"
    );
    let err = Harness::builder().build().expect_err("the harness refuses to start");
    assert!(err.to_string().contains("task name `summarize` is declared 2 times"), "{err}");
}
