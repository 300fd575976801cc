use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Answer {
    #[llm(range(min = 0, max = 10))]
    text: String,
}

fn main() {}
