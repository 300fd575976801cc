//! Telemetry: OpenTelemetry GenAI semantic-convention names, spans and metrics.
//!
//! - [`names`]: every span, attribute and metric name, in one place (conventions v1.41.0).
//! - Spans: [`task_span`] covers one task call; [`attempt_span`] is the CLIENT span of one
//!   provider attempt, exported as `chat {model}`; `record_*` fill them in. They are plain
//!   `tracing` spans: any subscriber sees them, and `tracing-opentelemetry` exports them.
//! - [`Metrics`]: an [`Observer`](crate::engine::Observer) recording the GenAI client metrics and
//!   harness's counters (attempts, retries, reasks, fallbacks, escalations, failures by class,
//!   pass rate, tokens and cost by task), readable in memory with [`Metrics::snapshot`].
//! - [`otlp`] (feature `otel`): export of both over OTLP/HTTP.
//!
//! Prompts and answers are recorded only with [`TelemetryConfig::capture_content`] on.

mod metrics;
pub mod names;
#[cfg(feature = "otel")]
pub mod otlp;
mod spans;

pub use metrics::{Histogram, Metrics, MetricsSnapshot, ModelStats, TaskStats};
pub use spans::{
    attempt_span, record_attempt, record_call_end, record_error, record_response, task_span,
};

use crate::outcome::ErrorKind;

/// What the spans record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// Record the messages sent and the answers received on attempt spans
    /// (`gen_ai.system_instructions`, `gen_ai.input.messages`, `gen_ai.output.messages`).
    /// Off by default: prompts and answers often hold personal or confidential data.
    pub capture_content: bool,
}

impl TelemetryConfig {
    /// Spans that also record prompts and answers.
    pub const fn with_content() -> Self {
        TelemetryConfig {
            capture_content: true,
        }
    }
}

/// The snake_case name of an error kind, as `error.type` of a failed call.
pub const fn error_kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Timeout => "timeout",
        ErrorKind::RateLimited => "rate_limited",
        ErrorKind::ProviderError => "provider_error",
        ErrorKind::InvalidOutput => "invalid_output",
        ErrorKind::Refusal => "refusal",
        ErrorKind::LowConfidence => "low_confidence",
        ErrorKind::Config => "config",
    }
}
