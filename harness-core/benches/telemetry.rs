//! The cost of telemetry per call: the span helpers the engine calls (task span, one attempt span,
//! response, attempt, call end) and the `Metrics` observer, for a call answered on its first
//! attempt. Target: under 5 µs per call together with audit.
//!
//! ```text
//! cargo bench -p harness-core --bench telemetry                 # no subscriber, registry
//! cargo bench -p harness-core --bench telemetry --features otel # + tracing-opentelemetry, SDK meter
//! ```
//!
//! Medians on the 2-core development machine (2026-11): no subscriber 0.19 µs (run alone; other
//! benches' scoped subscribers leave callsites enabled), a bare registry 0.8 µs, the full
//! OpenTelemetry SDK 4.2 µs (spans 2.8 µs, metrics 1.2 µs). Metrics in memory alone: 0.16 µs.
//!
//! The export's cost on the caller's thread, `per_call_with_otlp_export` against
//! `per_call_without_exporter` (2026-12, `--sample-size 50 --sample-count 200`): 4.9 µs against
//! 0.66 µs, so export adds about 4.3 µs per call, over the 2 µs budget. Of that, about 2.8 µs is
//! `tracing-opentelemetry` building SDK spans on the caller's thread
//! (`span_helpers_only_with_opentelemetry` 3.4 µs against 0.57 µs with a bare registry) and about
//! 0.5 µs the SDK's histograms (`metrics_observer_only_with_opentelemetry` 0.55 µs against
//! 0.04 µs in memory; the counters are observable, read at collection, and cost the caller
//! nothing: this was 0.97 µs when they were recorded per call); the batch processor's hand-off
//! is the rest.

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use divan::{Bencher, black_box};
use harness_core::contract::TaskContract;
use harness_core::observe::{CallEnd, Observer};
use harness_core::outcome::CallReport;
use harness_core::provider::{FinishReason, ProviderInfo};
use harness_core::telemetry::{self, Metrics};
use harness_core::testing::fixtures::{ContractBuilder, FnProvider, Label, output};
use harness_core::{ChatRequest, ChatResponse, Harness, Usage};

fn main() {
    divan::main();
}

static CLASSIFY: TaskContract = ContractBuilder::new("classify", output::<Label>())
    .module("bench")
    .description("Classifies a review.")
    .version("v1")
    .model(Some("gpt-4o-mini"))
    .system("You classify reviews.")
    .prompt("Review: {review}")
    .params(Some(0.0), Some(64), None)
    .build();

fn info() -> ProviderInfo {
    ProviderInfo {
        name: "openai".into(),
        address: Some("api.openai.com".into()),
        port: Some(443),
    }
}

fn response() -> ChatResponse {
    ChatResponse {
        content: r#"{"label":"positive"}"#.into(),
        refusal: None,
        finish_reason: Some(FinishReason::Stop),
        model: Some("gpt-4o-mini-2024-07-18".into()),
        id: Some("chatcmpl-1".into()),
        usage: Usage::new(120, 30),
        ..Default::default()
    }
}

/// Answers every request with [`response`], instantly.
fn answer() -> FnProvider {
    FnProvider::responses(|_, _| Ok(response())).with_info(info())
}

/// One real finished call, kept so a `CallEnd` can be rebuilt for every iteration.
struct Sample {
    report: CallReport,
    request: ChatRequest,
    inputs: Vec<(&'static str, String)>,
    value: Option<serde_json::Value>,
    // The engine's status type is only reachable by inference: kept as `Any`, read back by the
    // `CallEnd` field's type.
    status: Box<dyn Any + Send + Sync>,
}

#[derive(Default)]
struct Stash(Arc<Mutex<Option<Sample>>>);

impl Observer for Stash {
    fn on_call_end(&self, end: &CallEnd<'_>) {
        *self.0.lock().unwrap() = Some(Sample {
            report: end.report.clone(),
            request: end.request.clone(),
            inputs: end.inputs.to_vec(),
            value: end.value.cloned(),
            status: Box::new(end.status),
        });
    }
}

impl Sample {
    fn take() -> Sample {
        let stash = Stash::default();
        let slot = stash.0.clone();
        let harness = Harness::builder()
            .provider("openai", answer())
            .observer(stash)
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(harness.run::<Label>(&CLASSIFY, vec![("review", "fine".into())], None, None))
            .expect("answer");
        slot.lock().unwrap().take().expect("observed")
    }

    fn end(&self) -> CallEnd<'_> {
        CallEnd {
            contract: &CLASSIFY,
            report: &self.report,
            request: &self.request,
            inputs: &self.inputs,
            status: *self.status.downcast_ref().expect("status"),
            value: self.value.as_ref(),
            reason: None,
            candidate: None,
            actor: None,
        }
    }
}

/// What the engine does for telemetry in one call with one attempt.
fn one_call(sample: &Sample, response: &ChatResponse, metrics: &Metrics) {
    let end = sample.end();
    let task = telemetry::task_span(&CLASSIFY);
    let _entered = task.enter();
    let attempt = telemetry::attempt_span(&info(), &sample.request);
    telemetry::record_response(&attempt, response);
    telemetry::record_attempt(&attempt, &sample.report.attempts[0]);
    drop(attempt);
    telemetry::record_call_end(&task, &end);
    metrics.on_call_end(&end);
}

#[divan::bench]
fn call_without_subscriber(bencher: Bencher) {
    let sample = Sample::take();
    let response = response();
    let metrics = Metrics::new();
    bencher.bench_local(|| one_call(black_box(&sample), &response, &metrics));
}

