//! The verdict on one attempt: accepted, or failed with a class and what the chain may need
//! (the validation errors for a reask, the provider error for a retry, the candidate for a
//! reviewer). The output checks themselves are `output::check_value`.

use std::time::{Duration, SystemTime};

use tracing::debug;

use super::Call;
use super::attempt::Exchange;
use crate::contract::{FailureClass, TaskContract};
use crate::observe::record_attempt;
use crate::outcome::{Attempt, AttemptKind};
use crate::output::parse::{ParseLimits, RepairSet};
use crate::output::{Checked, FieldPath, LlmOutput, ValidationErrors, check_value};
use crate::provider::{ChatResponse, FinishReason, ProviderError};

/// What one attempt came to.
pub(crate) enum Verdict<T> {
    /// A valid, confident answer.
    Accepted {
        value: T,
        json: serde_json::Value,
        repaired: bool,
    },
    /// A failure the chain for its class decides on.
    Failed(AttemptFailure<T>),
}

/// A failed attempt, with what the chain may need.
pub(crate) struct AttemptFailure<T> {
    pub(crate) class: FailureClass,
    /// What failed, in words (no secrets).
    pub(crate) message: String,
    pub(crate) validation: ValidationErrors,
    pub(crate) provider_error: Option<ProviderError>,
    /// A valid value whose confidence was too low.
    pub(crate) candidate: Option<Candidate<T>>,
    /// The model's text, when it answered.
    pub(crate) raw: Option<String>,
}

/// A valid answer that missed the confidence threshold.
pub(crate) struct Candidate<T> {
    pub(crate) value: T,
    pub(crate) json: serde_json::Value,
    pub(crate) confidence: f64,
    pub(crate) threshold: f64,
}

impl<T> AttemptFailure<T> {
    fn new(class: FailureClass, message: String) -> Self {
        AttemptFailure {
            class,
            message,
            validation: ValidationErrors::new(),
            provider_error: None,
            candidate: None,
            raw: None,
        }
    }
}

impl<T> Verdict<T> {
    /// The verdict when no attempt could be made: the call's deadline is spent.
    pub(crate) fn deadline_spent(contract: &TaskContract) -> Self {
        let deadline = contract.effective_deadline();
        Verdict::Failed(AttemptFailure {
            provider_error: Some(ProviderError::Timeout(deadline)),
            ..AttemptFailure::new(
                FailureClass::Timeout,
                format!("the call's deadline of {deadline:?} is spent"),
            )
        })
    }
}

impl<T: LlmOutput> Call<'_, T> {
    /// Judges an exchange, records it as the call's next attempt (report, span, provenance).
    pub(crate) fn judge(&mut self, exchange: Exchange) -> Verdict<T> {
        let threshold = self.frame.contract.confidence_threshold();
        // The harness's denied repairs plus the task's own.
        let limits = self
            .frame
            .harness
            .parse_limits()
            .denying(RepairSet::of(self.frame.contract.denied_repairs));
        let (verdict, attempt) = judge::<T>(exchange.result, threshold, &limits);
        let n = self.frame.report.attempts.len() as u32 + 1;
        let attempt = Attempt {
            n,
            kind: self.kind,
            provider: self.route.provider_name.clone(),
            model: self.route.model.clone(),
            fingerprint: self.fingerprint.clone(),
            started_at: exchange.started_at,
            latency: exchange.latency,
            wire: exchange.wire,
            ..attempt
        };
        record_attempt(&exchange.span, &attempt);
        exchange.span.in_scope(|| {
            debug!(failure = ?attempt.failure, latency_ms = i64::try_from(attempt.latency.as_millis()).unwrap_or(i64::MAX), "attempt finished")
        });
        let provenance = &mut self.frame.provenance;
        provenance.attempts = n;
        match self.kind {
            AttemptKind::Retry => provenance.retries += 1,
            AttemptKind::Reask => provenance.reasks += 1,
            AttemptKind::Fallback => provenance.fallback = true,
            AttemptKind::First => {}
        }
        self.frame.report.usage += attempt.usage;
        self.frame.report.attempts.push(attempt);
        verdict
    }
}

