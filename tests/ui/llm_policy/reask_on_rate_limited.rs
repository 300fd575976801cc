use harness_core::prelude::*;

#[llm_policy(
    on_timeout = retry(2),
    on_rate_limited = reask(3),
)]
pub struct Standard;

fn main() {}
