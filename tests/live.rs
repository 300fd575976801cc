//! Live tests against the real local model (`scripts/local-model.sh`) or `OPENAI_BASE_URL`.
//!
//! They run only when `HARNESS_LIVE=1`; then a missing model is a failure, not a skip. CI sets it.

use harness_core::prelude::*;

fn live() -> bool {
    match std::env::var("HARNESS_LIVE").as_deref() {
        Ok("1") => true,
        _ => {
            eprintln!("live test skipped: set HARNESS_LIVE=1 (and run scripts/local-model.sh)");
            false
        }
    }
}

#[path = "../examples/support/tasks.rs"]
mod tasks;

use tasks::classify;

/// A word and its length.
#[derive(Debug, LlmOutput)]
struct ShortWord {
    /// A single word of at most five letters.
    #[llm(length(min = 1, max = 5), pattern = "^[A-Za-z]+$")]
    word: String,
}

/// Asks for something the tiny model often gets wrong, so validation and reask do real work.
#[llm_task(
    model = "smollm2-135m",
    prompt = "Give one short English word related to: {topic}",
    timeout = "120s",
    temperature = 0.0,
    max_tokens = 40,
    on_timeout = retry(1),
    on_rate_limited = retry(2),
    on_provider_error = retry(1),
    on_invalid_output = reask(2).then(fail),
    on_refusal = fail,
)]
async fn short_word(topic: &str) -> TaskResult<ShortWord>;

fn harness() -> Harness {
    Harness::from_env().expect("the harness configures itself from the environment")
}

#[tokio::test]
async fn the_model_server_answers_a_json_schema_request() {
    if !live() {
        return;
    }
    let h = harness();
    let provider = h
        .provider("openai")
        .expect("from_env registers the OpenAI-compatible provider");
    let request = harness_core::ChatRequest {
        model: std::env::var("HARNESS_MODEL").unwrap_or_else(|_| "smollm2-135m".into()),
        messages: vec![Message::user(
            "Say hello as JSON with a field named greeting.",
        )],
        response_format: harness_core::provider::ResponseFormat::JsonSchema {
            name: "Hello".into(),
            schema: serde_json::json!({"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}),
        },
        temperature: Some(0.0),
        max_tokens: Some(30),
        seed: Some(1),
    };
    let response = provider
        .chat(&request)
        .await
        .expect("the model server answers");
    assert!(response.usage.output_tokens > 0, "{response:?}");
    assert!(
        response.content.contains("greeting"),
        "the grammar-constrained answer follows the schema: {response:?}"
    );
}

#[tokio::test]
async fn classify_returns_a_checked_value_from_the_real_model() {
    if !live() {
        return;
    }
    let result = classify::with(
        &harness(),
        "Terrible. It broke on day one and nobody answered my emails.",
    )
    .await;
    let report = match &result {
        Ok(o) => &o.report,
        Err(e) => e.report(),
    };
    assert!(!report.attempts.is_empty());
    let first = &report.attempts[0];
    assert!(first.raw.is_some(), "the model answered: {first:?}");
    assert!(
        first.usage.input_tokens > 0 && first.usage.output_tokens > 0,
        "usage is reported: {first:?}"
    );
    match result {
        Ok(outcome) => {
            if let Some(s) = outcome.value() {
                assert!((0.0..=1.0).contains(&s.confidence));
                assert!(
                    s.confidence >= 0.7,
                    "a low-confidence answer is never returned as an answer"
                );
                assert!(s.rationale.chars().count() <= 280);
            }
            println!("classify: {:?} ({})", outcome.resolution, outcome.summary());
        }
        Err(e) => {
            // A typed failure is a legitimate end; it must say what was wrong.
            assert!(!e.message().is_empty());
            println!(
                "classify failed as its contract says: {:?} {}",
                e.kind(),
                e.message()
            );
        }
    }
}

#[tokio::test]
async fn invalid_answers_are_reasked_with_their_errors() {
    if !live() {
        return;
    }
    let result = short_word::with(&harness(), "the ocean, with a long explanation").await;
    let report = match &result {
        Ok(o) => &o.report,
        Err(e) => e.report(),
    };
    for (i, attempt) in report.attempts.iter().enumerate() {
        if attempt.failure == Some(FailureClass::InvalidOutput) {
            assert!(
                !attempt.validation.is_empty(),
                "an invalid attempt names its errors"
            );
            let next = report
                .actions
                .iter()
                .find(|a| a.after_attempt == attempt.n)
                .expect("an action follows");
            assert!(i + 1 == report.attempts.len() || next.action.as_str() == "reask");
        }
    }
    if let Ok(outcome) = &result {
        let w = outcome.value().expect("no escalation in this contract");
        assert!(
            w.word.chars().count() <= 5 && w.word.chars().all(|c| c.is_ascii_alphabetic()),
            "{w:?}"
        );
    }
    println!(
        "short_word: {} attempts, ok = {}",
        report.attempts.len(),
        result.is_ok()
    );
}
