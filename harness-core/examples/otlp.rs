//! Sends harness's spans and metrics to an OpenTelemetry collector over OTLP/HTTP.
//!
//! ```text
//! # any OTLP/HTTP receiver on :4318, e.g. the collector or Jaeger
//! cargo run -p harness-core --features otel,testing --example otlp -- http://127.0.0.1:4318
//! # or from the standard variables (both endpoint forms work; see docs/telemetry.md)
//! OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:6006/v1/traces OTEL_METRICS_EXPORTER=none \
//!   OTEL_SERVICE_NAME=otlp-example cargo run -p harness-core --features otel,testing --example otlp
//! ```
//!
//! Each call makes an `invoke_workflow classify` span with one `chat {model}` CLIENT span per
//! attempt (the tokens are on those, counted once), and
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
            usage: Usage::new(85, 9),
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
    // An endpoint on the command line wins; else the OTEL_* variables, else localhost:4318.
    let pipeline = match std::env::args().nth(1) {
        Some(endpoint) => otlp::builder(endpoint),
        None => otlp::from_env(),
    };
    // Sets the tracing subscriber (export at INFO whatever RUST_LOG says; logs on stderr at
    // RUST_LOG, default warn) and starts the exporters.
    let guard = pipeline.install()?;
    let traces = guard
        .otlp()
        .traces_endpoint()
        .unwrap_or("nowhere (off)")
        .to_owned();
    let metrics_to = guard
        .otlp()
        .metrics_endpoint()
        .unwrap_or("nowhere (off)")
        .to_owned();
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
    // Flushes and says whether everything arrived; a failed export was already said once, on
    // stderr, with its URL and HTTP status.
    match guard.shutdown() {
        Ok(()) => println!("spans sent to {traces}, metrics to {metrics_to}"),
        Err(_) => {
            println!("not everything was exported: the export error is printed above");
            std::process::exit(1);
        }
    }
    Ok(())
}
