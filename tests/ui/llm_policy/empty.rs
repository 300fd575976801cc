use harness_core::prelude::*;

#[llm_policy()]
pub struct Empty;

fn main() {}
