//! The decision: what the chain for a failure class says to do next. A pure function of the
//! chain, the class's cursor, what failed, the time left and a retry gate; the driver applies the
//! decision and logs the skipped steps (anchor: tower's `retry/policy.rs`, the policy apart from
//! the service that runs it).

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info};

use super::{AttemptFailure, Call};
use crate::contract::{Action, ActionKind, Backoff};
use crate::outcome::ActionTaken;
use crate::provider::ProviderError;
use crate::recovery::Recovery;

/// Where one class's chain stands: the step it is on and how much of that step is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) step: usize,
    pub(crate) used: u32,
}

impl Cursor {
    fn next_step(&mut self) {
        self.step += 1;
        self.used = 0;
    }
}

/// What the chain said to do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Decision {
    /// Send the same request again after `delay`.
    Retry { delay: Duration },
    /// Show the model its answer and what was wrong, and ask again.
    Reask,
    /// Switch to another model (and maybe provider).
    Fallback {
        model: &'static str,
        provider: Option<&'static str>,
    },
    /// Hand the call to a human.
    Escalate,
    /// Return the task's default.
    Default,
    /// End with the error (also when the chain is used up).
    Fail,
}

/// A step of the chain that was passed over, and why: the driver logs these.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Skipped {
    pub(crate) step: Action,
    pub(crate) reason: &'static str,
}

/// What the decision step needs from recovery: the delay of a retry and permission to make it.
/// Both may change state (a seeded jitter draw, a withdrawal from the retry budget), so they are
/// asked in this order and only when the retry would otherwise be made.
pub(crate) trait RetryGate {
    /// The delay before retry number `retry` (1-based) of a step with `backoff`.
    fn delay(&mut self, backoff: &Backoff, retry: u32, retry_after: Option<Duration>) -> Duration;
    /// Takes one retry from the budget; `false` means it is spent.
    fn allow(&mut self) -> bool;
}

/// Walks `chain` from `cursor` and decides. `remaining` is the time left before the call's
/// deadline; `error` is the provider's error when the attempt failed in the provider.
pub(crate) fn decide(
    chain: &[Action],
    cursor: &mut Cursor,
    error: Option<&ProviderError>,
    remaining: Duration,
    gate: &mut dyn RetryGate,
    skipped: &mut Vec<Skipped>,
) -> Decision {
    // Attempts cannot help when the deadline is spent; retries cannot help a permanent error, and
    // a reask cannot help when no request was sent (an open breaker).
    let no_time = remaining.is_zero();
    let not_retryable = error.is_some_and(|e| !e.is_retryable());
    let circuit_open = matches!(error, Some(ProviderError::CircuitOpen(_)));
    while let Some(&step) = chain.get(cursor.step) {
        let mut skip = |reason| skipped.push(Skipped { step, reason });
        match step {
            Action::Retry { times, backoff } => {
                if cursor.used >= times {
                    cursor.next_step();
                    continue;
                }
                if no_time || not_retryable {
                    skip(if no_time {
                        "deadline spent"
                    } else {
                        "error is not retryable"
                    });
                    cursor.next_step();
                    continue;
                }
                let delay = gate.delay(
                    &backoff,
                    cursor.used + 1,
                    error.and_then(ProviderError::retry_after),
                );
                if delay >= remaining {
                    skip("backoff would pass the deadline");
                    cursor.next_step();
                    continue;
                }
                if !gate.allow() {
                    skip("retry budget spent");
                    cursor.next_step();
                    continue;
                }
                cursor.used += 1;
                return Decision::Retry { delay };
            }
            Action::Reask { times } => {
                if cursor.used >= times {
                    cursor.next_step();
                    continue;
                }
                if no_time || circuit_open {
                    skip(if no_time {
                        "deadline spent"
                    } else {
                        "circuit open: no answer to show"
                    });
                    cursor.next_step();
                    continue;
                }
                cursor.used += 1;
                return Decision::Reask;
            }
            Action::Fallback(target) => {
                cursor.next_step();
                if no_time {
                    skip("deadline spent");
                    continue;
                }
                return Decision::Fallback {
                    model: target.model,
                    provider: target.provider,
                };
            }
            Action::Escalate => return Decision::Escalate,
            Action::Default => return Decision::Default,
            Action::Fail => return Decision::Fail,
            Action::FallbackSource { .. } | Action::Proceed => {
                // Steps of a source's contract (the macro rejects them elsewhere).
                skip("a context source's step");
                cursor.next_step();
            }
        }
    }
    Decision::Fail
}

