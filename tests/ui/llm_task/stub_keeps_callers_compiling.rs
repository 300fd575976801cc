use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Summary {
    text: String,
}

#[llm_task(prompt = "Summarize: {text}")]
async fn summarize(text: &str) -> TaskResult<Summary>;

// The attribute has an error, but callers still type-check against the stubs.
async fn caller(h: &Harness) {
    let _ = summarize("x").await;
    let _ = summarize::with(h, "x").await;
    let _ = summarize::CONTRACT.name;
}

fn main() {
    let _ = caller;
}
