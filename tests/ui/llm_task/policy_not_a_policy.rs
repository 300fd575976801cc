use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Summary {
    text: String,
}

struct Standard;

#[llm_task(prompt = "Summarize: {text}", policy = Standard)]
async fn summarize(text: &str) -> TaskResult<Summary>;

fn main() {}