/// Turns one provider result into a verdict and the attempt's record (identity fields, timing
/// and the fingerprint are the caller's to fill in).
pub(crate) fn judge<T: LlmOutput>(
    result: Result<ChatResponse, ProviderError>,
    threshold: Option<f64>,
    limits: &ParseLimits,
) -> (Verdict<T>, Attempt) {
    let mut attempt = blank_attempt();
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            let (class, message) = (e.class(), e.to_string());
            let failure = AttemptFailure {
                provider_error: Some(e),
                ..AttemptFailure::new(class, message)
            };
            return failed(attempt, failure);
        }
    };
    attempt.response_model = response.model.clone();
    attempt.response_id = response.id.clone();
    attempt.usage = response.usage;
    attempt.finish_reason = response.finish_reason.clone();
    attempt.raw = Some(response.content.clone());
    if let Some(reason) = refusal(&response) {
        let failure = AttemptFailure {
            raw: Some(response.content),
            ..AttemptFailure::new(
                FailureClass::Refusal,
                format!("the model refused: {reason}"),
            )
        };
        return failed(attempt, failure);
    }
    let checked = check_value::<T>(&response.content, threshold, limits);
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
            let verdict = Verdict::Accepted {
                value,
                json,
                repaired,
            };
            (verdict, attempt)
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
            let message = format!("confidence {confidence} is below the threshold {threshold}");
            let failure = AttemptFailure {
                candidate: Some(Candidate {
                    value,
                    json,
                    confidence,
                    threshold,
                }),
                raw: Some(response.content),
                ..AttemptFailure::new(FailureClass::LowConfidence, message)
            };
            failed(attempt, failure)
        }
        other => invalid(attempt, other, response.content, truncated),
    }
}

/// An answer that is not usable: invalid output, or a refusal in prose.
fn invalid<T>(
    mut attempt: Attempt,
    checked: Checked<T>,
    raw: String,
    truncated: bool,
) -> (Verdict<T>, Attempt) {
    let (mut errors, repairs, parse_failed) = match checked {
        Checked::Invalid {
            errors,
            repairs,
            parse_error,
        } => (errors, repairs, parse_error.is_some()),
        Checked::Valid { repairs, .. } | Checked::LowConfidence { repairs, .. } => {
            (ValidationErrors::new(), repairs, false)
        }
    };
    if truncated {
        errors.push(
            &FieldPath::root(),
            "length",
            "the answer was cut off by the token limit (finish_reason: length); give a shorter answer",
        );
    }
    attempt.repairs = repairs;
    let failure = if parse_failed && looks_like_refusal(&raw) {
        AttemptFailure::new(
            FailureClass::Refusal,
            "the model declined to answer".to_owned(),
        )
    } else {
        AttemptFailure::new(
            FailureClass::InvalidOutput,
            format!("the output is not valid:\n{errors}"),
        )
    };
    attempt.validation = errors.clone();
    failed(
        attempt,
        AttemptFailure {
            validation: errors,
            raw: Some(raw),
            ..failure
        },
    )
}

/// The verdict for a failure, with the attempt marked failed.
fn failed<T>(mut attempt: Attempt, failure: AttemptFailure<T>) -> (Verdict<T>, Attempt) {
    attempt.failure = Some(failure.class);
    attempt.error = Some(failure.message.clone());
    (Verdict::Failed(failure), attempt)
}

/// The provider's own refusal, or its content filter.
fn refusal(response: &ChatResponse) -> Option<String> {
    response.refusal.clone().or_else(|| {
        (response.finish_reason == Some(FinishReason::ContentFilter))
            .then(|| "the provider's content filter stopped the answer".to_owned())
    })
}

fn blank_attempt() -> Attempt {
    Attempt {
        n: 0,
        kind: AttemptKind::First,
        provider: String::new(),
        model: String::new(),
        fingerprint: String::new(),
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
        wire: None,
    }
}

/// Refusal phrasing, checked only when the answer holds no JSON at all.
pub(crate) fn looks_like_refusal(text: &str) -> bool {
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
