//! Every span, attribute and metric name harness emits, in one place.
//!
//! The `gen_ai.*`, `server.*`, `error.*` and `http.*` names follow the OpenTelemetry semantic
//! conventions for generative AI, version [`SEMCONV_VERSION`] (status: development). The
//! `harness.*` names are ours. The `otel.*` names are not exported as attributes: the
//! `tracing-opentelemetry` layer reads them to set the span's name, kind and status.

/// The version of the semantic conventions these names follow.
pub const SEMCONV_VERSION: &str = "1.41.0";
/// The schema URL of that version, for resources and instrumentation scopes.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.41.0";
/// The instrumentation scope name of spans and metrics harness emits.
pub const SCOPE: &str = "harness";

// --- Span control fields read by tracing-opentelemetry -----------------------------------------

/// Overrides the exported span name (tracing span names must be static).
pub const OTEL_NAME: &str = "otel.name";
/// The span kind: `client` for provider attempts.
pub const OTEL_KIND: &str = "otel.kind";
/// `ok` or `error`.
pub const OTEL_STATUS_CODE: &str = "otel.status_code";
/// The error description that goes with an `error` status.
pub const OTEL_STATUS_DESCRIPTION: &str = "otel.status_description";
/// The span kind of a provider attempt.
pub const KIND_CLIENT: &str = "client";
/// The status of a failed span.
pub const STATUS_ERROR: &str = "error";

// --- Tracing span names ----------------------------------------------------------------------

/// The span covering one task call: every attempt, retry, reask and fallback. Exported as the
/// conventions' workflow span, `invoke_workflow {task}` (INTERNAL): a task call runs model calls
/// through a predefined path (retry, reask, fallback), which is what the conventions call a
/// workflow, and it is not an agent (no tools, no model-chosen steps).
pub const SPAN_TASK: &str = "harness.task";
/// The span of one provider attempt (exported as `chat {model}`).
pub const SPAN_ATTEMPT: &str = "harness.attempt";

// --- GenAI attributes ------------------------------------------------------------------------

/// The operation: [`OPERATION_CHAT`] for every attempt harness makes.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// The value of [`GEN_AI_OPERATION_NAME`] for a chat completion.
pub const OPERATION_CHAT: &str = "chat";
/// The value of [`GEN_AI_OPERATION_NAME`] on the task span: the conventions' workflow span,
/// which carries no `gen_ai.usage.*` (usage is on the CLIENT spans below it, counted once).
pub const OPERATION_INVOKE_WORKFLOW: &str = "invoke_workflow";
/// The workflow's name on the task span: the task's name.
pub const GEN_AI_WORKFLOW_NAME: &str = "gen_ai.workflow.name";
/// The provider: `openai`, `anthropic`, or the name a custom provider reports.
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// The model asked for.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// Sampling temperature.
pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
/// Maximum output tokens.
pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
/// Sampling seed.
pub const GEN_AI_REQUEST_SEED: &str = "gen_ai.request.seed";
/// The output type requested: [`OUTPUT_TYPE_JSON`] or [`OUTPUT_TYPE_TEXT`].
pub const GEN_AI_OUTPUT_TYPE: &str = "gen_ai.output.type";
/// Structured (JSON) output.
pub const OUTPUT_TYPE_JSON: &str = "json";
/// Free text output.
pub const OUTPUT_TYPE_TEXT: &str = "text";
/// The model that answered, as the provider reports it.
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
/// The provider's response id.
pub const GEN_AI_RESPONSE_ID: &str = "gen_ai.response.id";
/// Why the model stopped: a string array, as the conventions type it (`["stop"]`; harness asks
/// for one choice). Exported as an array through the OpenTelemetry span extension; subscribers
/// that are not OpenTelemetry see the one reason as a string.
pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
/// Prompt tokens billed by one attempt (CLIENT spans only).
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// Completion tokens billed by one attempt (CLIENT spans only).
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// The token type of a [`GEN_AI_CLIENT_TOKEN_USAGE`] measurement.
pub const GEN_AI_TOKEN_TYPE: &str = "gen_ai.token.type";
/// Input tokens.
pub const TOKEN_TYPE_INPUT: &str = "input";
/// Output tokens.
pub const TOKEN_TYPE_OUTPUT: &str = "output";
/// The system message (opt-in content).
pub const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// The messages sent, as JSON (opt-in content).
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// The model's answer, as JSON (opt-in content).
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";

