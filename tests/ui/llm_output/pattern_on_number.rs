use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Answer {
    #[llm(pattern = "^[0-9]+$")]
    count: u32,
}

fn main() {}
