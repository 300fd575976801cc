//! What a harnessed call returns: [`Outcome`] on success (a model answer, a default, or an
//! escalation), [`TaskError`] when the contract says `fail`.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub mod pricing;
mod sources;
pub use pricing::{Price, PriceTable};
pub use sources::{SourceFetch, SourceReport};

use crate::contract::{ActionKind, FailureClass};
use crate::output::ValidationErrors;
use crate::output::parse::Repair;
use crate::provider::{FinishReason, ProviderError, Usage};

/// The result of a harnessed call.
pub type TaskResult<T> = Result<Outcome<T>, TaskError>;

/// How the call ended, when it did not fail.
#[derive(Debug)]
#[non_exhaustive]
pub enum Resolution<T> {
    /// A model answer that passed every check.
    Answer(T),
    /// The task's `default(...)` value, because the contract for `class` said so.
    Default {
        /// The value.
        value: T,
        /// The failure that led to it.
        class: FailureClass,
    },
    /// The contract said `escalate`: a human must decide. Not a model answer.
    Escalated(Escalation<T>),
}

/// A call handed to a human.
#[derive(Debug)]
pub struct Escalation<T> {
    /// The failure that led to it.
    pub class: FailureClass,
    /// What went wrong, in words.
    pub reason: String,
    /// The model's last valid answer, if there was one (e.g. one with low confidence): for the
    /// reviewer, never to be used as if it were accepted.
    pub candidate: Option<T>,
    /// The model's last raw output.
    pub last_raw: Option<String>,
}

impl<T> fmt::Display for Escalation<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "escalated on {}: {}", self.class, self.reason)
    }
}

/// How a value came to be: which model, after what.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The model that produced the final answer (empty for defaults and escalations with no answer).
    pub model: String,
    /// Provider attempts made in all.
    pub attempts: u32,
    /// Retries among them.
    pub retries: u32,
    /// Reasks among them.
    pub reasks: u32,
    /// Whether a fallback model was used.
    pub fallback: bool,
    /// Whether the lenient parser repaired the final answer.
    pub repaired: bool,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attempts <= 1 && !self.fallback {
            f.write_str("first try")?;
        } else {
            let mut parts = Vec::new();
            if self.retries > 0 {
                parts.push(format!(
                    "{} retr{}",
                    self.retries,
                    if self.retries == 1 { "y" } else { "ies" }
                ));
            }
            if self.reasks > 0 {
                parts.push(format!(
                    "{} reask{}",
                    self.reasks,
                    if self.reasks == 1 { "" } else { "s" }
                ));
            }
            if self.fallback {
                write!(f, "from fallback model {}", self.model)?;
                if !parts.is_empty() {
                    write!(f, " after {}", parts.join(" and "))?;
                }
            } else {
                write!(f, "after {}", parts.join(" and "))?;
            }
        }
        if self.repaired {
            f.write_str(" (repaired)")?;
        }
        Ok(())
    }
}

/// The kind of attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptKind {
    /// The first attempt of the call.
    First,
    /// A retry of the same request.
    Retry,
    /// A reask carrying the previous answer's errors.
    Reask,
    /// The first attempt on a fallback model.
    Fallback,
}

/// One provider attempt.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// 1-based number within the call.
    pub n: u32,
    /// What kind of attempt.
    pub kind: AttemptKind,
    /// Provider name.
    pub provider: String,
    /// Model requested.
    pub model: String,
    /// SHA-256 of the request this attempt sent (its messages differ after a reask, its model
    /// after a fallback): see [`ChatRequest::fingerprint`](crate::provider::ChatRequest::fingerprint).
    pub fingerprint: String,
    /// Model that answered, as the provider reported it.
    pub response_model: Option<String>,
    /// Provider response id.
    pub response_id: Option<String>,
    /// When the attempt started.
    pub started_at: SystemTime,
    /// How long it took.
    #[serde(with = "duration_ms")]
    pub latency: Duration,
    /// Tokens billed (zero when the provider did not answer).
    pub usage: Usage,
    /// Why the model stopped.
    pub finish_reason: Option<FinishReason>,
    /// The raw text the model returned.
    pub raw: Option<String>,
    /// The failure class, when the attempt failed.
    pub failure: Option<FailureClass>,
    /// What failed, in words (no secrets).
    pub error: Option<String>,
    /// Rules the answer broke.
    pub validation: ValidationErrors,
    /// Repairs the parser applied.
    pub repairs: Vec<Repair>,
    /// The confidence the answer carried.
    pub confidence: Option<f64>,
    /// The SHA-256 of the exact bytes sent and of their stable prefix; `None` when nothing was
    /// sent (shed, breaker open) or the provider sends no bytes (`Scripted`).
    pub wire: Option<crate::provider::WireDigest>,
}

