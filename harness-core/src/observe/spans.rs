//! Span helpers the engine calls: one span per task call, one CLIENT span per provider attempt.
//!
//! Every field a span will ever carry is declared when it is created (tracing drops values recorded
//! into undeclared fields), as [`Empty`] until known. Integers are recorded as `i64`, which
//! `tracing-opentelemetry` exports as integers (it would export `u64` as strings).
//!
//! Content (messages and answers) is declared only on spans made by a [`TelemetryConfig`] with
//! `capture_content` on, so the decision travels with the span: [`record_response`] records the
//! answer only where the span has the field, and costs nothing otherwise.

use tracing::Span;
use tracing::field::{Empty, Field};

use super::TelemetryConfig;
use super::names as n;
use super::{CallEnd, EndStatus};
use super::{otel, status};
use crate::contract::{FailureClass, TaskContract};
use crate::outcome::{Attempt, AttemptKind};
use crate::provider::{
    ChatRequest, ChatResponse, ProviderError, ProviderInfo, ResponseFormat, Role,
};

/// The span of one task call, covering every attempt, retry, reask and fallback. Enter it (or
/// `.instrument` the call's future with it) for the whole call, so attempt spans are its children.
///
/// It is the conventions' workflow span: named `invoke_workflow {task}`, INTERNAL, with
/// `gen_ai.operation.name = invoke_workflow` and `gen_ai.workflow.name`. It carries no
/// `gen_ai.usage.*` and no `gen_ai.request.model`: those are on the CLIENT attempt spans, so a
/// backend that sums GenAI usage counts every token once. The call's totals are under
/// `harness.*` names ([`n::HARNESS_USAGE_INPUT_TOKENS`], [`n::HARNESS_REQUEST_MODEL`], ...).
///
/// Declared fields filled later: [`n::HARNESS_CALL_ID`] (the engine records it when it has made
/// the id), and everything [`record_call_end`] records, the model asked for included (known only
/// once `HARNESS_MODEL` and the harness default are applied).
///
/// Record each field once: `tracing-opentelemetry` exports every recording, so a field recorded
/// twice appears twice on the exported span.
pub fn task_span(contract: &TaskContract) -> Span {
    let span = tracing::info_span!(
        n::SPAN_TASK,
        { n::OTEL_NAME } = Empty,
        { n::GEN_AI_OPERATION_NAME } = n::OPERATION_INVOKE_WORKFLOW,
        { n::GEN_AI_WORKFLOW_NAME } = contract.name,
        { n::HARNESS_TASK_NAME } = contract.name,
        { n::HARNESS_CONTRACT_VERSION } = contract.version,
        { n::HARNESS_CALL_ID } = Empty,
        { n::HARNESS_REQUEST_MODEL } = Empty,
        { n::HARNESS_STATUS } = Empty,
        { n::HARNESS_ATTEMPTS } = Empty,
        { n::HARNESS_RETRIES } = Empty,
        { n::HARNESS_REASKS } = Empty,
        { n::HARNESS_FALLBACKS } = Empty,
        { n::HARNESS_USAGE_INPUT_TOKENS } = Empty,
        { n::HARNESS_USAGE_OUTPUT_TOKENS } = Empty,
        { n::HARNESS_COST_USD } = Empty,
        { n::HARNESS_FAILURE_CLASS } = Empty,
        { n::ERROR_TYPE } = Empty,
        { n::OTEL_STATUS_CODE } = Empty,
        { n::OTEL_STATUS_DESCRIPTION } = Empty,
    );
    if !span.is_disabled() {
        span.record(
            n::OTEL_NAME,
            format!("{} {}", n::OPERATION_INVOKE_WORKFLOW, contract.name).as_str(),
        );
    }
    span
}

/// The CLIENT span of one provider attempt, named `chat {model}`, with the request's attributes.
/// Content is never captured; use [`TelemetryConfig::attempt_span`] to opt in.
pub fn attempt_span(info: &ProviderInfo, request: &ChatRequest) -> Span {
    TelemetryConfig::default().attempt_span(info, request)
}

