//! The loop that executes a contract: attempt → check → the chain for the failure class → repeat.
//! The only place that decides; `docs/contracts.md` is its specification.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::{Instrument, debug, warn};

use crate::observe::{self as telemetry, CallEnd, EndStatus};

use super::{DefaultFn, Harness, Inputs};
use crate::context::{Context, initial_messages};
use crate::contract::{Action, ActionKind, FailureClass, TaskContract};
use crate::outcome::{
    ActionTaken, Attempt, AttemptKind, CallReport, ErrorKind, Escalation, Outcome, Provenance,
    Resolution, TaskError, TaskResult,
};
use crate::output::{Checked, LlmOutput, SchemaValidator, ValidationErrors, check_value};
use crate::provider::{
    ChatRequest, ChatResponse, FinishReason, Message, ProviderError, ResponseFormat,
};
use crate::recovery::{AttemptResult, estimate_tokens};

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

/// Where each class's chain stands: the step it is on and how much of it is used.
#[derive(Clone, Copy, Default)]
struct Cursor {
    step: usize,
    used: u32,
}

/// What one attempt came to.
enum Verdict<T> {
    Accepted {
        value: T,
        json: serde_json::Value,
        repaired: bool,
    },
    Failed {
        class: FailureClass,
        failure: Failure<T>,
    },
}

/// Details of a failed attempt the chain may need.
struct Failure<T> {
    message: String,
    validation: ValidationErrors,
    provider_error: Option<ProviderError>,
    /// A valid value whose confidence was too low.
    candidate: Option<(T, serde_json::Value, f64, f64)>,
    raw: Option<String>,
}

/// Where a call stands when a failure is decided.
#[derive(Clone, Copy)]
struct Position<'a> {
    contract: &'a TaskContract,
    attempt: u32,
    deadline: Instant,
    harness: &'a Harness,
    provider_name: &'a str,
}

/// The decision for a failure.
enum Decision {
    Retry {
        delay: Duration,
    },
    Reask,
    Fallback {
        model: &'static str,
        provider: Option<&'static str>,
    },
    Escalate,
    Default,
    Fail,
}

pub(super) async fn run<T: LlmOutput>(
    harness: &Harness,
    contract: &'static TaskContract,
    inputs: Inputs,
    context: Option<Context>,
    defaults: Option<DefaultFn<'_, T>>,
) -> TaskResult<T> {
    let span = telemetry::task_span(contract);
    run_inner(harness, contract, inputs, context, defaults)
        .instrument(span)
        .await
}