#[divan::bench]
fn call_with_registry(bencher: Bencher) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let sample = Sample::take();
    let response = response();
    let metrics = Metrics::new();
    // A registry with a layer that does nothing: spans are created and their fields visited.
    let subscriber =
        tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new());
    let _guard = tracing::subscriber::set_default(subscriber);
    bencher.bench_local(|| one_call(black_box(&sample), &response, &metrics));
}

#[divan::bench]
fn metrics_observer_only(bencher: Bencher) {
    let sample = Sample::take();
    let metrics = Metrics::new();
    bencher.bench_local(|| metrics.on_call_end(black_box(&sample.end())));
}

#[divan::bench]
fn span_helpers_only_with_registry(bencher: Bencher) {
    let sample = Sample::take();
    let response = response();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
    bencher.bench_local(|| {
        let end = sample.end();
        let task = telemetry::task_span(&CLASSIFY);
        let _entered = task.enter();
        let attempt = telemetry::attempt_span(&info(), &sample.request);
        telemetry::record_response(&attempt, &response);
        telemetry::record_attempt(&attempt, &sample.report.attempts[0]);
        drop(attempt);
        telemetry::record_call_end(&task, &end);
    });
}

/// Discards metrics: the SDK aggregates them as usual, nothing leaves the process.
#[cfg(feature = "otel")]
struct Discard;

#[cfg(feature = "otel")]
impl opentelemetry_sdk::metrics::exporter::PushMetricExporter for Discard {
    async fn export(
        &self,
        _: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        opentelemetry_sdk::metrics::Temporality::Cumulative
    }
}

#[cfg(feature = "otel")]
fn sdk_meter() -> opentelemetry_sdk::metrics::SdkMeterProvider {
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(Discard)
        .with_interval(Duration::from_secs(3600))
        .build();
    opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(reader)
        .build()
}

/// A registry with the OpenTelemetry layer configured as `otlp::Otlp::layer` configures it, over
/// a tracer provider with no span processor (spans are built, sampled and dropped at their end).
#[cfg(feature = "otel")]
fn otel_subscriber() -> impl tracing::Subscriber + Send + Sync {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .build()
        .tracer("harness");
    tracing_subscriber::registry().with(harness_core::telemetry::otlp::configure_layer(
        tracing_opentelemetry::layer().with_tracer(tracer),
    ))
}

/// Everything with the OpenTelemetry SDK in the loop: spans through tracing-opentelemetry,
/// metrics through SDK instruments (exported to nowhere, once an hour).
#[cfg(feature = "otel")]
#[divan::bench]
fn call_with_opentelemetry_sdk(bencher: Bencher) {
    use opentelemetry::metrics::MeterProvider as _;
    let sample = Sample::take();
    let response = response();
    let meter_provider = sdk_meter();
    let metrics = Metrics::new().with_meter(&meter_provider.meter("harness"));
    let _guard = tracing::subscriber::set_default(otel_subscriber());
    bencher.bench_local(|| one_call(black_box(&sample), &response, &metrics));
}

/// The span helpers alone, through tracing-opentelemetry.
#[cfg(feature = "otel")]
#[divan::bench]
fn span_helpers_only_with_opentelemetry(bencher: Bencher) {
    let sample = Sample::take();
    let response = response();
    let _guard = tracing::subscriber::set_default(otel_subscriber());
    bencher.bench_local(|| {
        let end = sample.end();
        let task = telemetry::task_span(&CLASSIFY);
        let _entered = task.enter();
        let attempt = telemetry::attempt_span(&info(), &sample.request);
        telemetry::record_response(&attempt, &response);
        telemetry::record_attempt(&attempt, &sample.report.attempts[0]);
        drop(attempt);
        telemetry::record_call_end(&task, &end);
    });
}

/// The metrics observer alone, through SDK instruments.
#[cfg(feature = "otel")]
#[divan::bench]
fn metrics_observer_only_with_opentelemetry(bencher: Bencher) {
    use opentelemetry::metrics::MeterProvider as _;
    let sample = Sample::take();
    let meter_provider = sdk_meter();
    let metrics = Metrics::new().with_meter(&meter_provider.meter("harness"));
    bencher.bench_local(|| metrics.on_call_end(black_box(&sample.end())));
}

// --- The export's cost on the caller's thread ---------------------------------------------------
//
// The issue's budget: exporting adds at most 2 µs per call on the caller's thread. Both benches
// below run the same call (`one_call`) under a registry; the second adds the real pipeline that
// `otlp::install` builds (its layer, its `Metrics` with SDK instruments, batch span processor,
// periodic metric reader) sending to an OTLP sink on 127.0.0.1. Batching and HTTP happen on the
// SDK's and harness's own threads; what is measured is what the caller pays.

/// An OTLP/HTTP receiver on 127.0.0.1 that answers 200 to everything and keeps nothing.
#[cfg(feature = "otel")]
fn sink() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    url
}

/// Baseline: a registry and in-memory metrics, no exporter.
#[divan::bench]
fn per_call_without_exporter(bencher: Bencher) {
    let sample = Sample::take();
    let response = response();
    let metrics = Metrics::new();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
    bencher.bench_local(|| one_call(black_box(&sample), &response, &metrics));
}

/// The same call with the OTLP pipeline exporting spans and metrics to a loopback sink.
#[cfg(feature = "otel")]
#[divan::bench]
fn per_call_with_otlp_export(bencher: Bencher) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let sample = Sample::take();
    let response = response();
    let pipeline = harness_core::telemetry::otlp::builder(sink())
        .metrics_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let metrics = pipeline.metrics();
    let subscriber = tracing_subscriber::registry().with(pipeline.layer());
    let _guard = tracing::subscriber::set_default(subscriber);
    bencher.bench_local(|| one_call(black_box(&sample), &response, &metrics));
    drop(_guard);
    pipeline
        .shutdown()
        .expect("everything exported to the sink");
}
