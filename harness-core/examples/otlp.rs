//! Sends harness's spans and metrics to an OpenTelemetry collector over OTLP/HTTP.
//!
//! ```text
//! # any OTLP/HTTP receiver on :4318, e.g. the collector or Jaeger
//! cargo run -p harness-core --features otel --example otlp -- http://127.0.0.1:4318
//! ```
//!
//! Each call makes a `task classify` span with one `chat {model}` CLIENT span per attempt, and
//! updates `gen_ai.client.operation.duration`, `gen_ai.client.token.usage` and the
//! `harness.task.*` metrics. The provider here answers from a script so the example runs without
//! a model; use `Harness::from_env()`'s providers for real calls.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use harness_core::contract::{Action, Chain, OutputSpec, Params, TaskContract};
use harness_core::output::FieldPath;
use harness_core::provider::{BoxFuture, FinishReason, ProviderInfo};
use harness_core::telemetry::otlp;
use harness_core::{
    ChatRequest, ChatResponse, FailureClass, Harness, LlmOutput, Provider, ProviderError, Usage,
    ValidationErrors,
};

/// The sentiment of a review.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Sentiment {
    label: String,
}

impl LlmOutput for Sentiment {
    const TYPE_NAME: &'static str = "Sentiment";
    const HAS_CONFIDENCE: bool = false;
    fn validate(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        if !["positive", "neutral", "negative"].contains(&self.label.as_str()) {
            errors.push(
                &path.field("label"),
                "one_of",
                "must be positive, neutral or negative",
            );
        }
    }
}

fn schema() -> serde_json::Value {
    Sentiment::output_schema()
}

// What `#[llm_task]` generates; written out so the example needs no macros.
static CLASSIFY: TaskContract = TaskContract::new(
    "classify",
    "otlp_example",
    OutputSpec {
        type_name: "Sentiment",
        has_confidence: false,
        schema,
    },
)
.with_description("Classifies the sentiment of a review.")
.with_version("example")
.with_model("smollm2-135m")
.with_system("You classify customer reviews.")
.with_prompt("Review: {review}")
.with_timeout(Duration::from_secs(20))
.with_chains(&[
    Chain {
        class: FailureClass::InvalidOutput,
        steps: &[Action::Reask { times: 1 }, Action::Fail],
    },
    Chain {
        class: FailureClass::ProviderError,
        steps: &[Action::Fail],
    },
])
.with_params(Params {
    temperature: Some(0.0),
    max_tokens: Some(128),
    seed: None,
});

/// Answers from a script: one invalid answer (so a reask shows up), then valid ones.
struct Scripted(Mutex<VecDeque<&'static str>>);

impl Provider for Scripted {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "scripted".into(),
            address: None,
            port: None,
        }
    }
    fn chat<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        let next = self.0.lock().ok().and_then(|mut q| q.pop_front());
        Box::pin(async move {
            let content = next.unwrap_or(r#"{"label":"neutral"}"#);
            Ok(ChatResponse {
                content: content.into(),
                finish_reason: Some(FinishReason::Stop),
                model: Some("smollm2-135m".into()),
                usage: Usage {
                    input_tokens: 85,
                    output_tokens: 9,
                },
                ..ChatResponse::default()
            })
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:4318".to_owned());
    // Sets the tracing subscriber and starts the exporters; dropping the guard flushes them.
    let guard = otlp::install(&endpoint)?;
    let metrics = guard.metrics();

    let script = [r#"{"label":"great"}"#, r#"{"label":"positive"}"#];
    let harness = Harness::builder()
        .provider("scripted", Scripted(Mutex::new(script.into())))
        .observer(metrics.clone())
        .build()?;

    for review in [
        "Arrived quickly, works well.",
        "It is a kettle.",
        "Broke in a week.",
    ] {
        let outcome = harness
            .run::<Sentiment>(&CLASSIFY, vec![("review", review.to_owned())], None, None)
            .await?;
        println!("{review:?} → {:?} ({})", outcome.value(), outcome.summary());
    }

    let snapshot = metrics.snapshot();
    if let Some(stats) = snapshot.task("classify") {
        println!(
            "classify: {} calls, {} attempts, pass rate {:?}, {} input tokens",
            stats.calls,
            stats.attempts,
            stats.pass_rate(),
            stats.input_tokens
        );
    }
    drop(guard);
    println!("spans and metrics sent to {endpoint}");
    Ok(())
}
