use harness_core::prelude::*;

#[llm_policy(
    on_timeout = retry(2).then(default(Vec::new())),
    on_refusal = escalate,
)]
pub struct Standard;

fn main() {}
