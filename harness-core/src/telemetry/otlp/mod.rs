//! Export of spans and metrics over OTLP/HTTP with protobuf bodies (feature `otel`).
//!
//! The simplest setup, at the start of `main`:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use harness_core::Harness;
//!
//! // Spans go to http://127.0.0.1:4318/v1/traces, metrics to .../v1/metrics.
//! let otlp = harness_core::telemetry::otlp::install("http://127.0.0.1:4318")?;
//! let harness = Harness::builder().observer(otlp.metrics()).build()?;
//! // ... run tasks; dropping `otlp` flushes and shuts the exporters down.
//! # let _ = harness; Ok(()) }
//! ```
//!
//! [`install`] sets the process's tracing subscriber. To combine the export with a subscriber of
//! your own, build an [`Otlp`] and add its [`layer`](Otlp::layer) to your registry instead.

mod http;

use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

use super::Metrics;
use crate::observe::names as n;

/// Why the OTLP pipeline could not be set up or flushed.
#[derive(Debug, thiserror::Error)]
#[error("OTLP telemetry: {0}")]
pub struct OtlpError(String);

impl OtlpError {
    fn new(context: &str, e: impl std::fmt::Display) -> Self {
        OtlpError(format!("{context}: {e}"))
    }
}

/// Configures an [`Otlp`] pipeline.
#[derive(Clone, Debug)]
pub struct OtlpBuilder {
    endpoint: String,
    service_name: Option<String>,
    timeout: Duration,
    metrics_interval: Duration,
    headers: Vec<(String, String)>,
}

/// A builder for a pipeline that sends to `endpoint`, the collector's base URL
/// (`http://host:4318`): spans go to `{endpoint}/v1/traces`, metrics to `{endpoint}/v1/metrics`.
pub fn builder(endpoint: impl Into<String>) -> OtlpBuilder {
    OtlpBuilder {
        endpoint: endpoint.into(),
        service_name: None,
        timeout: Duration::from_secs(10),
        metrics_interval: Duration::from_secs(60),
        headers: Vec::new(),
    }
}

impl OtlpBuilder {
    /// The `service.name` resource attribute (default: `OTEL_SERVICE_NAME`, else `harness`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// How long one export may take (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often metrics are exported (default 60 s; they are also exported at shutdown).
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval;
        self
    }

    /// A header sent with every export (e.g. a collector's API key). Headers are never logged.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Starts the exporters.
    pub fn build(self) -> Result<Otlp, OtlpError> {
        let base = self.endpoint.trim_end_matches('/');
        let client = http::ExportClient::spawn(self.timeout)
            .map_err(|e| OtlpError::new("starting the export thread", e))?;
        let headers: std::collections::HashMap<String, String> = self.headers.into_iter().collect();

        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{base}/v1/traces"))
            .with_timeout(self.timeout)
            .with_headers(headers.clone())
            .with_http_client(client.clone())
            .build()
            .map_err(|e| OtlpError::new("building the span exporter", e))?;
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{base}/v1/metrics"))
            .with_timeout(self.timeout)
            .with_headers(headers)
            .with_http_client(client)
            .build()
            .map_err(|e| OtlpError::new("building the metric exporter", e))?;

        let service = self
            .service_name
            .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
            .unwrap_or_else(|| n::SCOPE.to_owned());
        let resource = Resource::builder().with_service_name(service).build();
        let tracer_provider = SdkTracerProvider::builder()
            .with_batch_exporter(spans)
            .with_resource(resource.clone())
            .build();
        let reader = PeriodicReader::builder(metrics)
            .with_interval(self.metrics_interval)
            .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(resource)
            .build();
        Ok(Otlp {
            tracer_provider,
            meter_provider,
        })
    }
}

/// A running export pipeline: a tracer provider for spans and a meter provider for metrics.
/// Call [`shutdown`](Self::shutdown) (or drop an [`OtlpGuard`]) before exiting, or the last
/// batch is lost.
#[derive(Debug, Clone)]
pub struct Otlp {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(n::SCOPE)
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_schema_url(n::SCHEMA_URL)
        .build()
}

impl Otlp {
    /// The `tracing` layer that exports spans through this pipeline.
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let tracer = self.tracer_provider.tracer_with_scope(scope());
        configure_layer(tracing_opentelemetry::layer().with_tracer(tracer))
    }

    /// The meter harness's metrics are recorded with.
    pub fn meter(&self) -> Meter {
        self.meter_provider.meter_with_scope(scope())
    }

    /// A [`Metrics`] observer exported through this pipeline (and readable in memory).
    pub fn metrics(&self) -> Metrics {
        Metrics::new().with_meter(&self.meter())
    }

    /// The tracer provider, to add processors or make tracers of your own.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// The meter provider.
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.meter_provider
    }

    /// Exports everything recorded so far, waiting for the collector to answer.
    pub fn force_flush(&self) -> Result<(), OtlpError> {
        self.tracer_provider
            .force_flush()
            .map_err(|e| OtlpError::new("flushing spans", e))?;
        self.meter_provider
            .force_flush()
            .map_err(|e| OtlpError::new("flushing metrics", e))
    }

    /// Flushes and stops both exporters. Spans and metrics recorded afterwards are dropped.
    pub fn shutdown(&self) -> Result<(), OtlpError> {
        let spans = self
            .tracer_provider
            .shutdown()
            .map_err(|e| OtlpError::new("shutting down spans", e));
        let metrics = self
            .meter_provider
            .shutdown()
            .map_err(|e| OtlpError::new("shutting down metrics", e));
        spans.and(metrics)
    }
}

/// The settings harness uses for the OpenTelemetry layer, for a layer you build yourself: no
/// busy/idle timings, thread ids or source locations on spans. Those cost a few hundred
/// nanoseconds per span and are noise on GenAI spans; turn them back on after this if you want them.
pub fn configure_layer<S, T>(layer: OpenTelemetryLayer<S, T>) -> OpenTelemetryLayer<S, T>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    T: opentelemetry::trace::Tracer + 'static,
    T::Span: Send + Sync,
{
    layer
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
}

/// What [`install`] returns: the pipeline, shut down (and flushed) when dropped.
#[derive(Debug)]
#[must_use = "dropping the guard shuts the export down"]
pub struct OtlpGuard {
    otlp: Otlp,
}

impl OtlpGuard {
    /// The pipeline.
    pub fn otlp(&self) -> &Otlp {
        &self.otlp
    }

    /// A [`Metrics`] observer exported through the pipeline: give it to the harness builder.
    pub fn metrics(&self) -> Metrics {
        self.otlp.metrics()
    }
}

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        if let Err(e) = self.otlp.shutdown() {
            eprintln!("harness: {e}");
        }
    }
}

/// Sends spans and metrics to the OTLP/HTTP collector at `endpoint` (`http://host:4318`).
///
/// Sets the process's tracing subscriber to a registry with this pipeline's layer, filtered by
/// `RUST_LOG` (default `info`), and the global meter provider. Fails if a subscriber is already
/// set; build an [`Otlp`] with [`builder`] to compose with your own.
pub fn install(endpoint: impl Into<String>) -> Result<OtlpGuard, OtlpError> {
    use tracing_subscriber::layer::SubscriberExt as _;

    let otlp = builder(endpoint).build()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::registry()
        .with(otlp.layer())
        .with(filter);
    if let Err(e) = tracing::subscriber::set_global_default(subscriber) {
        let _ = otlp.shutdown();
        return Err(OtlpError::new("setting the tracing subscriber", e));
    }
    opentelemetry::global::set_meter_provider(otlp.meter_provider.clone());
    Ok(OtlpGuard { otlp })
}
