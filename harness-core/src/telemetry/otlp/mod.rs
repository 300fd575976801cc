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
//! // ... run tasks; `otlp.shutdown()` (or dropping it) flushes and stops the exporters.
//! # let _ = harness; Ok(()) }
//! ```
//!
//! Or from the standard variables alone (`OTEL_EXPORTER_OTLP_ENDPOINT`, `..._HEADERS`,
//! `OTEL_SERVICE_NAME`, ...; see [`config`] for the list and the rules):
//! `otlp::from_env().install()?`. An endpoint is accepted as the base URL (`http://host:4318`) or
//! as the full traces URL (`http://host:6006/v1/traces`, as Phoenix prints it).
//!
//! Export does not depend on `RUST_LOG`: the OTLP layer has its own level
//! ([`OtlpBuilder::level`], default INFO), so `RUST_LOG=warn` quiets the terminal and every span
//! is still exported. A failed export is said once per cause, on standard error by default
//! ([`OtlpBuilder::on_export_error`]), with the signal, the URL and the HTTP status.
//!
//! [`install`] sets the process's tracing subscriber. To combine the export with a subscriber of
//! your own, build an [`Otlp`] and add its [`layer`](Otlp::layer) to your registry instead; give
//! your log layer its own filter (`fmt::layer().with_filter(EnvFilter::from_default_env())`), as
//! a filter added to the registry itself (`.with(EnvFilter)`) filters every layer, export included.

pub mod config;
mod http;
mod report;

use std::sync::Arc;
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
use tracing_subscriber::filter::{Filtered, LevelFilter};
use tracing_subscriber::registry::LookupSpan;

use super::Metrics;
use crate::observe::names as n;
pub use report::{Cause, ExportFailure, Signal};

/// Why the OTLP pipeline could not be set up, or what it could not export.
#[derive(thiserror::Error)]
#[error("OTLP telemetry: {0}")]
pub struct OtlpError(String);

/// The message itself, so `main() -> Result<_, Box<dyn Error>>` prints a readable line.
impl std::fmt::Debug for OtlpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl OtlpError {
    fn new(context: &str, e: impl std::fmt::Display) -> Self {
        OtlpError(format!("{context}: {e}"))
    }
}

/// Configures an [`Otlp`] pipeline. Every setting left alone takes its standard `OTEL_*`
/// variable, then the specification's default ([`config`]).
#[derive(Clone)]
pub struct OtlpBuilder {
    explicit: config::Explicit,
    service_name: Option<String>,
    level: tracing::Level,
    handler: report::Handler,
}

impl std::fmt::Debug for OtlpBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are often keys: only their names are shown.
        let headers: Vec<&str> = self
            .explicit
            .headers
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        f.debug_struct("OtlpBuilder")
            .field("endpoint", &self.explicit.endpoint)
            .field("traces_endpoint", &self.explicit.traces_endpoint)
            .field("metrics_endpoint", &self.explicit.metrics_endpoint)
            .field("headers", &headers)
            .field("service_name", &self.service_name)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// A builder for a pipeline that sends to `endpoint`: the collector's base URL
/// (`http://host:4318`; spans go to `{endpoint}/v1/traces`, metrics to `{endpoint}/v1/metrics`),
/// or the full traces URL (`http://host:6006/v1/traces`), whose base is then used for metrics.
/// It wins over the endpoint variables (`OTEL_EXPORTER_OTLP_ENDPOINT` and the signal ones);
/// [`traces_endpoint`](OtlpBuilder::traces_endpoint) and
/// [`metrics_endpoint`](OtlpBuilder::metrics_endpoint) win over it.
pub fn builder(endpoint: impl Into<String>) -> OtlpBuilder {
    OtlpBuilder {
        explicit: config::Explicit {
            endpoint: Some(endpoint.into()),
            ..config::Explicit::default()
        },
        ..from_env()
    }
}

/// A builder configured by the standard `OTEL_*` variables alone (endpoint default
/// `http://localhost:4318`). Bad values are reported by [`build`](OtlpBuilder::build).
pub fn from_env() -> OtlpBuilder {
    OtlpBuilder {
        explicit: config::Explicit::default(),
        service_name: None,
        level: tracing::Level::INFO,
        handler: report::print_to_stderr(),
    }
}

impl OtlpBuilder {
    /// The `service.name` resource attribute (default: `OTEL_SERVICE_NAME`, else `service.name`
    /// in `OTEL_RESOURCE_ATTRIBUTES`, else `harness`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The full URL spans are posted to, used as it is (default: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// else the base URL + `/v1/traces`).
    pub fn traces_endpoint(mut self, url: impl Into<String>) -> Self {
        self.explicit.traces_endpoint = Some(url.into());
        self
    }

