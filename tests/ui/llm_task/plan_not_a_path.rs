use harness_core::context::{ContextPlan, Section, SectionKind};
use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Summary {
    text: String,
}

static SUMMARY_PLAN: ContextPlan = ContextPlan::new(
    "summary",
    "1",
    &[Section::required("text", SectionKind::UserInput)],
    256,
);

#[llm_task(
    plan = "SUMMARY_PLAN",
    on_timeout = fail,
    on_rate_limited = fail,
    on_provider_error = fail,
    on_invalid_output = fail,
    on_refusal = fail,
)]
async fn summarize(text: &str) -> TaskResult<Summary> {
    Context::new().user(text)
}

fn main() {
    let _ = &SUMMARY_PLAN;
}