/// The retry gate of a live call: the harness's seeded jitter and the provider's retry budget.
struct Budgeted<'a> {
    recovery: &'a Recovery,
    provider: &'a str,
}

impl RetryGate for Budgeted<'_> {
    fn delay(&mut self, backoff: &Backoff, retry: u32, retry_after: Option<Duration>) -> Duration {
        self.recovery.backoff(backoff, retry, retry_after)
    }
    fn allow(&mut self) -> bool {
        self.recovery.retry_allowed(self.provider)
    }
}

impl<T> Call<'_, T> {
    /// Decides what to do after `failure`, moves that class's cursor, logs skipped steps and the
    /// decision, and records the action on the report.
    pub(crate) fn decide(&mut self, failure: &AttemptFailure<T>) -> Decision {
        let contract = self.frame.contract;
        let class = failure.class;
        let attempt = self.frame.report.attempts.len() as u32;
        let mut gate = Budgeted {
            recovery: self.frame.harness.recovery(),
            provider: &self.route.provider_name,
        };
        let mut skipped = Vec::new();
        let decision = decide(
            contract.steps(class),
            &mut self.cursors[class.index()],
            failure.provider_error.as_ref(),
            self.deadline.saturating_duration_since(Instant::now()),
            &mut gate,
            &mut skipped,
        );
        // Event fields are exported with their types: integers as i64 (tracing-opentelemetry
        // would turn a u32 into a string).
        let attempt_field = i64::from(attempt);
        for Skipped { step, reason } in skipped {
            debug!(task = contract.name, attempt = attempt_field, class = class.as_str(), step = %step, reason, "step skipped");
        }
        let (action, detail) = match decision {
            Decision::Retry { delay } => (ActionKind::Retry, format!("after {delay:?}")),
            Decision::Reask => (ActionKind::Reask, String::new()),
            Decision::Fallback { model, .. } => (ActionKind::Fallback, model.to_owned()),
            Decision::Escalate => (ActionKind::Escalate, failure.message.clone()),
            Decision::Default => (ActionKind::Default, failure.message.clone()),
            Decision::Fail => (ActionKind::Fail, failure.message.clone()),
        };
        info!(
            task = contract.name,
            attempt = attempt_field,
            failure_class = class.as_str(),
            action = action.as_str(),
            detail = %detail,
            "harness decision"
        );
        self.frame.report.actions.push(ActionTaken {
            after_attempt: attempt,
            class,
            action,
            detail,
        });
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::FallbackTarget;

    const B: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        multiplier: 2.0,
        jitter: false,
    };
    const RETRY2: Action = Action::Retry {
        times: 2,
        backoff: B,
    };
    const REASK1: Action = Action::Reask { times: 1 };
    const FALLBACK: Action = Action::Fallback(FallbackTarget {
        model: "backup",
        provider: Some("other"),
    });

    /// A gate that answers `delay` and `allow`, and records what it was asked, in order.
    struct Gate {
        delay: Duration,
        allow: bool,
        asked: Vec<String>,
    }

    impl RetryGate for Gate {
        fn delay(&mut self, _: &Backoff, retry: u32, retry_after: Option<Duration>) -> Duration {
            self.asked.push(format!("delay {retry} {retry_after:?}"));
            self.delay.max(retry_after.unwrap_or_default())
        }
        fn allow(&mut self) -> bool {
            self.asked.push("allow".into());
            self.allow
        }
    }

    fn gate(delay_ms: u64, allow: bool) -> Gate {
        Gate {
            delay: Duration::from_millis(delay_ms),
            allow,
            asked: Vec::new(),
        }
    }

    fn timeout() -> ProviderError {
        ProviderError::Timeout(Duration::from_secs(1))
    }

    fn status(code: u16) -> ProviderError {
        ProviderError::Status {
            status: code,
            message: String::new(),
        }
    }

    fn rate_limited(after_ms: u64) -> ProviderError {
        ProviderError::RateLimited {
            status: 429,
            retry_after: Some(Duration::from_millis(after_ms)),
        }
    }

    struct Case {
        name: &'static str,
        chain: &'static [Action],
        cursor: Cursor,
        error: Option<ProviderError>,
        remaining_ms: u64,
        gate: Gate,
        decision: Decision,
        cursor_after: Cursor,
        skipped: &'static [&'static str],
        asked: &'static [&'static str],
    }

    const fn at(step: usize, used: u32) -> Cursor {
        Cursor { step, used }
    }

    fn cases() -> Vec<Case> {
        let ms = Duration::from_millis;
        vec![
            Case {
                name: "a retry with time and budget is made, and counted",
                chain: &[RETRY2, Action::Fail],
                cursor: at(0, 0),
                error: Some(timeout()),
                remaining_ms: 5_000,
                gate: gate(100, true),
                decision: Decision::Retry { delay: ms(100) },
                cursor_after: at(0, 1),
                skipped: &[],
                asked: &["delay 1 None", "allow"],
            },
            Case {
                name: "the second retry is numbered 2 for the backoff",
                chain: &[RETRY2, Action::Fail],
                cursor: at(0, 1),
                error: Some(timeout()),
                remaining_ms: 5_000,
                gate: gate(200, true),
                decision: Decision::Retry { delay: ms(200) },
                cursor_after: at(0, 2),
                skipped: &[],
                asked: &["delay 2 None", "allow"],
            },
            Case {
                name: "a used-up retry moves on to the next step without a skip",
                chain: &[RETRY2, FALLBACK, Action::Fail],
                cursor: at(0, 2),
                error: Some(timeout()),
                remaining_ms: 5_000,
                gate: gate(100, true),
                decision: Decision::Fallback {
                    model: "backup",
                    provider: Some("other"),
                },
                cursor_after: at(2, 0),
                skipped: &[],
                asked: &[],
            },
            Case {
                name: "Retry-After reaches the gate and a delay past the deadline skips the retry",
                chain: &[RETRY2, Action::Escalate],
                cursor: at(0, 0),
                error: Some(rate_limited(3_000)),
                remaining_ms: 2_000,
                gate: gate(100, true),
                decision: Decision::Escalate,
                cursor_after: at(1, 0),
                skipped: &["backoff would pass the deadline"],
                asked: &["delay 1 Some(3s)"],
            },
            Case {
                name: "a delay exactly as long as the time left is skipped too",
                chain: &[RETRY2, Action::Default],
                cursor: at(0, 0),
                error: Some(timeout()),
                remaining_ms: 100,
                gate: gate(100, true),
                decision: Decision::Default,
                cursor_after: at(1, 0),
                skipped: &["backoff would pass the deadline"],
                asked: &["delay 1 None"],
            },
            Case {
                name: "a spent retry budget skips the retry after its delay is drawn",
                chain: &[RETRY2, Action::Default],
                cursor: at(0, 0),
                error: Some(status(503)),
                remaining_ms: 5_000,
                gate: gate(100, false),
                decision: Decision::Default,
                cursor_after: at(1, 0),
                skipped: &["retry budget spent"],
                asked: &["delay 1 None", "allow"],
            },
            Case {
                name: "a permanent error is not retried and asks the gate nothing",
                chain: &[RETRY2, Action::Fail],
                cursor: at(0, 0),
                error: Some(status(401)),
                remaining_ms: 5_000,
                gate: gate(100, true),
                decision: Decision::Fail,
                cursor_after: at(1, 0),
                skipped: &["error is not retryable"],
                asked: &[],
            },
            Case {
                name: "an open breaker skips retries and reasks and goes on to the fallback",
                chain: &[RETRY2, REASK1, FALLBACK, Action::Fail],
                cursor: at(0, 0),
                error: Some(ProviderError::CircuitOpen("primary".into())),
                remaining_ms: 5_000,
                gate: gate(100, true),
                decision: Decision::Fallback {
                    model: "backup",
                    provider: Some("other"),
                },
                cursor_after: at(3, 0),
                skipped: &["error is not retryable", "circuit open: no answer to show"],
                asked: &[],
            },
            Case {
                name: "a spent deadline skips every attempt-making step and ends on the terminal one",
                chain: &[RETRY2, REASK1, FALLBACK, Action::Escalate],
                cursor: at(0, 0),
                error: Some(timeout()),
                remaining_ms: 0,
                gate: gate(100, true),
                decision: Decision::Escalate,
                cursor_after: at(3, 0),
                skipped: &["deadline spent", "deadline spent", "deadline spent"],
                asked: &[],
            },
            Case {
                name: "a reask is made for an answer that was wrong",
                chain: &[REASK1, Action::Fail],
                cursor: at(0, 0),
                error: None,
                remaining_ms: 5_000,
                gate: gate(100, true),
                decision: Decision::Reask,
                cursor_after: at(0, 1),
                skipped: &[],
                asked: &[],
            },
            Case {
                name: "a used-up reask moves on",
                chain: &[REASK1, Action::Escalate],
                cursor: at(0, 1),
                error: None,
                remaining_ms: 5_000,
                gate: gate(100, true),
                decision: Decision::Escalate,
                cursor_after: at(1, 0),
                skipped: &[],
                asked: &[],
            },
            Case {
                name: "a fallback is taken once: the cursor is past it",
                chain: &[FALLBACK],
                cursor: at(0, 0),
                error: Some(status(500)),
                remaining_ms: 5_000,
                gate: gate(100, true),
                decision: Decision::Fallback {
                    model: "backup",
                    provider: Some("other"),
                },
                cursor_after: at(1, 0),
                skipped: &[],
                asked: &[],
            },
            Case {
                name: "a chain used up fails",
                chain: &[FALLBACK],
                cursor: at(1, 0),
                error: Some(status(500)),
                remaining_ms: 5_000,
                gate: gate(100, true),
                decision: Decision::Fail,
                cursor_after: at(1, 0),
                skipped: &[],
                asked: &[],
            },
            Case {
                name: "an empty chain fails",
                chain: &[],
                cursor: at(0, 0),
                error: None,
                remaining_ms: 5_000,
                gate: gate(100, true),
                decision: Decision::Fail,
                cursor_after: at(0, 0),
                skipped: &[],
                asked: &[],
            },
            Case {
                name: "terminal steps do not move the cursor",
                chain: &[Action::Default],
                cursor: at(0, 0),
                error: None,
                remaining_ms: 0,
                gate: gate(100, true),
                decision: Decision::Default,
                cursor_after: at(0, 0),
                skipped: &[],
                asked: &[],
            },
        ]
    }

    #[test]
    fn the_decision_table() {
        for mut case in cases() {
            let mut cursor = case.cursor;
            let mut skipped = Vec::new();
            let decision = decide(
                case.chain,
                &mut cursor,
                case.error.as_ref(),
                Duration::from_millis(case.remaining_ms),
                &mut case.gate,
                &mut skipped,
            );
            let reasons: Vec<&str> = skipped.iter().map(|s| s.reason).collect();
            assert_eq!(decision, case.decision, "{}: decision", case.name);
            assert_eq!(cursor, case.cursor_after, "{}: cursor", case.name);
            assert_eq!(reasons, case.skipped, "{}: skipped", case.name);
            assert_eq!(case.gate.asked, case.asked, "{}: gate", case.name);
        }
    }

    #[test]
    fn skipped_steps_name_the_step() {
        let mut skipped = Vec::new();
        decide(
            &[REASK1, Action::Fail],
            &mut Cursor::default(),
            None,
            Duration::ZERO,
            &mut gate(0, true),
            &mut skipped,
        );
        assert_eq!(
            skipped,
            [Skipped {
                step: REASK1,
                reason: "deadline spent"
            }]
        );
    }
}
