use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Answer {
    #[llm(confidence)]
    confidence: f64,
    #[llm(confidence)]
    certainty: f64,
}

fn main() {}