    /// The full URL metrics are posted to, used as it is (default:
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, else the base URL + `/v1/metrics`).
    pub fn metrics_endpoint(mut self, url: impl Into<String>) -> Self {
        self.explicit.metrics_endpoint = Some(url.into());
        self
    }

    /// Whether spans are exported (default: on, unless `OTEL_TRACES_EXPORTER=none`).
    pub fn traces(mut self, on: bool) -> Self {
        self.explicit.traces = Some(on);
        self
    }

    /// Whether metrics are exported (default: on, unless `OTEL_METRICS_EXPORTER=none`). Turn
    /// them off for receivers that take only traces, such as Phoenix and Langfuse.
    pub fn metrics(mut self, on: bool) -> Self {
        self.explicit.metrics = Some(on);
        self
    }

    /// How long one export may take (default: `OTEL_EXPORTER_OTLP_TIMEOUT`, else 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.explicit.timeout = Some(timeout);
        self
    }

    /// How often metrics are exported (default: `OTEL_METRIC_EXPORT_INTERVAL`, else 60 s; they
    /// are also exported at shutdown).
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.explicit.metrics_interval = Some(interval);
        self
    }

    /// A header sent with every export (e.g. a collector's API key), added to those of
    /// `OTEL_EXPORTER_OTLP_HEADERS` and replacing one of the same name. Headers are never logged.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.explicit.headers.push((name.into(), value.into()));
        self
    }

    /// The most verbose spans and span events exported (default INFO: every harness span, and
    /// the decisions as events). It is the export's own filter: `RUST_LOG` does not change it.
    pub fn level(mut self, level: tracing::Level) -> Self {
        self.level = level;
        self
    }

    /// What to do with a failed export (default: print its line on standard error). Called once
    /// per cause (receiver and status, or connection error), on the export thread, never on a
    /// caller's.
    pub fn on_export_error(
        mut self,
        handler: impl Fn(&ExportFailure) + Send + Sync + 'static,
    ) -> Self {
        self.handler = Arc::new(handler);
        self
    }

    /// Starts the exporters.
    pub fn build(self) -> Result<Otlp, OtlpError> {
        let settings = config::resolve(&self.explicit, &|name| std::env::var(name).ok())?;
        let reporter = report::Reporter::new(self.handler);
        let timeout = settings.traces.timeout.max(settings.metrics.timeout);
        let client = http::ExportClient::spawn(timeout, reporter.clone())
            .map_err(|e| OtlpError::new("starting the export thread", e))?;
        let resource = resource(self.service_name);

        let mut tracer_provider = SdkTracerProvider::builder().with_resource(resource.clone());
        if let Some(url) = &settings.traces.url {
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(url.as_str())
                .with_timeout(settings.traces.timeout)
                .with_headers(settings.traces.headers.iter().cloned().collect())
                .with_http_client(client.clone())
                .build()
                .map_err(|e| OtlpError::new("building the span exporter", e))?;
            tracer_provider = tracer_provider.with_batch_exporter(spans);
        }
        let mut meter_provider = SdkMeterProvider::builder().with_resource(resource);
        if let Some(url) = &settings.metrics.url {
            let metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(url.as_str())
                .with_timeout(settings.metrics.timeout)
                .with_headers(settings.metrics.headers.iter().cloned().collect())
                .with_http_client(client.for_signal(Signal::Metrics))
                .build()
                .map_err(|e| OtlpError::new("building the metric exporter", e))?;
            let reader = PeriodicReader::builder(metrics)
                .with_interval(settings.metrics_interval)
                .build();
            meter_provider = meter_provider.with_reader(reader);
        }
        Ok(Otlp {
            tracer_provider: tracer_provider.build(),
            meter_provider: meter_provider.build(),
            reporter,
            level: self.level,
            traces_url: settings.traces.url.as_ref().map(report::display_url),
            metrics_url: settings.metrics.url.as_ref().map(report::display_url),
        })
    }

    /// Starts the exporters and sets the process's tracing subscriber: the OTLP layer at its
    /// [`level`](Self::level), and a log layer on standard error filtered by `RUST_LOG`
    /// (default `warn`), each with its own filter. Also sets the global meter provider. Fails if
    /// a subscriber is already set; use [`build`](Self::build) and [`Otlp::layer`] to compose
    /// with your own.
    pub fn install(self) -> Result<OtlpGuard, OtlpError> {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;

        let otlp = self.build()?;
        let logs = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let subscriber = tracing_subscriber::registry().with(otlp.layer()).with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(logs),
        );
        if let Err(e) = tracing::subscriber::set_global_default(subscriber) {
            let _ = otlp.shutdown();
            return Err(OtlpError::new("setting the tracing subscriber", e));
        }
        opentelemetry::global::set_meter_provider(otlp.meter_provider.clone());
        Ok(OtlpGuard { otlp, done: false })
    }
}