// --- General attributes ----------------------------------------------------------------------

/// The provider's host.
pub const SERVER_ADDRESS: &str = "server.address";
/// The provider's port.
pub const SERVER_PORT: &str = "server.port";
/// A low-cardinality error name. Harness uses the failure class (`timeout`, `rate_limited`,
/// `provider_error`, `invalid_output`, `refusal`, `low_confidence`), on spans and metrics alike.
pub const ERROR_TYPE: &str = "error.type";
/// The HTTP status of a provider error.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";

// --- Harness attributes ----------------------------------------------------------------------

/// The task's name.
pub const HARNESS_TASK_NAME: &str = "harness.task.name";
/// The contract version hash.
pub const HARNESS_CONTRACT_VERSION: &str = "harness.contract.version";
/// The call id (also in the audit record).
pub const HARNESS_CALL_ID: &str = "harness.call_id";
/// The 1-based number of an attempt within its call.
pub const HARNESS_ATTEMPT_NUMBER: &str = "harness.attempt.number";
/// `first`, `retry`, `reask` or `fallback`.
pub const HARNESS_ATTEMPT_KIND: &str = "harness.attempt.kind";
/// The finer provider error name (`http_status`, `connection`, `circuit_open`, ...).
pub const HARNESS_ERROR_KIND: &str = "harness.error.kind";
/// How the call ended: `answer`, `default`, `escalated` or `failed`.
pub const HARNESS_STATUS: &str = "harness.status";
/// A failure class (on metrics of failures and actions).
pub const HARNESS_FAILURE_CLASS: &str = "harness.failure_class";
/// Attempts made by a call (task span).
pub const HARNESS_ATTEMPTS: &str = "harness.attempts";
/// Retries made by a call (task span).
pub const HARNESS_RETRIES: &str = "harness.retries";
/// Reasks made by a call (task span).
pub const HARNESS_REASKS: &str = "harness.reasks";
/// Fallbacks taken by a call (task span).
pub const HARNESS_FALLBACKS: &str = "harness.fallbacks";
/// The call's cost in US dollars, when prices are known (task span). Absent when any attempt's
/// model has no price: the cost is unknown, not 0.
pub const HARNESS_COST_USD: &str = "harness.cost.usd";
/// The model the call asked for (task span; the attempt spans carry `gen_ai.request.model`).
pub const HARNESS_REQUEST_MODEL: &str = "harness.request.model";
/// Input tokens billed over all of a call's attempts (task span). Not `gen_ai.usage.*`, so a
/// backend that sums GenAI usage counts each token once, on the attempt spans.
pub const HARNESS_USAGE_INPUT_TOKENS: &str = "harness.usage.input_tokens";
/// Output tokens billed over all of a call's attempts (task span).
pub const HARNESS_USAGE_OUTPUT_TOKENS: &str = "harness.usage.output_tokens";

/// [`HARNESS_STATUS`] of a model answer.
pub const STATUS_ANSWER: &str = "answer";
/// [`HARNESS_STATUS`] of a default value.
pub const STATUS_DEFAULT: &str = "default";
/// [`HARNESS_STATUS`] of an escalation.
pub const STATUS_ESCALATED: &str = "escalated";
/// [`HARNESS_STATUS`] of a failure.
pub const STATUS_FAILED: &str = "failed";

// --- Metrics ---------------------------------------------------------------------------------

