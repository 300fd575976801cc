//! Telemetry: OpenTelemetry GenAI semantic-convention names, spans and metrics.
