//! The shape from the README: a labelled output with a confidence field, a prompt task.
#![deny(warnings, unused_qualifications, unused_results, missing_debug_implementations)]
use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
enum Label {
    Positive,
    Neutral,
    Negative,
}

/// The sentiment of one customer review.
#[derive(Debug, LlmOutput)]
struct Sentiment {
    label: Label,
    /// How sure the model is, from 0 to 1.
    #[llm(confidence, range(min = 0.0, max = 1.0))]
    confidence: f64,
    #[llm(length(max = 280))]
    rationale: String,
}

/// Classifies the sentiment of one customer review.
#[llm_task(
    model = "smollm2-135m",
    system = "You classify customer reviews.",
    prompt = "Review: {review}",
    timeout = "20s",
    deadline = "60s",
    temperature = 0.0,
    max_tokens = 256,
    seed = 7,
    on_timeout = retry(2),
    on_rate_limited = retry(5, initial = "500ms", max = "30s", multiplier = 2.0, jitter = true),
    on_provider_error = retry(2).then(fallback("gpt-4o-mini")),
    on_invalid_output = reask(2).then(fail),
    on_refusal = escalate,
    on_low_confidence(below = 0.7) = reask(1).then(escalate),
)]
async fn classify(review: &str) -> TaskResult<Sentiment>;

fn main() {
    let c = &classify::CONTRACT;
    assert_eq!(c.name, "classify");
    assert_eq!(c.version.len(), 16);
    assert_eq!(c.output.type_name, "Sentiment");
    assert!(c.output.has_confidence);
    assert_eq!(c.confidence_threshold(), Some(0.7));
    let _ = classify::with;
    let _fut = classify("great");
}
