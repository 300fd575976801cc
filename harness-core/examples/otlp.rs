//! Sends harness's spans and metrics to an OpenTelemetry collector over OTLP/HTTP.
//!
//! ```text
//! # any OTLP/HTTP receiver on :4318, e.g. the collector or Jaeger
//! cargo run -p harness-core --features otel,testing --example otlp -- http://127.0.0.1:4318
//! ```
//!
//! Each call makes a `task classify` span with one `chat {model}` CLIENT span per attempt, and
//! updates `gen_ai.client.operation.duration`, `gen_ai.client.token.usage` and the
//! `harness.task.*` metrics. The provider here answers from a script (the `testing` fixtures) so the
//! example runs without a model; use `Harness::from_env()`'s providers for real calls.

use std::time::Duration;

use harness_core::contract::{Action, FailureClass, TaskContract};
use harness_core::telemetry::otlp;
use harness_core::testing::fixtures::{ContractBuilder, FnProvider, Label, chain, output};
use harness_core::{ChatResponse, Harness, Usage};

// What `#[llm_task]` generates; built by hand so the example needs no macros.
static CLASSIFY: TaskContract = ContractBuilder::new("classify", output::<Label>())
    .module("otlp_example")
    .description("Classifies the sentiment of a review.")
    .version("example")
    .model(Some("smollm2-135m"))
    .system("You classify customer reviews.")
    .prompt("Review: {review}")
    .timeout(Duration::from_secs(20))
    .chains(&[
        chain(
            FailureClass::InvalidOutput,
            &[Action::Reask { times: 1 }, Action::Fail],
        ),
        chain(FailureClass::ProviderError, &[Action::Fail]),
    ])
    .params(Some(0.0), Some(128), None)
    .build();

/// Answers from a script: one invalid answer (so a reask shows up), then valid ones.
fn scripted() -> FnProvider {
    let script = [r#"{"label":"great"}"#, r#"{"label":"positive"}"#];
    FnProvider::responses(move |_, n| {
        let content = script
            .get(n as usize)
            .copied()
            .unwrap_or(r#"{"label":"neutral"}"#);
        Ok(ChatResponse {
            content: content.into(),
            finish_reason: Some(harness_core::provider::FinishReason::Stop),
            model: Some("smollm2-135m".into()),
            usage: Usage {
                input_tokens: 85,
                output_tokens: 9,
            },
            ..ChatResponse::default()
        })
    })
    .with_info(harness_core::provider::ProviderInfo {
        name: "scripted".into(),
        address: None,
        port: None,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:4318".to_owned());
    // Sets the tracing subscriber and starts the exporters; dropping the guard flushes them.
    let guard = otlp::install(&endpoint)?;
    let metrics = guard.metrics();

    let harness = Harness::builder()
        .provider("scripted", scripted())
        .observer(metrics.clone())
        .build()?;

    for review in [
        "Arrived quickly, works well.",
        "It is a kettle.",
        "Broke in a week.",
    ] {
        let outcome = harness
            .run::<Label>(&CLASSIFY, vec![("review", review.to_owned())], None, None)
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
