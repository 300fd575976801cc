//! Live tests against the real local model (`scripts/local-model.sh`) or `OPENAI_BASE_URL`.
//!
//! They run only when `HARNESS_LIVE=1`; then a missing model is a failure, not a skip. CI sets it.
//! Each asserts the outcome it names: where a 135M model may end a call more than one way, the
//! ends its contract allows are listed and any other end fails the test.

use harness_core::HarnessBuilder;
use harness_core::outcome::CallReport;
use harness_core::prelude::*;
use harness_core::provider::{FinishReason, Role};
use harness_core::testing::fixtures::{Recording, last_user};

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

/// The word [`short_word`] must answer: nothing in its prompt or schema says so, so the model's
/// first answer breaks the rule and only a reask (which names the rule) can tell it.
const WANTED: &str = "quark";

// The signature `custom` rules take: `fn(&FieldType)`.
#[allow(clippy::ptr_arg)]
fn is_wanted(word: &String) -> Result<(), String> {
    if word.eq_ignore_ascii_case(WANTED) {
        Ok(())
    } else {
        Err(format!("must be the word \"{WANTED}\", got {word:?}"))
    }
}

/// A short word.
#[derive(Debug, LlmOutput)]
struct ShortWord {
    /// A single word of at most five letters.
    #[llm(length(min = 1, max = 5), pattern = "^[A-Za-z]+$", custom = is_wanted)]
    word: String,
}

/// Asks for a word under a rule the model cannot see until a reask names it (a `custom` rule has
/// no JSON-schema form, so no grammar can enforce it), so validation and reask do real work.
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

/// A harness from the environment whose OpenAI-compatible provider records what it is sent.
fn recording_harness() -> (Harness, Recording) {
    let inner = harness()
        .provider("openai")
        .cloned()
        .expect("from_env registers the OpenAI-compatible provider");
    let recording = Recording::new(inner);
    let harness = HarnessBuilder::from_env()
        .expect("the harness configures itself from the environment")
        .provider("openai", recording.clone())
        .build()
        .expect("the recording provider replaces the registered one");
    (harness, recording)
}

fn kinds(report: &CallReport) -> Vec<(FailureClass, &'static str)> {
    report
        .actions
        .iter()
        .map(|a| (a.class, a.action.as_str()))
        .collect()
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
        response_format: harness_core::provider::ResponseFormat::json_schema(
            "Hello",
            serde_json::json!({"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}),
        ),
        temperature: Some(0.0),
        max_tokens: Some(30),
        seed: Some(1),
        ..Default::default()
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
    // Unless the token limit cut it off, the answer is the object the schema describes.
    if response.finish_reason != Some(FinishReason::Length) {
        let value: serde_json::Value =
            serde_json::from_str(&response.content).expect("a complete answer is JSON");
        assert!(value["greeting"].is_string(), "{value}");
    }
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
    // A model server that answers leaves classify three ends: a checked answer, an escalation
    // (low confidence after its reask, or a refusal), or invalid output after both reasks.
    // Timeouts, provider errors and defaults would each be a failure of this test.
    match &result {
        Ok(outcome) => match &outcome.resolution {
            Resolution::Answer(s) => {
                assert!(
                    (0.7..=1.0).contains(&s.confidence),
                    "a low-confidence answer is never returned as an answer: {s:?}"
                );
                assert!(s.rationale.chars().count() <= 280, "{s:?}");
                assert!(
                    report.attempts.last().is_some_and(|a| a.failure.is_none()),
                    "{report:?}"
                );
            }
            Resolution::Escalated(e) => match e.class {
                FailureClass::LowConfidence => {
                    let candidate = e.candidate.as_ref().expect("the candidate is kept");
                    assert!(candidate.confidence < 0.7, "{candidate:?}");
                    assert!(
                        kinds(report).contains(&(FailureClass::LowConfidence, "reask")),
                        "reask(1) comes before escalate: {:?}",
                        kinds(report)
                    );
                }
                FailureClass::Refusal => assert_eq!(
                    kinds(report).last(),
                    Some(&(FailureClass::Refusal, "escalate"))
                ),
                other => panic!("classify escalates only low confidence and refusals, not {other}"),
            },
            Resolution::Default { class, .. } => {
                panic!("classify has no default step, yet ended with one after {class}")
            }
            other => panic!("an end this test does not know: {other:?}"),
        },
        Err(e) => {
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidOutput,
                "the only error classify can end in while the model answers: {e}"
            );
            let invalid_reasks = kinds(report)
                .iter()
                .filter(|k| **k == (FailureClass::InvalidOutput, "reask"))
                .count();
            assert_eq!(
                invalid_reasks,
                2,
                "reask(2) before fail: {:?}",
                kinds(report)
            );
            assert_eq!(
                kinds(report).last(),
                Some(&(FailureClass::InvalidOutput, "fail"))
            );
            assert!(!e.message().is_empty());
        }
    }
    match &result {
        Ok(outcome) => println!("classify: {:?} ({})", outcome.resolution, outcome.summary()),
        Err(e) => println!("classify failed as its contract says: {e}"),
    }
}

#[tokio::test]
async fn invalid_answers_are_reasked_with_their_errors() {
    if !live() {
        return;
    }
    let (harness, recording) = recording_harness();
    let result = short_word::with(&harness, "the ocean").await;
    let report = match &result {
        Ok(o) => &o.report,
        Err(e) => e.report(),
    };
    let sent = recording.requests();
    assert_eq!(sent.len(), report.attempts.len(), "one request per attempt");
    // The first answer cannot know the rule, so it is invalid, and says why.
    let first = &report.attempts[0];
    assert_eq!(
        first.failure,
        Some(FailureClass::InvalidOutput),
        "{first:?}"
    );
    assert!(
        first.validation.iter().any(|e| e.message.contains(WANTED)),
        "the custom rule's error: {:?}",
        first.validation
    );
    // Every invalid attempt but a last one is followed by a reask that shows the model its answer
    // and every error, worded as the rules word them.
    for (i, attempt) in report.attempts.iter().enumerate() {
        if attempt.failure != Some(FailureClass::InvalidOutput) || i + 1 == report.attempts.len() {
            continue;
        }
        let action = report
            .actions
            .iter()
            .find(|a| a.after_attempt == attempt.n)
            .expect("an action follows");
        assert_eq!(action.action.as_str(), "reask", "{:?}", kinds(report));
        let reask = &sent[i + 1];
        let shown = last_user(reask);
        for error in attempt.validation.iter() {
            assert!(
                shown.contains(&error.message),
                "the reask names {:?}: {shown}",
                error.message
            );
        }
        let raw = attempt.raw.as_deref().expect("the invalid answer is kept");
        let head: String = raw.chars().take(64).collect();
        assert!(
            reask
                .messages
                .iter()
                .any(|m| m.role == Role::Assistant && m.content.starts_with(&head)),
            "the reask echoes the previous answer {raw:?}"
        );
    }
    // Then the contract's ends, and only those: the wanted word after a reask, or invalid output
    // once both reasks are spent.
    match &result {
        Ok(outcome) => {
            let w = outcome.value().expect("no escalation in this contract");
            assert!(w.word.eq_ignore_ascii_case(WANTED), "{w:?}");
            assert!(outcome.provenance.reasks >= 1, "{:?}", outcome.provenance);
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidOutput, "{e}");
            assert_eq!(
                kinds(report),
                [
                    (FailureClass::InvalidOutput, "reask"),
                    (FailureClass::InvalidOutput, "reask"),
                    (FailureClass::InvalidOutput, "fail"),
                ]
            );
        }
    }
    println!(
        "short_word: {} attempts, ok = {}",
        report.attempts.len(),
        result.is_ok()
    );
}

