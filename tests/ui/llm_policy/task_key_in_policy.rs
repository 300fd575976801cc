use harness_core::prelude::*;

#[llm_policy(
    model = "gpt-4o-mini",
    on_timeout = retry(2),
)]
pub struct Standard;

fn main() {}