impl TelemetryConfig {
    /// The CLIENT span of one provider attempt, named `chat {model}`, with the request's
    /// attributes, and the messages sent when `capture_content` is on.
    pub fn attempt_span(&self, info: &ProviderInfo, request: &ChatRequest) -> Span {
        // Two call sites: the content fields exist only on spans that may carry content.
        macro_rules! attempt_span {
            ($($content:tt)*) => {
                tracing::info_span!(
                    n::SPAN_ATTEMPT,
                    { n::OTEL_NAME } = Empty,
                    { n::OTEL_KIND } = n::KIND_CLIENT,
                    { n::GEN_AI_OPERATION_NAME } = n::OPERATION_CHAT,
                    { n::GEN_AI_PROVIDER_NAME } = info.name.as_str(),
                    { n::GEN_AI_REQUEST_MODEL } = request.model.as_str(),
                    { n::GEN_AI_OUTPUT_TYPE } = output_type(&request.response_format),
                    { n::GEN_AI_REQUEST_TEMPERATURE } = request.temperature,
                    { n::GEN_AI_REQUEST_MAX_TOKENS } = request.max_tokens.map(i64::from),
                    { n::GEN_AI_REQUEST_SEED } = request.seed.map(|s| s as i64),
                    { n::SERVER_ADDRESS } = info.address.as_deref(),
                    { n::SERVER_PORT } = info.port.map(i64::from),
                    { n::HARNESS_ATTEMPT_NUMBER } = Empty,
                    { n::HARNESS_ATTEMPT_KIND } = Empty,
                    { n::GEN_AI_RESPONSE_MODEL } = Empty,
                    { n::GEN_AI_RESPONSE_ID } = Empty,
                    { n::GEN_AI_RESPONSE_FINISH_REASONS } = Empty,
                    { n::GEN_AI_USAGE_INPUT_TOKENS } = Empty,
                    { n::GEN_AI_USAGE_OUTPUT_TOKENS } = Empty,
                    { n::ERROR_TYPE } = Empty,
                    { n::HARNESS_ERROR_KIND } = Empty,
                    { n::HTTP_RESPONSE_STATUS_CODE } = Empty,
                    { n::OTEL_STATUS_CODE } = Empty,
                    { n::OTEL_STATUS_DESCRIPTION } = Empty,
                    $($content)*
                )
            };
        }
        let span = if self.capture_content {
            attempt_span!(
                { n::GEN_AI_SYSTEM_INSTRUCTIONS } = Empty,
                { n::GEN_AI_INPUT_MESSAGES } = Empty,
                { n::GEN_AI_OUTPUT_MESSAGES } = Empty,
            )
        } else {
            attempt_span!()
        };
        if span.is_disabled() {
            return span;
        }
        span.record(
            n::OTEL_NAME,
            format!("{} {}", n::OPERATION_CHAT, request.model).as_str(),
        );
        if self.capture_content {
            let (system, messages) = content::input(request);
            if let Some(system) = system {
                span.record(n::GEN_AI_SYSTEM_INSTRUCTIONS, system.as_str());
            }
            span.record(n::GEN_AI_INPUT_MESSAGES, messages.as_str());
        }
        span
    }
}

fn output_type(format: &ResponseFormat) -> &'static str {
    match format {
        ResponseFormat::Text => n::OUTPUT_TYPE_TEXT,
        ResponseFormat::JsonSchema { .. } => n::OUTPUT_TYPE_JSON,
    }
}

