use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Answer {
    #[llm(range(min = 10, max = 1))]
    score: u8,
}

fn main() {}