/// One contract step the engine took.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionTaken {
    /// After which attempt.
    pub after_attempt: u32,
    /// For which failure.
    pub class: FailureClass,
    /// Which action.
    pub action: ActionKind,
    /// Details: the backoff slept, the fallback model, the reason a step was skipped.
    pub detail: String,
}

/// Everything recorded about one call; carried by both [`Outcome`] and [`TaskError`].
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CallReport {
    /// A unique id for this call.
    pub call_id: String,
    /// Task name.
    pub task: &'static str,
    /// Contract version hash.
    pub contract_version: &'static str,
    /// Hash of the exact rendered context and parameters of the first attempt.
    pub fingerprint: String,
    /// The model the task asked for.
    pub model_requested: String,
    /// When the call started.
    pub started_at: SystemTime,
    /// How long it took in all.
    #[serde(with = "duration_ms")]
    pub elapsed: Duration,
    /// Every provider attempt.
    pub attempts: Vec<Attempt>,
    /// Every contract step taken.
    pub actions: Vec<ActionTaken>,
    /// Tokens billed over all attempts, failed ones included.
    pub usage: Usage,
    /// Cost over all attempts, in US dollars, when prices are known.
    pub cost_usd: Option<f64>,
    /// The context plan's report (what was kept and cut, and why), when the task's context was
    /// assembled by one ([`AssemblyReport`](crate::context::AssemblyReport), as JSON).
    pub context: Option<serde_json::Value>,
    /// What each declared context source gave, or why it did not and what its contract did.
    pub sources: Vec<SourceReport>,
}

impl CallReport {
    /// The last raw output any attempt returned.
    pub fn last_raw(&self) -> Option<&str> {
        self.attempts.iter().rev().find_map(|a| a.raw.as_deref())
    }

    /// How many repairs of each kind the lenient parser made over every attempt, by kind (its
    /// stable [`name`](crate::contract::RepairKind::name) is the label to count by in metrics).
    pub fn repair_counts(&self) -> std::collections::BTreeMap<crate::contract::RepairKind, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for repair in self.attempts.iter().flat_map(|a| &a.repairs) {
            *counts.entry(repair.kind()).or_insert(0) += 1;
        }
        counts
    }
}

/// A finished call that did not fail: its resolution, how it was obtained, and its report.
#[derive(Debug)]
pub struct Outcome<T> {
    /// Answer, default or escalation.
    pub resolution: Resolution<T>,
    /// How the answer was obtained.
    pub provenance: Provenance,
    /// What happened on the way.
    pub report: CallReport,
}

impl<T> Outcome<T> {
    /// The value, for an answer or a default; `None` for an escalation.
    pub fn value(&self) -> Option<&T> {
        match &self.resolution {
            Resolution::Answer(v) | Resolution::Default { value: v, .. } => Some(v),
            Resolution::Escalated(_) => None,
        }
    }

    /// The value, or the escalation a human has to handle.
    pub fn into_value(self) -> Result<T, Escalation<T>> {
        match self.resolution {
            Resolution::Answer(v) | Resolution::Default { value: v, .. } => Ok(v),
            Resolution::Escalated(e) => Err(e),
        }
    }

