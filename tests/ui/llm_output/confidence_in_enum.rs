use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
enum Answer {
    Yes {
        #[llm(confidence)]
        confidence: f64,
    },
    No,
}

fn main() {}
