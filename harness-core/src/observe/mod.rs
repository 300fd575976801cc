//! What a finished call looks like to those who watch it: the [`Observer`] trait and the
//! [`CallEnd`] it receives, the tracing spans the engine opens for every call and attempt
//! ([`task_span`], [`TelemetryConfig::attempt_span`] and the `record_*` helpers, named in
//! [`names`]), and the [`drift`] alarm.
//!
//! This layer sits below the engine, which calls into it; exporters (audit sinks, metrics, OTLP)
//! sit above the engine and implement [`Observer`].

pub mod drift;
pub mod names;
mod otel;
mod spans;
pub mod status;

pub use spans::{
    attempt_span, record_attempt, record_call_end, record_error, record_response, task_span,
};

use crate::contract::{FailureClass, TaskContract};
use crate::outcome::{CallReport, ErrorKind};
use crate::provider::ChatRequest;

/// Sees every finished call: audit sinks, metrics and drift alarms plug in here.
pub trait Observer: Send + Sync + 'static {
    /// Called once per call, after its outcome is decided and before it is returned.
    fn on_call_end(&self, call: &CallEnd<'_>);
}

/// A shared observer is an observer: register an `Arc<O>` (or an `Arc<dyn Observer>`) and keep a
/// clone to read its state.
impl<O: Observer + ?Sized> Observer for std::sync::Arc<O> {
    fn on_call_end(&self, call: &CallEnd<'_>) {
        (**self).on_call_end(call);
    }
}

/// What observers see of a finished call.
#[derive(Debug)]
pub struct CallEnd<'a> {
    /// The task's contract.
    pub contract: &'static TaskContract,
    /// The call's report: attempts, actions, usage, timing.
    pub report: &'a CallReport,
    /// The first attempt's request: the exact rendered messages and parameters.
    pub request: &'a ChatRequest,
    /// The rendered inputs.
    pub inputs: &'a [(&'static str, String)],
    /// How it ended.
    pub status: EndStatus,
    /// The accepted value as JSON (answers only).
    pub value: Option<&'a serde_json::Value>,
    /// Why the call did not end in an answer: the escalation's reason, the failure that led to the
    /// default, or the error's message.
    pub reason: Option<&'a str>,
    /// For an escalation after low confidence: the candidate answer as the model gave it (valid,
    /// but not accepted), for the human reviewer.
    pub candidate: Option<&'a serde_json::Value>,
    /// Who the call was made for.
    pub actor: Option<&'a str>,
}

/// How a call ended, without its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "class")]
#[non_exhaustive]
pub enum EndStatus {
    /// A model answer.
    Answer,
    /// The task's default, after this failure.
    Default(FailureClass),
    /// Escalated after this failure.
    Escalated(FailureClass),
    /// Failed with this error kind.
    Failed(ErrorKind),
}

impl EndStatus {
    /// The status's name and the failure class or error kind it carries, spelled as in its
    /// serialized form: `("escalated", Some("refusal"))`, `("answer", None)`.
    pub fn parts(&self) -> (&'static str, Option<&'static str>) {
        match self {
            EndStatus::Answer => ("answer", None),
            EndStatus::Default(c) => ("default", Some(c.as_str())),
            EndStatus::Escalated(c) => ("escalated", Some(c.as_str())),
            EndStatus::Failed(k) => ("failed", Some(k.as_str())),
        }
    }
}

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
