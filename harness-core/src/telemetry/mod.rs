//! Telemetry: OpenTelemetry GenAI semantic-convention names, spans and metrics.
//!
//! - [`names`]: every span, attribute and metric name, in one place (conventions v1.41.0).
//! - Spans: [`task_span`] covers one task call; [`attempt_span`] is the CLIENT span of one
//!   provider attempt, exported as `chat {model}`; `record_*` fill them in. They are plain
//!   `tracing` spans: any subscriber sees them, and `tracing-opentelemetry` exports them.
//! - [`Metrics`]: an [`Observer`](crate::observe::Observer) recording the GenAI client metrics and
//!   harness's counters (attempts, retries, reasks, fallbacks, escalations, failures by class,
//!   pass rate, tokens and cost by task), readable in memory with [`Metrics::snapshot`].
//! - `otlp` (feature `otel`): export of both over OTLP/HTTP.
//!
//! Prompts and answers are recorded only with [`TelemetryConfig::capture_content`] on.

mod metrics;
#[cfg(feature = "otel")]
pub mod otlp;

pub use crate::observe::{
    TelemetryConfig, attempt_span, names, record_attempt, record_call_end, record_error,
    record_response, task_span,
};
pub use crate::outcome::pricing;
pub use metrics::{Histogram, Metrics, MetricsSnapshot, ModelStats, TaskStats};