async fn run_inner<T: LlmOutput>(
    harness: &Harness,
    contract: &'static TaskContract,
    inputs: Inputs,
    context: Option<Context>,
    defaults: Option<DefaultFn<'_, T>>,
) -> TaskResult<T> {
    let inner = &harness.inner;
    let schema = SchemaValidator::for_type::<T>();
    let primary_model = inner
        .model_override
        .clone()
        .or_else(|| contract.model.map(str::to_owned))
        .or_else(|| inner.default_model.clone());
    let mut model = primary_model.clone().unwrap_or_default();

    let base_messages = initial_messages(contract, &inputs, context, &schema);
    let first_request = ChatRequest {
        model: model.clone(),
        messages: base_messages.clone(),
        response_format: ResponseFormat::JsonSchema {
            name: T::TYPE_NAME.to_owned(),
            schema: schema.schema().clone(),
        },
        temperature: contract.params.temperature,
        max_tokens: contract.params.max_tokens,
        seed: contract.params.seed,
    };
    let threshold = contract.confidence_threshold();
    let started = Instant::now();
    let deadline = started + contract.effective_deadline();
    let mut report = CallReport {
        call_id: new_call_id(),
        task: contract.name,
        contract_version: contract.version,
        fingerprint: first_request.fingerprint(),
        model_requested: model.clone(),
        started_at: SystemTime::now(),
        elapsed: Duration::ZERO,
        attempts: Vec::new(),
        actions: Vec::new(),
        usage: Default::default(),
        cost_usd: None,
    };
    tracing::Span::current().record(telemetry::names::HARNESS_CALL_ID, report.call_id.as_str());

    let scope = Scope {
        harness,
        contract,
        request: &first_request,
        inputs: &inputs,
        started,
    };
    // A call that cannot start is still a call: it ends through `finish`, so observers (the
    // audit trail) record it with what was wrong.
    let setup = if let Some(err) = schema.compile_error() {
        Err(format!(
            "the JSON schema of `{}` cannot be compiled: {err}",
            T::TYPE_NAME
        ))
    } else if primary_model.is_none() {
        Err(format!(
            "task `{}` names no model and the harness has no default model",
            contract.name
        ))
    } else {
        harness.route(contract.provider, &model)
    };
    let (mut provider_name, mut provider) = match setup {
        Ok(p) => p,
        Err(message) => {
            let error = TaskError::new(
                ErrorKind::Config,
                message,
                ValidationErrors::new(),
                None,
                CallReport::default_for(contract),
            );
            return scope.finish(report, Err(error));
        }
    };
    let recovery = harness.recovery();
    recovery.on_call(&provider_name);
    let mut request = first_request.clone();
    let mut cursors = [Cursor::default(); 6];
    let mut kind = AttemptKind::First;
    let mut provenance = Provenance::default();

    loop {
        let n = report.attempts.len() as u32 + 1;
        let now = Instant::now();
        let remaining = deadline.saturating_duration_since(now);
        let verdict: Verdict<T>;
        if remaining.is_zero() {
            // The deadline is spent: no attempt is made; the timeout chain decides what is left.
            verdict = Verdict::Failed {
                class: FailureClass::Timeout,
                failure: Failure {
                    message: format!(
                        "the call's deadline of {:?} is spent",
                        contract.effective_deadline()
                    ),
                    validation: ValidationErrors::new(),
                    provider_error: Some(ProviderError::Timeout(contract.effective_deadline())),
                    candidate: None,
                    raw: None,
                },
            };
        } else {
            let per_attempt = contract.timeout.min(remaining);
            let attempt_span = inner.telemetry.attempt_span(&provider.info(), &request);
            let wall = SystemTime::now();
            let admission = recovery
                .admit_before(
                    &provider_name,
                    &model,
                    estimate_tokens(&request),
                    Some(deadline),
                )
                .await;
            let result = match admission {
                Ok(admission) => {
                    let sent = Instant::now();
                    let result = tokio::time::timeout(per_attempt, provider.chat(&request))
                        .instrument(attempt_span.clone())
                        .await
                        .unwrap_or(Err(ProviderError::Timeout(per_attempt)));
                    recovery.record(
                        admission,
                        AttemptResult::from_provider(&result, sent.elapsed()),
                    );
                    result
                }
                // Refused by a breaker or a limit: no request is sent; the contract decides.
                Err(rejection) => Err(rejection.into_provider_error()),
            };
            let latency = now.elapsed();
            match &result {
                Ok(response) => telemetry::record_response(&attempt_span, response),
                Err(error) => telemetry::record_error(&attempt_span, error),
            }
            let (v, attempt) = judge::<T>(result, threshold, harness);
            let attempt = Attempt {
                n,
                kind,
                provider: provider_name.clone(),
                model: model.clone(),
                started_at: wall,
                latency,
                ..attempt
            };
            telemetry::record_attempt(&attempt_span, &attempt);
            attempt_span.in_scope(|| {
                debug!(failure = ?attempt.failure, latency_ms = latency.as_millis() as u64, "attempt finished")
            });
            report.usage += attempt.usage;
            report.attempts.push(attempt);
            provenance.attempts = n;
            match kind {
                AttemptKind::Retry => provenance.retries += 1,
                AttemptKind::Reask => provenance.reasks += 1,
                AttemptKind::Fallback => provenance.fallback = true,
                AttemptKind::First => {}
            }
            verdict = v;
        }

        let (class, failure) = match verdict {
            Verdict::Accepted {
                value,
                json,
                repaired,
            } => {
                provenance.model = model.clone();
                provenance.repaired = repaired;
                return scope.finish(
                    report,
                    Ok((Resolution::Answer(value), provenance, Some(json))),
                );
            }
            Verdict::Failed { class, failure } => (class, failure),
        };

        let at = Position {
            contract,
            attempt: n,
            deadline,
            harness,
            provider_name: &provider_name,
        };
        let decision = decide(at, class, &failure, &mut cursors);
        let (action, detail) = match &decision {
            Decision::Retry { delay } => (ActionKind::Retry, format!("after {delay:?}")),
            Decision::Reask => (ActionKind::Reask, String::new()),
            Decision::Fallback { model, .. } => (ActionKind::Fallback, (*model).to_owned()),
            Decision::Escalate => (ActionKind::Escalate, failure.message.clone()),
            Decision::Default => (ActionKind::Default, failure.message.clone()),
            Decision::Fail => (ActionKind::Fail, failure.message.clone()),
        };
        tracing::info!(
            task = contract.name,
            attempt = n,
            failure_class = class.as_str(),
            action = action.as_str(),
            detail = %detail,
            "harness decision"
        );
        report.actions.push(ActionTaken {
            after_attempt: report.attempts.len() as u32,
            class,
            action,
            detail,
        });

        match decision {
            Decision::Retry { delay } => {
                tokio::time::sleep(delay).await;
                kind = AttemptKind::Retry;
            }
            Decision::Reask => {
                let mut messages = base_messages.clone();
                if let Some(raw) = &failure.raw {
                    messages.push(Message::assistant(echo(raw)));
                }
                messages.push(Message::user(reask_message(class, &failure)));
                request = ChatRequest {
                    messages,
                    ..request
                };
                kind = AttemptKind::Reask;
            }
            Decision::Fallback {
                model: m,
                provider: p,
            } => match harness.route(p, m) {
                Ok((name, prov)) => {
                    recovery.on_call(&name);
                    provider_name = name;
                    provider = prov;
                    model = m.to_owned();
                    request = ChatRequest {
                        model: model.clone(),
                        messages: base_messages.clone(),
                        ..first_request.clone()
                    };
                    kind = AttemptKind::Fallback;
                }
                Err(e) => {
                    warn!(task = contract.name, error = %e, "fallback target unavailable");
                    return scope.finish(
                        report,
                        Err(TaskError::new(
                            ErrorKind::Config,
                            e,
                            failure.validation,
                            failure.provider_error,
                            CallReport::default_for(contract),
                        )),
                    );
                }
            },
            Decision::Escalate => {
                let (candidate, candidate_json) = match failure.candidate {
                    Some((value, json, ..)) => (Some(value), Some(json)),
                    None => (None, None),
                };
                let escalation = Escalation {
                    class,
                    reason: failure.message,
                    candidate,
                    last_raw: failure.raw.or_else(|| report.last_raw().map(str::to_owned)),
                };
                return scope.finish(
                    report,
                    Ok((
                        Resolution::Escalated(escalation),
                        provenance,
                        candidate_json,
                    )),
                );
            }
            Decision::Default => match defaults.and_then(|d| d(class)) {
                Some(value) => {
                    return scope.finish(
                        report,
                        Ok((Resolution::Default { value, class }, provenance, None)),
                    );
                }
                None => {
                    let message = format!(
                        "the contract for {class} says `default`, but no default value was supplied"
                    );
                    return scope.finish(
                        report,
                        Err(TaskError::new(
                            ErrorKind::Config,
                            message,
                            failure.validation,
                            failure.provider_error,
                            CallReport::default_for(contract),
                        )),
                    );
                }
            },
            Decision::Fail => {
                return scope.finish(
                    report,
                    Err(TaskError::new(
                        class.into(),
                        failure.message,
                        failure.validation,
                        failure.provider_error,
                        CallReport::default_for(contract),
                    )),
                );
            }
        }
    }
}

