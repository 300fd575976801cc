use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Summary {
    text: String,
}

#[llm_task(
    prompt = "Summarize: {text}",
    on_timeout = retry(2),
    on_invalid_output = reask(2),
)]
async fn summarize(text: &str) -> TaskResult<Summary>;

fn main() {}
