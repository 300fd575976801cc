use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Answer {
    #[llm(confidence)]
    confidence: String,
}

fn main() {}
