use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Answer {
    #[llm(lenght(max = 10))]
    text: String,
}

fn main() {}