impl CallReport {
    /// A blank report for a contract; `finish` replaces it with the real one.
    pub(super) fn default_for(contract: &TaskContract) -> CallReport {
        CallReport {
            call_id: String::new(),
            task: contract.name,
            contract_version: contract.version,
            fingerprint: String::new(),
            model_requested: String::new(),
            started_at: SystemTime::UNIX_EPOCH,
            elapsed: Duration::ZERO,
            attempts: Vec::new(),
            actions: Vec::new(),
            usage: Default::default(),
            cost_usd: None,
        }
    }
}

type Finished<T> = Result<(Resolution<T>, Provenance, Option<serde_json::Value>), TaskError>;

/// What `finish` needs of the call besides its report and result.
struct Scope<'a> {
    harness: &'a Harness,
    contract: &'static TaskContract,
    request: &'a ChatRequest,
    inputs: &'a [(&'static str, String)],
    started: Instant,
}

impl Scope<'_> {
    /// Completes the report, tells the observers, and builds what the caller gets.
    fn finish<T: LlmOutput>(&self, mut report: CallReport, result: Finished<T>) -> TaskResult<T> {
        let Scope {
            harness,
            contract,
            request,
            inputs,
            started,
        } = *self;
        report.elapsed = started.elapsed();
        report.cost_usd = harness.inner.prices.report_cost(&report);
        let status = match &result {
            Ok((Resolution::Answer(_), ..)) => EndStatus::Answer,
            Ok((Resolution::Default { class, .. }, ..)) => EndStatus::Default(*class),
            Ok((Resolution::Escalated(e), ..)) => EndStatus::Escalated(e.class),
            Err(e) => EndStatus::Failed(e.kind()),
        };
        let (value, candidate) = match &result {
            Ok((Resolution::Answer(_), _, json)) => (json.as_ref(), None),
            Ok((Resolution::Escalated(_), _, json)) => (None, json.as_ref()),
            _ => (None, None),
        };
        let reason = match &result {
            Ok((Resolution::Answer(_), ..)) => None,
            Ok((Resolution::Escalated(e), ..)) => Some(e.reason.as_str()),
            Ok((Resolution::Default { .. }, ..)) => {
                report.actions.last().map(|a| a.detail.as_str())
            }
            Err(e) => Some(e.message()),
        };
        let end = CallEnd {
            contract,
            report: &report,
            request,
            inputs,
            status,
            value,
            reason,
            candidate,
            actor: harness.actor.as_deref(),
        };
        telemetry::record_call_end(&tracing::Span::current(), &end);
        for observer in &harness.inner.observers {
            observer.on_call_end(&end);
        }
        match result {
            Ok((resolution, provenance, _)) => Ok(Outcome {
                resolution,
                provenance,
                report,
            }),
            Err(e) => Err(TaskError::new(
                e.kind(),
                e.message().to_owned(),
                e.validation_errors().clone(),
                e.provider_error().cloned(),
                report,
            )),
        }
    }
}

