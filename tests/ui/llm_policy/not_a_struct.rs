use harness_core::prelude::*;

#[llm_policy(on_timeout = retry(2))]
fn standard() {}

fn main() {}
