use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Summary {
    text: String,
}

static SUMMARY_BUDGET: u32 = 800;

#[llm_task(
    plan = SUMMARY_BUDGET,
    on_timeout = fail,
    on_rate_limited = fail,
    on_provider_error = fail,
    on_invalid_output = fail,
    on_refusal = fail,
)]
async fn summarize(text: &str) -> TaskResult<Summary> {
    Context::new().user(text)
}

fn main() {}
