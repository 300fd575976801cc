//! One call of a task, as named steps over state kept on a struct (anchor: hyper's
//! `proto/h1/dispatch.rs`): [`start`](Call::start) → [`attempt`](Call::attempt) →
//! [`judge`](Call::judge) → [`decide`](Call::decide) → [`apply`](Call::apply) →
//! [`finish`](Frame::finish). [`run`] is the driver for one task call; a second driver (the agent
//! loop) can run the same steps in its own order. `docs/contracts.md` is the specification.
//!
//! The words: an attempt gets a *verdict* (accepted, or failed with a class); the chain for that
//! class gives a *decision*; the call *ends* ([`Ended`]) as an answer, a default, an escalation or
//! a failure, and the caller gets an [`Outcome`](crate::Outcome) or a [`TaskError`].

mod apply;
mod attempt;
mod decide;
mod finish;
mod judge;
pub(crate) use judge::looks_like_refusal;
mod sources;
mod start;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::time::Instant;
use tracing::Instrument;

use super::{DefaultFn, Harness, Inputs};
use crate::context::Context;
use crate::contract::{FailureClass, TaskContract};
use crate::observe::task_span;
use crate::outcome::{AttemptKind, CallReport, ErrorKind, Escalation, Provenance, TaskResult};
use crate::output::{LlmOutput, ValidationErrors};
use crate::provider::{ChatRequest, Message, Provider, ProviderError};

use decide::{Cursor, Decision};
use judge::{AttemptFailure, Verdict};

/// Runs one task call to its end.
pub(crate) async fn run<T: LlmOutput>(
    harness: &Harness,
    contract: &'static TaskContract,
    inputs: Inputs,
    context: Option<Context>,
    defaults: Option<DefaultFn<'_, T>>,
) -> TaskResult<T> {
    async move {
        let fetched = if contract.sources.is_empty() {
            sources::Fetched::default()
        } else {
            let text = query_text(contract, &inputs, context.as_ref());
            sources::fetch_all(harness, contract, &inputs, text).await
        };
        let started = Call::start(harness, contract, inputs, context, defaults, fetched);
        let (frame, ended) = match started {
            Ok(call) => call.drive().await,
            Err(not_started) => *not_started,
        };
        frame.finish(ended)
    }
    .instrument(task_span(contract))
    .await
}

/// What a source is asked about: the last user message the first request will carry (the
/// rendered prompt, or the body's last user message).
fn query_text(
    contract: &TaskContract,
    inputs: &[(&'static str, String)],
    context: Option<&Context>,
) -> String {
    match context {
        Some(c) => c
            .messages
            .iter()
            .rev()
            .find(|m| m.role == crate::provider::Role::User)
            .map(|m| m.content.clone())
            .unwrap_or_default(),
        None => contract
            .prompt
            .map(|p| crate::contract::render_prompt(p, inputs))
            .unwrap_or_default(),
    }
}

/// What `finish` needs of a call, whether or not it got to make an attempt: who runs it, what
/// it was asked, and what happened so far.
pub(crate) struct Frame<'h> {
    pub(crate) harness: &'h Harness,
    pub(crate) contract: &'static TaskContract,
    pub(crate) inputs: Inputs,
    /// The first attempt's request: what observers and the audit trail keep.
    pub(crate) request: ChatRequest,
    pub(crate) report: CallReport,
    pub(crate) provenance: Provenance,
    pub(crate) started: Instant,
}

/// Where attempts go: the provider's registered name, the provider and the model.
pub(crate) struct Route {
    pub(crate) provider_name: String,
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) model: String,
}

/// A call under way: its frame, where it sends attempts, what it sends next, and where each
/// class's chain stands.
pub(crate) struct Call<'h, T> {
    pub(crate) frame: Frame<'h>,
    pub(crate) defaults: Option<DefaultFn<'h, T>>,
    pub(crate) route: Route,
    /// The first attempt's messages, which reasks and fallbacks start again from.
    pub(crate) base_messages: Vec<Message>,
    /// What the next attempt sends, and its fingerprint (computed once per distinct request).
    pub(crate) request: ChatRequest,
    pub(crate) fingerprint: String,
    /// What kind the next attempt is.
    pub(crate) kind: AttemptKind,
    pub(crate) cursors: [Cursor; FailureClass::ALL.len()],
    pub(crate) deadline: Instant,
}

/// How a call ended, before the report is completed and the caller's result is built (once, by
/// [`Frame::finish`]).
pub(crate) enum Ended<T> {
    /// A model answer, and the JSON it was read from.
    Answer { value: T, json: serde_json::Value },
    /// The task's default, after a failure of `class`.
    Default { value: T, class: FailureClass },
    /// For a human; `candidate` is the valid but unconfident answer, if there was one.
    Escalated {
        escalation: Escalation<T>,
        candidate: Option<serde_json::Value>,
    },
    /// An error for the caller.
    Failed {
        kind: ErrorKind,
        message: String,
        validation: ValidationErrors,
        provider_error: Option<ProviderError>,
    },
}

impl<T> Ended<T> {
    /// A call that cannot go on because it is misconfigured.
    pub(crate) fn config(message: String, failure: Option<AttemptFailure<T>>) -> Self {
        let (validation, provider_error) = match failure {
            Some(f) => (f.validation, f.provider_error),
            None => (ValidationErrors::new(), None),
        };
        Ended::Failed {
            kind: ErrorKind::Config,
            message,
            validation,
            provider_error,
        }
    }
}

impl<'h, T: LlmOutput> Call<'h, T> {
    /// The loop: attempt, judge, and on a failure decide and apply, until the call ends.
    async fn drive(mut self) -> (Frame<'h>, Ended<T>) {
        loop {
            let verdict = match self.attempt().await {
                Some(exchange) => self.judge(exchange),
                None => Verdict::deadline_spent(self.frame.contract),
            };
            let failure = match verdict {
                Verdict::Accepted {
                    value,
                    json,
                    repaired,
                } => {
                    self.frame.provenance.model = self.route.model.clone();
                    self.frame.provenance.repaired = repaired;
                    return (self.frame, Ended::Answer { value, json });
                }
                Verdict::Failed(failure) => failure,
            };
            let decision = self.decide(&failure);
            if let Some(ended) = self.apply(decision, failure).await {
                return (self.frame, ended);
            }
        }
    }
}

/// A process-unique, time-ordered call id.
pub(crate) fn new_call_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:x}-{:x}-{:04x}",
        now.as_millis(),
        std::process::id(),
        seq & 0xffff
    )
}