/// Histogram of provider attempt durations, in seconds.
pub const GEN_AI_CLIENT_OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
/// Unit of [`GEN_AI_CLIENT_OPERATION_DURATION`].
pub const UNIT_SECONDS: &str = "s";
/// The conventions' explicit bucket boundaries for [`GEN_AI_CLIENT_OPERATION_DURATION`].
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// Histogram of tokens per attempt, by [`GEN_AI_TOKEN_TYPE`].
pub const GEN_AI_CLIENT_TOKEN_USAGE: &str = "gen_ai.client.token.usage";
/// Unit of token counts.
pub const UNIT_TOKENS: &str = "{token}";
/// The conventions' explicit bucket boundaries for [`GEN_AI_CLIENT_TOKEN_USAGE`].
pub const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Counter of finished calls, by [`HARNESS_TASK_NAME`] and [`HARNESS_STATUS`].
pub const HARNESS_TASK_CALLS: &str = "harness.task.calls";
/// Histogram of attempts per call, by task.
pub const HARNESS_TASK_ATTEMPTS: &str = "harness.task.attempts";
/// Bucket boundaries of [`HARNESS_TASK_ATTEMPTS`].
pub const ATTEMPT_BUCKETS: [f64; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0, 20.0];
/// Unit of attempt counts.
pub const UNIT_ATTEMPTS: &str = "{attempt}";
/// Counter of retries, by task and the failure class that caused them.
pub const HARNESS_TASK_RETRIES: &str = "harness.task.retries";
/// Counter of reasks, by task and failure class.
pub const HARNESS_TASK_REASKS: &str = "harness.task.reasks";
/// Counter of fallbacks, by task and failure class.
pub const HARNESS_TASK_FALLBACKS: &str = "harness.task.fallbacks";
/// Counter of escalations, by task and failure class.
pub const HARNESS_TASK_ESCALATIONS: &str = "harness.task.escalations";
/// Counter of failed attempts (validation failures and provider errors), by task and class.
pub const HARNESS_TASK_FAILURES: &str = "harness.task.failures";
/// Gauge: the share of a task's calls that ended in a model answer, from 0 to 1.
pub const HARNESS_TASK_PASS_RATE: &str = "harness.task.pass_rate";
/// Counter of tokens billed, by task and [`GEN_AI_TOKEN_TYPE`].
pub const HARNESS_TASK_TOKENS: &str = "harness.task.tokens";
/// Counter of cost in US dollars, by task (only calls whose prices are known).
pub const HARNESS_TASK_COST: &str = "harness.task.cost";
/// Counter of calls whose cost is unknown (a model without a price), by task: they add nothing
/// to [`HARNESS_TASK_COST`], and this says how many there were.
pub const HARNESS_TASK_UNPRICED_CALLS: &str = "harness.task.unpriced_calls";
/// Counter of the lenient parser's repairs, by task and [`HARNESS_REPAIR`] (its stable name).
pub const HARNESS_TASK_REPAIRS: &str = "harness.task.repairs";
/// The stable machine name of a repair (`RepairKind::name`: `extracted_from_fence`, ...).
pub const HARNESS_REPAIR: &str = "harness.repair";
/// Unit of [`HARNESS_TASK_COST`].
pub const UNIT_USD: &str = "{USD}";

// --- Evaluation events (eval::OnlineEval) ------------------------------------------------------

/// The event of one evaluation result, and the event's message.
pub const EVENT_EVALUATION_RESULT: &str = "gen_ai.evaluation.result";
/// The name of the evaluation (the scorer).
pub const GEN_AI_EVALUATION_NAME: &str = "gen_ai.evaluation.name";
/// The score's value.
pub const GEN_AI_EVALUATION_SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
/// The score's label: `pass` or `fail`.
pub const GEN_AI_EVALUATION_SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
/// Why, in words.
pub const GEN_AI_EVALUATION_EXPLANATION: &str = "gen_ai.evaluation.explanation";
