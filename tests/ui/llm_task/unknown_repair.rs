use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Summary {
    text: String,
}

#[llm_task(
    model = "gpt-4o-mini",
    prompt = "Summarize: {text}",
    repairs(deny = ["closed_truncated", "coerce", "quoted_bare_value"]),
    on_timeout = retry(2),
    on_rate_limited = retry(5),
    on_provider_error = retry(2).then(fail),
    on_invalid_output = reask(2).then(fail),
    on_refusal = escalate,
)]
async fn summarize(text: &str) -> TaskResult<Summary>;

fn main() {}
