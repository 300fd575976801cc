use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Ticket {
    #[llm(pattern = "^[A-Z]{3-[0-9]+$")]
    id: String,
}

fn main() {}
