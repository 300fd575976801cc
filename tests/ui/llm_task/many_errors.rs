use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Summary {
    text: String,
}

#[llm_task(
    prompt = "Summarize: {txt}",
    timeout = "soon",
    on_timeout = reask(2),
    on_refusal = fail.then(escalate),
)]
async fn summarize(text: &str) -> TaskResult<Summary>;

fn main() {}
