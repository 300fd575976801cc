use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Answer {
    text: String,
}

#[llm_task(
    prompt = "Answer: {question}",
    source(kb, limit = 5, on_unavailable = proceed),
    on_timeout = retry(2),
    on_rate_limited = retry(5),
    on_provider_error = retry(2).then(fail),
    on_invalid_output = reask(2).then(fail),
    on_refusal = escalate,
)]
async fn answer(question: &str) -> TaskResult<Answer>;

fn main() {}