/// The local server's tokenizer counts exactly, and the estimator's margin over-counts it on
/// English prose (the claim `docs/context.md` makes for the estimator).
#[tokio::test]
async fn the_local_tokenizer_counts_exactly_and_the_estimator_over_counts_it() {
    use harness_core::context::tokens::LlamaCppCounter;
    use harness_core::context::{Estimator, TokenCounter};
    if !live() || std::env::var_os("OPENAI_BASE_URL").is_some() {
        return;
    }
    let counter = LlamaCppCounter::new(harness_core::engine::DEFAULT_OPENAI_BASE_URL);
    // SmolLM2's tokenizer: "The", " quick", " brown", " fox".
    assert_eq!(counter.count_exact("The quick brown fox").await.unwrap(), 4);
    let prose = "Refunds go back to the card or account you paid with. Once we receive the \
        returned item, a refund takes 5 to 7 business days to appear on your statement.";
    counter.prime([prose]).await.unwrap();
    let exact = counter.count(prose);
    assert_eq!(exact, counter.count_exact(prose).await.unwrap());
    let estimate = Estimator::default().count(prose);
    assert!(
        estimate >= exact && estimate <= exact * 2,
        "estimate {estimate} vs exact {exact}"
    );
}

/// Prompted tools on a server without native tool calls: with a tool required, the "next action"
/// grammar leaves the model only `call_tool` branches, and the answer comes back as a tool call
/// of an offered tool whose arguments fit its schema.
#[tokio::test]
async fn prompted_tools_on_the_local_model_come_back_as_a_tool_call() {
    use harness_core::provider::{
        OpenAiCompatible, Provider, ToolCalling, ToolChoice, ToolDefinition,
    };
    if !live() {
        return;
    }
    let base =
        std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8089/v1".into());
    let provider = OpenAiCompatible::builder(base)
        .api_key(std::env::var("OPENAI_API_KEY").unwrap_or_default())
        .timeout(std::time::Duration::from_secs(120))
        .tool_calling(ToolCalling::Prompted)
        .build()
        .unwrap();
    let parameters = serde_json::json!({"type": "object",
        "properties": {"order_id": {"type": "string", "pattern": "^[A-Z]-[0-9]{1,4}$"}},
        "required": ["order_id"], "additionalProperties": false});
    let request = harness_core::ChatRequest {
        model: std::env::var("HARNESS_MODEL").unwrap_or_else(|_| "smollm2-135m".into()),
        messages: vec![
            Message::system("You are a support agent."),
            Message::user("Where is my order A-17?"),
        ],
        tools: vec![ToolDefinition::new(
            "lookup_order",
            "Looks up an order by its id.",
            parameters.clone(),
        )],
        tool_choice: Some(ToolChoice::Required),
        temperature: Some(0.0),
        max_tokens: Some(80),
        seed: Some(1),
        ..Default::default()
    };
    let response = provider
        .chat(&request)
        .await
        .expect("the model server answers");
    assert_eq!(response.tool_calls.len(), 1, "{response:?}");
    let call = &response.tool_calls[0];
    assert_eq!(call.name, "lookup_order");
    let args = call.json().expect("JSON arguments");
    assert!(
        harness_core::output::SchemaValidator::new(parameters).is_valid(args),
        "arguments fit the tool's schema: {args}"
    );
    eprintln!(
        "prompted tool call from the local model: {} {args}",
        call.name
    );
}
