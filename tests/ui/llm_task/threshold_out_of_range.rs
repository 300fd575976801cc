use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Sentiment {
    label: String,
    #[llm(confidence)]
    confidence: f64,
}

#[llm_task(
    prompt = "Classify: {text}",
    on_timeout = retry(2),
    on_rate_limited = retry(5),
    on_provider_error = retry(2).then(fail),
    on_invalid_output = reask(2).then(fail),
    on_refusal = escalate,
    on_low_confidence(below = 70) = reask(1).then(escalate),
)]
async fn classify(text: &str) -> TaskResult<Sentiment>;

fn main() {}
