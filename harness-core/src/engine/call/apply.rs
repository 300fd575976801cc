//! Carrying out a decision: wait and retry, reask with what was wrong, switch to the fallback,
//! or end the call (escalate, default, fail).

use tracing::warn;

use super::{AttemptFailure, Call, Decision, Ended, Route};
use crate::context::{echo, reask_message};
use crate::outcome::{AttemptKind, Escalation};
use crate::output::LlmOutput;
use crate::provider::{ChatRequest, Message};

impl<T: LlmOutput> Call<'_, T> {
    /// Prepares the next attempt, or ends the call (`Some`).
    pub(crate) async fn apply(
        &mut self,
        decision: Decision,
        failure: AttemptFailure<T>,
    ) -> Option<Ended<T>> {
        match decision {
            Decision::Retry { delay } => {
                tokio::time::sleep(delay).await;
                self.kind = AttemptKind::Retry;
                None
            }
            Decision::Reask => {
                self.reask(&failure);
                None
            }
            Decision::Fallback { model, provider } => self.fall_back(model, provider, failure),
            Decision::Escalate => Some(self.escalate(failure)),
            Decision::Default => Some(self.default(failure)),
            Decision::Fail => Some(Ended::Failed {
                kind: failure.class.into(),
                message: failure.message,
                validation: failure.validation,
                provider_error: failure.provider_error,
            }),
        }
    }

    /// The first messages again, the previous answer (bounded), and what was wrong with it.
    fn reask(&mut self, failure: &AttemptFailure<T>) {
        let mut messages = self.base_messages.clone();
        if let Some(raw) = &failure.raw {
            messages.push(Message::assistant(echo(raw)));
        }
        let confidence = failure
            .candidate
            .as_ref()
            .map(|c| (c.confidence, c.threshold));
        messages.push(Message::user(reask_message(
            failure.class,
            &failure.validation,
            confidence,
        )));
        self.request.messages = messages;
        self.fingerprint = self.request.fingerprint();
        self.kind = AttemptKind::Reask;
    }

    /// The first request, sent to the fallback model; a target that cannot be routed ends the call.
    fn fall_back(
        &mut self,
        model: &'static str,
        provider: Option<&'static str>,
        failure: AttemptFailure<T>,
    ) -> Option<Ended<T>> {
        let harness = self.frame.harness;
        match harness.route(provider, model) {
            Ok((provider_name, provider)) => {
                harness.recovery().on_call(&provider_name);
                self.route = Route {
                    provider_name,
                    provider,
                    model: model.to_owned(),
                };
                self.request = ChatRequest {
                    model: model.to_owned(),
                    messages: self.base_messages.clone(),
                    ..self.frame.request.clone()
                };
                self.fingerprint = self.request.fingerprint();
                self.kind = AttemptKind::Fallback;
                None
            }
            Err(e) => {
                warn!(task = self.frame.contract.name, error = %e, "fallback target unavailable");
                Some(Ended::config(e, Some(failure)))
            }
        }
    }

    /// For a human: the reason, the candidate answer if there was one, and the last raw text.
    fn escalate(&self, failure: AttemptFailure<T>) -> Ended<T> {
        let (candidate, json) = match failure.candidate {
            Some(c) => (Some(c.value), Some(c.json)),
            None => (None, None),
        };
        let last_raw = failure
            .raw
            .or_else(|| self.frame.report.last_raw().map(str::to_owned));
        Ended::Escalated {
            escalation: Escalation {
                class: failure.class,
                reason: failure.message,
                candidate,
                last_raw,
            },
            candidate: json,
        }
    }

    /// The task's default for this class; a contract that says `default` without one is a
    /// configuration error.
    fn default(&self, failure: AttemptFailure<T>) -> Ended<T> {
        let class = failure.class;
        match self.defaults.and_then(|d| d(class)) {
            Some(value) => Ended::Default { value, class },
            None => Ended::config(
                format!(
                    "the contract for {class} says `default`, but no default value was supplied"
                ),
                Some(failure),
            ),
        }
    }
}
