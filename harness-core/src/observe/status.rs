//! The descriptions that go with an error status on the spans: short, and made only of what
//! harness itself names (failure classes, error kinds, HTTP statuses, rule names, counts and
//! durations). Never the provider's message, the model's answer or a header: those can hold the
//! prompt, personal data or a key, and a backend's error column is shown to everyone.

use crate::contract::FailureClass;
use crate::outcome::Attempt;
use crate::provider::ProviderError;

use super::{CallEnd, EndStatus};

/// The description of a failed provider exchange: `provider_error: HTTP 503 Service
/// Unavailable`, `timeout: no answer within 30s`, `rate_limited: HTTP 429, retry after 2s`.
pub fn provider_error(error: &ProviderError) -> String {
    let class = error.class().as_str();
    let detail = match error {
        ProviderError::Timeout(limit) => format!("no answer within {limit:?}"),
        ProviderError::RateLimited {
            status,
            retry_after,
        } => match retry_after {
            Some(after) => format!("{}, retry after {after:?}", http_status(*status)),
            None => http_status(*status),
        },
        ProviderError::Status { status, .. } => http_status(*status),
        ProviderError::Connection(_) => "the connection failed".to_owned(),
        ProviderError::InvalidResponse(_) => "the response could not be read".to_owned(),
        ProviderError::Shed { limit, .. } => {
            format!("shed by the harness's {limit} limit, not sent")
        }
        ProviderError::CircuitOpen(_) => "the circuit breaker is open, not sent".to_owned(),
        ProviderError::Config(_) => "the provider is misconfigured, not sent".to_owned(),
    };
    format!("{class}: {detail}")
}

fn http_status(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("HTTP {status} {reason}"),
        None => format!("HTTP {status}"),
    }
}

/// The description of an attempt whose answer failed: `invalid_output: 2 validation errors
/// (one_of, required)`, `refusal: the model refused`, `low_confidence: confidence 0.42`. A
/// provider error is described by [`provider_error`] instead.
pub fn attempt(attempt: &Attempt) -> String {
    let Some(class) = attempt.failure else {
        return String::new();
    };
    let detail = match class {
        FailureClass::InvalidOutput => validation(attempt),
        FailureClass::Refusal => "the model refused".to_owned(),
        FailureClass::LowConfidence => match attempt.confidence {
            Some(c) => format!("confidence {c:.2} below the threshold"),
            None => "confidence below the threshold".to_owned(),
        },
        FailureClass::Timeout | FailureClass::RateLimited | FailureClass::ProviderError => {
            "the provider failed".to_owned()
        }
        FailureClass::ContextUnavailable => "a context source was unavailable".to_owned(),
    };
    format!("{}: {detail}", class.as_str())
}

/// Counts and rule names only: a path can hold a map key the model wrote.
fn validation(attempt: &Attempt) -> String {
    let errors = &attempt.validation;
    if errors.is_empty() {
        return "the answer is not valid JSON for the schema".to_owned();
    }
    let mut rules: Vec<&str> = errors.iter().map(|e| e.rule).collect();
    rules.dedup();
    rules.truncate(4);
    let noun = if errors.len() == 1 { "error" } else { "errors" };
    format!("{} validation {noun} ({})", errors.len(), rules.join(", "))
}

/// The description of a failed call on its task span: `invalid_output after 3 attempts`,
/// `timeout after 2 attempts (the deadline was spent)`, `config: the call could not start`.
pub fn call(end: &CallEnd<'_>) -> String {
    let EndStatus::Failed(kind) = end.status else {
        return String::new();
    };
    let attempts = end.report.attempts.len();
    let kind = kind.as_str();
    match attempts {
        0 => format!("{kind}: the call ended before any attempt"),
        1 => format!("{kind} after 1 attempt"),
        n => format!("{kind} after {n} attempts"),
    }
}