/// Records what the provider answered: response model and id, finish reason, token usage, and
/// the answer itself on spans that capture content. Call it when `Provider::chat` returns `Ok`.
pub fn record_response(span: &Span, response: &ChatResponse) {
    if span.is_disabled() {
        return;
    }
    let model = response.model.as_deref();
    let id = response.id.as_deref();
    let reason = response.finish_reason.as_ref().map(|r| r.as_str());
    // No usage reported (both zero) is not zero tokens billed: leave the attributes out.
    let reported = response.usage.total() > 0;
    let input = saturating_i64(response.usage.input_tokens);
    let output = saturating_i64(response.usage.output_tokens);
    let content = span
        .has_field(n::GEN_AI_OUTPUT_MESSAGES)
        .then(|| content::output(response));
    let content = content.as_deref();
    // The conventions type finish reasons as a string array, which `tracing` fields cannot
    // carry: an OpenTelemetry span gets the array through the span extension, and the string
    // field stays empty (both would export the key twice); any other subscriber sees the string.
    let reason = reason.filter(|r| !otel::set_finish_reasons(span, r));
    record_all(
        span,
        [
            (n::GEN_AI_RESPONSE_MODEL, model.as_ref().map(value)),
            (n::GEN_AI_RESPONSE_ID, id.as_ref().map(value)),
            (
                n::GEN_AI_RESPONSE_FINISH_REASONS,
                reason.as_ref().map(value),
            ),
            (
                n::GEN_AI_USAGE_INPUT_TOKENS,
                Some(value(&input)).filter(|_| reported),
            ),
            (
                n::GEN_AI_USAGE_OUTPUT_TOKENS,
                Some(value(&output)).filter(|_| reported),
            ),
            (n::GEN_AI_OUTPUT_MESSAGES, content.as_ref().map(value)),
        ],
    );
}

fn value<T: tracing::Value>(v: &T) -> &dyn tracing::Value {
    v
}

/// Records several fields with one call into the subscriber (each `Span::record` is one, and
/// with `tracing-opentelemetry` each costs a lookup and a lock). Names the span does not declare
/// and `None` values are skipped.
fn record_all<const N: usize>(span: &Span, values: [(&str, Option<&dyn tracing::Value>); N]) {
    let Some(meta) = span.metadata() else {
        return;
    };
    let fieldset = meta.fields();
    let Some(placeholder) = fieldset.iter().next() else {
        return;
    };
    let fields: [(Field, bool); N] = std::array::from_fn(|i| match fieldset.field(values[i].0) {
        Some(f) => (f, true),
        None => (placeholder.clone(), false),
    });
    let pairs: [(&Field, Option<&dyn tracing::Value>); N] = std::array::from_fn(|i| {
        let (field, declared) = &fields[i];
        (field, values[i].1.filter(|_| *declared))
    });
    span.record_all(&fieldset.value_set(&pairs));
}

/// Records a provider error: `error.type` (its failure class), the finer
/// [`n::HARNESS_ERROR_KIND`], the HTTP status when there was one, and an error status with a
/// short description made only of the error's kind, status and timings
/// ([`status::provider_error`]): never the provider's message, which can echo the request. Call
/// it when `Provider::chat` returns `Err`, including the engine's own per-attempt timeout.
pub fn record_error(span: &Span, error: &ProviderError) {
    if span.is_disabled() {
        return;
    }
    let code = match error {
        ProviderError::Status { status, .. } | ProviderError::RateLimited { status, .. } => {
            Some(i64::from(*status))
        }
        _ => None,
    };
    let description = status::provider_error(error);
    record_all(
        span,
        [
            (n::ERROR_TYPE, Some(&error.class().as_str())),
            (n::HARNESS_ERROR_KIND, Some(&error.type_name())),
            (n::HTTP_RESPONSE_STATUS_CODE, code.as_ref().map(value)),
            (n::OTEL_STATUS_CODE, Some(&n::STATUS_ERROR)),
            (n::OTEL_STATUS_DESCRIPTION, Some(&description.as_str())),
        ],
    );
}