/// The resource: the service's name and the schema URL of the conventions the names follow,
/// with what the SDK's detectors read (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`, the SDK's
/// own attributes).
fn resource(service_name: Option<String>) -> Resource {
    let builder = Resource::builder().with_schema_url([], n::SCHEMA_URL);
    let from_env = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    match service_name {
        Some(name) => builder.with_service_name(name),
        None if from_env => builder,
        None => builder.with_service_name(n::SCOPE),
    }
    .build()
}

/// A running export pipeline: a tracer provider for spans and a meter provider for metrics.
/// Call [`shutdown`](Self::shutdown) (or drop an [`OtlpGuard`]) before exiting, or the last
/// batch is lost.
#[derive(Debug, Clone)]
pub struct Otlp {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    reporter: Arc<report::Reporter>,
    level: tracing::Level,
    traces_url: Option<String>,
    metrics_url: Option<String>,
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(n::SCOPE)
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_schema_url(n::SCHEMA_URL)
        .build()
}

/// The layer [`Otlp::layer`] returns: the OpenTelemetry layer with the export's own level filter.
pub type OtlpLayer<S> = Filtered<OpenTelemetryLayer<S, SdkTracer>, LevelFilter, S>;

impl Otlp {
    /// The `tracing` layer that exports spans through this pipeline, with its own filter (the
    /// builder's [`level`](OtlpBuilder::level)): a filter you give another layer does not
    /// change what is exported.
    pub fn layer<S>(&self) -> OtlpLayer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        use tracing_subscriber::Layer as _;
        let tracer = self.tracer_provider.tracer_with_scope(scope());
        configure_layer(tracing_opentelemetry::layer().with_tracer(tracer))
            .with_filter(LevelFilter::from_level(self.level))
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

    /// Where spans go (without credentials), or `None` when they are off.
    pub fn traces_endpoint(&self) -> Option<&str> {
        self.traces_url.as_deref()
    }

    /// Where metrics go (without credentials), or `None` when they are off.
    pub fn metrics_endpoint(&self) -> Option<&str> {
        self.metrics_url.as_deref()
    }

    /// The last failed export of each signal so far (empty when every export succeeded).
    pub fn failures(&self) -> Vec<ExportFailure> {
        self.reporter.failures()
    }

    /// Exports everything recorded so far, waiting for the collector to answer.
    pub fn force_flush(&self) -> Result<(), OtlpError> {
        let spans = self.tracer_provider.force_flush();
        let metrics = self.meter_provider.force_flush();
        self.result("flushing", spans.is_ok() && metrics.is_ok())
    }

    /// Flushes and stops both exporters. Spans and metrics recorded afterwards are dropped. The
    /// error names each signal that could not be exported, where to and why.
    pub fn shutdown(&self) -> Result<(), OtlpError> {
        let spans = self.tracer_provider.shutdown();
        let metrics = self.meter_provider.shutdown();
        self.result("shutting down", spans.is_ok() && metrics.is_ok())
    }

    fn result(&self, doing: &str, ok: bool) -> Result<(), OtlpError> {
        let failures = self.failures();
        if ok && failures.is_empty() {
            return Ok(());
        }
        if failures.is_empty() {
            return Err(OtlpError(format!(
                "{doing} the exporters failed (no export was refused; the export may have timed out)"
            )));
        }
        let said: Vec<String> = failures.iter().map(ExportFailure::summary).collect();
        Err(OtlpError(format!("not exported: {}", said.join("; "))))
    }
}

/// The settings harness uses for the OpenTelemetry layer, for a layer you build yourself: no
/// busy/idle timings, thread ids, source locations or targets on spans. Those cost a few hundred
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
        .with_target(false)
}

/// What [`install`] returns: the pipeline, shut down (and flushed) by
/// [`shutdown`](Self::shutdown) or when dropped.
#[derive(Debug)]
#[must_use = "dropping the guard shuts the export down"]
pub struct OtlpGuard {
    otlp: Otlp,
    /// Set by [`shutdown`](Self::shutdown), so dropping the guard does not shut down twice.
    done: bool,
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

    /// Flushes and stops the export, and says whether everything was exported. The failures were
    /// already reported (once each) as they happened; the error sums them up.
    pub fn shutdown(mut self) -> Result<(), OtlpError> {
        self.done = true;
        self.otlp.shutdown()
    }
}

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Failed exports were said when they happened; say only what was not said yet.
        if let Err(e) = self.otlp.shutdown()
            && self.otlp.failures().is_empty()
        {
            eprintln!("harness: {e}");
        }
    }
}

/// Sends spans and metrics to the OTLP/HTTP collector at `endpoint` (`http://host:4318`, or the
/// full traces URL), with every other setting from the `OTEL_*` variables:
/// `builder(endpoint).install()`. See [`OtlpBuilder::install`] for the subscriber it sets.
pub fn install(endpoint: impl Into<String>) -> Result<OtlpGuard, OtlpError> {
    builder(endpoint).install()
}