/// Turns one provider result into a verdict and the attempt's record (identity fields are filled
/// in by the caller).
fn judge<T: LlmOutput>(
    result: Result<ChatResponse, ProviderError>,
    threshold: Option<f64>,
    harness: &Harness,
) -> (Verdict<T>, Attempt) {
    let mut attempt = Attempt {
        n: 0,
        kind: AttemptKind::First,
        provider: String::new(),
        model: String::new(),
        response_model: None,
        response_id: None,
        started_at: SystemTime::UNIX_EPOCH,
        latency: Duration::ZERO,
        usage: Default::default(),
        finish_reason: None,
        raw: None,
        failure: None,
        error: None,
        validation: ValidationErrors::new(),
        repairs: Vec::new(),
        confidence: None,
    };
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            let class = e.class();
            attempt.failure = Some(class);
            attempt.error = Some(e.to_string());
            let failure = Failure {
                message: e.to_string(),
                validation: ValidationErrors::new(),
                provider_error: Some(e),
                candidate: None,
                raw: None,
            };
            return (Verdict::Failed { class, failure }, attempt);
        }
    };
    attempt.response_model = response.model.clone();
    attempt.response_id = response.id.clone();
    attempt.usage = response.usage;
    attempt.finish_reason = response.finish_reason.clone();
    attempt.raw = Some(response.content.clone());

    let refusal = response.refusal.clone().or_else(|| {
        (response.finish_reason == Some(FinishReason::ContentFilter))
            .then(|| "the provider's content filter stopped the answer".to_owned())
    });
    if let Some(reason) = refusal {
        let failure = Failure {
            message: format!("the model refused: {reason}"),
            validation: ValidationErrors::new(),
            provider_error: None,
            candidate: None,
            raw: Some(response.content),
        };
        attempt.failure = Some(FailureClass::Refusal);
        attempt.error = Some(failure.message.clone());
        return (
            Verdict::Failed {
                class: FailureClass::Refusal,
                failure,
            },
            attempt,
        );
    }

    let checked = check_value::<T>(&response.content, threshold, &harness.inner.parse_limits);
    let truncated = response.finish_reason == Some(FinishReason::Length);
    match checked {
        Checked::Valid {
            value,
            json,
            repairs,
        } if !truncated => {
            attempt.confidence = value.confidence();
            let repaired = !repairs.is_empty();
            attempt.repairs = repairs;
            (
                Verdict::Accepted {
                    value,
                    json,
                    repaired,
                },
                attempt,
            )
        }
        Checked::LowConfidence {
            value,
            json,
            repairs,
            confidence,
            threshold,
        } if !truncated => {
            attempt.confidence = Some(confidence);
            attempt.repairs = repairs;
            attempt.failure = Some(FailureClass::LowConfidence);
            let message = format!("confidence {confidence} is below the threshold {threshold}");
            attempt.error = Some(message.clone());
            let failure = Failure {
                message,
                validation: ValidationErrors::new(),
                provider_error: None,
                candidate: Some((value, json, confidence, threshold)),
                raw: Some(response.content),
            };
            (
                Verdict::Failed {
                    class: FailureClass::LowConfidence,
                    failure,
                },
                attempt,
            )
        }
        other => {
            let (mut errors, repairs, parse_failed) = match other {
                Checked::Invalid {
                    errors,
                    repairs,
                    parse_error,
                } => (errors, repairs, parse_error.is_some()),
                Checked::Valid { repairs, .. } | Checked::LowConfidence { repairs, .. } => {
                    (ValidationErrors::new(), repairs, false)
                }
            };
            let class = if parse_failed && looks_like_refusal(&response.content) {
                FailureClass::Refusal
            } else {
                FailureClass::InvalidOutput
            };
            if truncated {
                errors.push(
                    &crate::output::FieldPath::root(),
                    "length",
                    "the answer was cut off by the token limit (finish_reason: length); give a shorter answer",
                );
            }
            let message = if class == FailureClass::Refusal {
                "the model declined to answer".to_owned()
            } else {
                format!("the output is not valid:\n{errors}")
            };
            attempt.failure = Some(class);
            attempt.error = Some(message.clone());
            attempt.validation = errors.clone();
            attempt.repairs = repairs;
            let failure = Failure {
                message,
                validation: errors,
                provider_error: None,
                candidate: None,
                raw: Some(response.content),
            };
            (Verdict::Failed { class, failure }, attempt)
        }
    }
}