    /// Whether the model produced the value (not a default, not an escalation).
    pub fn is_answer(&self) -> bool {
        matches!(self.resolution, Resolution::Answer(_))
    }

    /// Whether the call was escalated.
    pub fn is_escalated(&self) -> bool {
        matches!(self.resolution, Resolution::Escalated(_))
    }

    /// A one-line account of how the call ended: "first try", "after 1 reask",
    /// "default after timeout", "escalated after refusal".
    pub fn summary(&self) -> String {
        match &self.resolution {
            Resolution::Answer(_) => self.provenance.to_string(),
            Resolution::Default { class, .. } => format!("default after {class}"),
            Resolution::Escalated(e) => format!("escalated after {}", e.class),
        }
    }
}

/// What a call failed with, for `match`ing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Timed out (an attempt, or the whole call's deadline).
    Timeout,
    /// Rate limited.
    RateLimited,
    /// The provider failed.
    ProviderError,
    /// The output never passed validation.
    InvalidOutput,
    /// The model refused.
    Refusal,
    /// The output's confidence stayed below the threshold.
    LowConfidence,
    /// A declared context source stayed unavailable and its contract said `fail`.
    ContextUnavailable,
    /// The harness is misconfigured (no provider for the model, missing key, bad schema).
    Config,
}

impl ErrorKind {
    /// The snake_case name, as records and telemetry spell it (`"invalid_output"`, `"config"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ProviderError => "provider_error",
            ErrorKind::InvalidOutput => "invalid_output",
            ErrorKind::Refusal => "refusal",
            ErrorKind::LowConfidence => "low_confidence",
            ErrorKind::ContextUnavailable => "context_unavailable",
            ErrorKind::Config => "config",
        }
    }
}

impl From<FailureClass> for ErrorKind {
    fn from(c: FailureClass) -> Self {
        match c {
            FailureClass::Timeout => ErrorKind::Timeout,
            FailureClass::RateLimited => ErrorKind::RateLimited,
            FailureClass::ProviderError => ErrorKind::ProviderError,
            FailureClass::InvalidOutput => ErrorKind::InvalidOutput,
            FailureClass::Refusal => ErrorKind::Refusal,
            FailureClass::LowConfidence => ErrorKind::LowConfidence,
            FailureClass::ContextUnavailable => ErrorKind::ContextUnavailable,
        }
    }
}

/// A call that ended in `fail` (explicit, or at the end of a chain).
#[derive(Debug, thiserror::Error)]
#[error("task `{}` failed ({kind:?}) after {} attempt(s): {message}", report.task, report.attempts.len())]
pub struct TaskError {
    kind: ErrorKind,
    message: String,
    validation: ValidationErrors,
    provider_error: Option<ProviderError>,
    report: Box<CallReport>,
}

impl TaskError {
    /// Builds an error; only the engine's `finish` step does, so every error carries its call's
    /// complete report.
    pub(crate) fn new(
        kind: ErrorKind,
        message: impl Into<String>,
        validation: ValidationErrors,
        provider_error: Option<ProviderError>,
        report: CallReport,
    ) -> Self {
        TaskError {
            kind,
            message: message.into(),
            validation,
            provider_error,
            report: Box::new(report),
        }
    }

    /// What kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// What went wrong, in words.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Provider attempts made.
    pub fn attempts(&self) -> &[Attempt] {
        &self.report.attempts
    }
    /// Tokens billed over all attempts.
    pub fn usage(&self) -> Usage {
        self.report.usage
    }
    /// The last raw output the model returned, if any.
    pub fn last_raw(&self) -> Option<&str> {
        self.report.last_raw()
    }
    /// The rules the last answer broke.
    pub fn validation_errors(&self) -> &ValidationErrors {
        &self.validation
    }
    /// The last provider error, if the failure came from the provider.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        self.provider_error.as_ref()
    }
    /// The full report.
    pub fn report(&self) -> &CallReport {
        &self.report
    }
    /// Whether it was a timeout.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }
}

pub(crate) mod duration_ms {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}
