//! What the spans set through the OpenTelemetry span extension, where `tracing` fields cannot
//! carry the type the conventions ask for (feature `otel`; without it, nothing is set here and the
//! `tracing` fields carry everything).

use tracing::Span;

/// Sets `gen_ai.response.finish_reasons` as a string array when `span` is exported by an
/// OpenTelemetry layer, and says whether it did (the caller then leaves the string field empty).
#[cfg(feature = "otel")]
pub(super) fn set_finish_reasons(span: &Span, reason: &str) -> bool {
    use opentelemetry::trace::TraceContextExt as _;
    use opentelemetry::{Array, StringValue, Value};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    // Only an OpenTelemetry layer gives the span a valid context; with any other subscriber
    // (or none) the string field is the only place the reason can go.
    if !span.context().span().span_context().is_valid() {
        return false;
    }
    let reasons = Array::String(vec![StringValue::from(reason.to_owned())]);
    span.set_attribute(
        super::names::GEN_AI_RESPONSE_FINISH_REASONS,
        Value::Array(reasons),
    );
    true
}

/// Without feature `otel` there is no OpenTelemetry span to set anything on.
#[cfg(not(feature = "otel"))]
pub(super) fn set_finish_reasons(_span: &Span, _reason: &str) -> bool {
    false
}