/// The most of a previous answer a reask shows the model again: enough to see its mistake,
/// bounded so a huge answer cannot make the next request huge (building it is synchronous work
/// that no per-attempt timeout can interrupt).
const MAX_ECHO_BYTES: usize = 4 * 1024;

/// A previous answer as a reask echoes it: whole when short, else its head and a note.
fn echo(raw: &str) -> String {
    if raw.len() <= MAX_ECHO_BYTES {
        return raw.to_owned();
    }
    let mut end = MAX_ECHO_BYTES;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[… {} more bytes cut: the answer was far too long]",
        &raw[..end],
        raw.len() - end
    )
}

/// Refusal phrasing, checked only when the answer holds no JSON at all.
fn looks_like_refusal(text: &str) -> bool {
    const MARKERS: [&str; 10] = [
        "i can't help",
        "i cannot help",
        "i can't assist",
        "i cannot assist",
        "i'm sorry, but",
        "i am sorry, but",
        "i won't",
        "i will not",
        "i'm unable to",
        "i am unable to",
    ];
    let head: String = text
        .chars()
        .take(400)
        .collect::<String>()
        .to_lowercase()
        .replace('’', "'");
    MARKERS.iter().any(|m| head.contains(m))
}

/// The user message of a reask: what was wrong, worded for the model.
fn reask_message<T>(class: FailureClass, failure: &Failure<T>) -> String {
    match class {
        FailureClass::LowConfidence => match &failure.candidate {
            Some((_, _, confidence, threshold)) => format!(
                "Your answer's confidence was {confidence}, below the required {threshold}. Re-read the input carefully and answer again with one JSON object that follows the schema."
            ),
            None => "Re-read the input carefully and answer again with one JSON object that follows the schema.".to_owned(),
        },
        FailureClass::Refusal => "This is a routine data-processing request. Answer it with one JSON object that follows the schema.".to_owned(),
        _ => format!(
            "Your previous answer could not be accepted:\n{}\nReply again with only one JSON object that follows the schema and fixes every problem listed.",
            failure.validation
        ),
    }
}