/// Records the attempt's number and kind, and, when the provider answered but the answer failed
/// (invalid output, refusal, low confidence), `error.type` and an error status whose description
/// names the class and the rules that failed ([`status::attempt`]), never the answer's content.
/// Provider errors get theirs from [`record_error`]. Call it once the engine has judged the
/// attempt and filled in its [`Attempt`].
pub fn record_attempt(span: &Span, attempt: &Attempt) {
    if span.is_disabled() {
        return;
    }
    let number = i64::from(attempt.n);
    let kind = attempt_kind(attempt.kind);
    let failure = attempt
        .failure
        .filter(|c| !is_provider_class(*c))
        .map(FailureClass::as_str);
    let status = failure.map(|_| n::STATUS_ERROR);
    let description = failure.map(|_| status::attempt(attempt));
    record_all(
        span,
        [
            (n::HARNESS_ATTEMPT_NUMBER, Some(&number)),
            (n::HARNESS_ATTEMPT_KIND, Some(&kind)),
            (n::ERROR_TYPE, failure.as_ref().map(value)),
            (n::OTEL_STATUS_CODE, status.as_ref().map(value)),
            (
                n::OTEL_STATUS_DESCRIPTION,
                description.as_deref().as_ref().map(value),
            ),
        ],
    );
}

fn is_provider_class(class: FailureClass) -> bool {
    matches!(
        class,
        FailureClass::Timeout | FailureClass::RateLimited | FailureClass::ProviderError
    )
}

/// The snake_case name of an attempt kind.
pub(crate) const fn attempt_kind(kind: AttemptKind) -> &'static str {
    match kind {
        AttemptKind::First => "first",
        AttemptKind::Retry => "retry",
        AttemptKind::Reask => "reask",
        AttemptKind::Fallback => "fallback",
    }
}

/// Records how the call ended on the task span: the model asked for, status, attempts, retries,
/// reasks, fallbacks, total tokens (under `harness.usage.*`), cost when every price is known,
/// and for a failure `error.type` with an error status described by [`status::call`]. Call it
/// from the call's end, before the observers, with the task span (the current span there). The
/// call id is not recorded here: the engine records [`n::HARNESS_CALL_ID`] as soon as it has
/// made it.
pub fn record_call_end(span: &Span, end: &CallEnd<'_>) {
    if span.is_disabled() {
        return;
    }
    let report = end.report;
    let ended = end.status;
    let (mut retries, mut reasks, mut fallbacks) = (0i64, 0i64, 0i64);
    for a in &report.attempts {
        match a.kind {
            AttemptKind::Retry => retries += 1,
            AttemptKind::Reask => reasks += 1,
            AttemptKind::Fallback => fallbacks += 1,
            AttemptKind::First => {}
        }
    }
    let attempts = report.attempts.len() as i64;
    let input = saturating_i64(report.usage.input_tokens);
    let output = saturating_i64(report.usage.output_tokens);
    // The model actually asked for: `HARNESS_MODEL` or the harness default may replace the
    // contract's.
    let model = Some(report.model_requested.as_str())
        .filter(|m| !m.is_empty())
        .or(end.contract.model);
    let (class, error) = match ended {
        EndStatus::Answer => (None, None),
        EndStatus::Default(class) | EndStatus::Escalated(class) => (Some(class.as_str()), None),
        EndStatus::Failed(kind) => {
            let kind = kind.as_str();
            (Some(kind), Some(kind))
        }
    };
    let status = error.map(|_| n::STATUS_ERROR);
    let description = error.map(|_| status::call(end));
    record_all(
        span,
        [
            (n::HARNESS_REQUEST_MODEL, model.as_ref().map(value)),
            (n::HARNESS_STATUS, Some(&status_name(ended))),
            (n::HARNESS_ATTEMPTS, Some(&attempts)),
            (n::HARNESS_RETRIES, Some(&retries)),
            (n::HARNESS_REASKS, Some(&reasks)),
            (n::HARNESS_FALLBACKS, Some(&fallbacks)),
            (n::HARNESS_USAGE_INPUT_TOKENS, Some(&input)),
            (n::HARNESS_USAGE_OUTPUT_TOKENS, Some(&output)),
            (n::HARNESS_COST_USD, report.cost_usd.as_ref().map(value)),
            (n::HARNESS_FAILURE_CLASS, class.as_ref().map(value)),
            (n::ERROR_TYPE, error.as_ref().map(value)),
            (n::OTEL_STATUS_CODE, status.as_ref().map(value)),
            (
                n::OTEL_STATUS_DESCRIPTION,
                description.as_deref().as_ref().map(value),
            ),
        ],
    );
}

