use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Answer(String);

fn main() {}