/// Walks the chain for `class` and decides what to do next.
fn decide<T>(
    at: Position<'_>,
    class: FailureClass,
    failure: &Failure<T>,
    cursors: &mut [Cursor; 6],
) -> Decision {
    let Position {
        contract,
        attempt,
        deadline,
        harness,
        provider_name,
    } = at;
    let steps = contract.steps(class);
    let cursor = &mut cursors[class.index()];
    let now = Instant::now();
    let remaining = deadline.saturating_duration_since(now);
    let provider_error = failure.provider_error.as_ref();
    // Attempts cannot help when the deadline is spent; retries cannot help a permanent error or
    // an open breaker (no request was sent).
    let no_more_attempts = remaining.is_zero();
    let retry_pointless = provider_error.is_some_and(|e| !e.is_retryable());
    let reask_pointless = matches!(provider_error, Some(ProviderError::CircuitOpen(_)));
    while let Some(step) = steps.get(cursor.step) {
        let skip = |reason: &str| {
            debug!(task = contract.name, attempt, class = class.as_str(), step = %step, reason, "step skipped");
        };
        match *step {
            Action::Retry { times, backoff } => {
                if cursor.used >= times || no_more_attempts || retry_pointless {
                    if cursor.used < times {
                        skip(if no_more_attempts {
                            "deadline spent"
                        } else {
                            "error is not retryable"
                        });
                    }
                    cursor.step += 1;
                    cursor.used = 0;
                    continue;
                }
                let delay = harness.recovery().backoff(
                    &backoff,
                    cursor.used + 1,
                    provider_error.and_then(ProviderError::retry_after),
                );
                if delay >= remaining {
                    skip("backoff would pass the deadline");
                    cursor.step += 1;
                    cursor.used = 0;
                    continue;
                }
                if !harness.recovery().retry_allowed(provider_name) {
                    skip("retry budget spent");
                    cursor.step += 1;
                    cursor.used = 0;
                    continue;
                }
                cursor.used += 1;
                return Decision::Retry { delay };
            }
            Action::Reask { times } => {
                if cursor.used >= times || no_more_attempts || reask_pointless {
                    cursor.step += 1;
                    cursor.used = 0;
                    continue;
                }
                cursor.used += 1;
                return Decision::Reask;
            }
            Action::Fallback(target) => {
                cursor.step += 1;
                cursor.used = 0;
                if no_more_attempts {
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
        }
    }
    Decision::Fail
}