/// The [`n::HARNESS_STATUS`] value of an end status.
pub(crate) const fn status_name(status: EndStatus) -> &'static str {
    match status {
        EndStatus::Answer => n::STATUS_ANSWER,
        EndStatus::Default(_) => n::STATUS_DEFAULT,
        EndStatus::Escalated(_) => n::STATUS_ESCALATED,
        EndStatus::Failed(_) => n::STATUS_FAILED,
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Content as the conventions shape it: JSON arrays of messages with text parts.
mod content {
    use super::*;
    use serde_json::{Value, json};

    fn text_parts(text: &str) -> Value {
        json!([{ "type": "text", "content": text }])
    }

    /// `gen_ai.system_instructions` (when there is a system message) and `gen_ai.input.messages`.
    pub(super) fn input(request: &ChatRequest) -> (Option<String>, String) {
        let mut system = Vec::new();
        let mut messages = Vec::new();
        for m in &request.messages {
            match m.role {
                Role::System => system.push(json!({ "type": "text", "content": m.content })),
                role => {
                    messages.push(json!({ "role": role.as_str(), "parts": text_parts(&m.content) }))
                }
            }
        }
        let system = (!system.is_empty()).then(|| Value::Array(system).to_string());
        (system, Value::Array(messages).to_string())
    }

    /// `gen_ai.output.messages`.
    pub(super) fn output(response: &ChatResponse) -> String {
        let text = response.refusal.as_deref().unwrap_or(&response.content);
        let mut message = json!({ "role": "assistant", "parts": text_parts(text) });
        // The conventions' `tool_call` parts, one per call the model asked for.
        if let Some(parts) = message["parts"].as_array_mut() {
            if text.is_empty() && !response.tool_calls.is_empty() {
                parts.clear();
            }
            parts.extend(response.tool_calls.iter().map(|c| {
                json!({ "type": "tool_call", "id": c.id, "name": c.name,
                        "arguments": c.json().cloned().unwrap_or_else(|| Value::from(c.arguments_text())) })
            }));
        }
        if let Some(reason) = &response.finish_reason {
            message["finish_reason"] = Value::from(reason.as_str());
        }
        Value::Array(vec![message]).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ToolCall;

    #[test]
    fn tool_calls_are_output_parts() {
        let response = ChatResponse {
            tool_calls: vec![
                ToolCall::new("c1", "lookup_order", serde_json::json!({"order_id": "A-1"})),
                ToolCall::from_text("c2", "refund", "{broken"),
            ],
            finish_reason: Some(crate::provider::FinishReason::ToolCalls),
            ..ChatResponse::default()
        };
        let out: serde_json::Value = serde_json::from_str(&content::output(&response)).unwrap();
        assert_eq!(
            out,
            serde_json::json!([{"role": "assistant", "finish_reason": "tool_calls", "parts": [
                {"type": "tool_call", "id": "c1", "name": "lookup_order", "arguments": {"order_id": "A-1"}},
                {"type": "tool_call", "id": "c2", "name": "refund", "arguments": "{broken"}]}])
        );
        let text = ChatResponse {
            content: "hi".into(),
            ..ChatResponse::default()
        };
        let out: serde_json::Value = serde_json::from_str(&content::output(&text)).unwrap();
        assert_eq!(
            out[0]["parts"],
            serde_json::json!([{"type": "text", "content": "hi"}])
        );
    }
}
