//! Rebuilding every attempt's exact request from a record, the way the engine built it then: the
//! first request as recorded; a retry sends the previous request again; a reask sends the first
//! messages, the previous answer (echoed, bounded) and what was wrong with it; a fallback sends
//! the first messages to the fallback model.

use std::sync::Mutex;

use serde::Serialize;

use super::ReproduceError;
use crate::audit::record::{AuditRecord, MessagePolicy, RecordedAttempt, RecordedViolation};
use crate::context::{echo, reask_message};
use crate::contract::FailureClass;
use crate::output::ValidationErrors;
use crate::provider::{ChatRequest, Message};

/// One attempt's request, rebuilt from the record, against the fingerprint the record holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RequestCheck {
    /// The attempt's number (1-based).
    pub n: u32,
    /// `first`, `retry`, `reask` or `fallback`.
    pub kind: String,
    /// The fingerprint recorded for the attempt (empty in records written before attempts
    /// carried one).
    pub recorded: String,
    /// The fingerprint of the request rebuilt from the record.
    pub rebuilt: String,
}

impl RequestCheck {
    /// Whether the rebuilt request is byte for byte the one the attempt sent.
    pub fn matches(&self) -> bool {
        !self.recorded.is_empty() && self.recorded == self.rebuilt
    }
}

/// What the next request needs to know about the attempt before it.
pub(super) struct Previous<'a> {
    pub(super) class: FailureClass,
    pub(super) raw: Option<&'a str>,
    pub(super) errors: &'a ValidationErrors,
    pub(super) confidence: Option<(f64, f64)>,
}

/// The request the engine sends for an attempt of `kind`, given the first request, the previous
/// one and what went wrong with the previous answer.
pub(super) fn next_request(
    first: &ChatRequest,
    previous: &ChatRequest,
    kind: &str,
    model: &str,
    failed: Option<&Previous<'_>>,
) -> Option<ChatRequest> {
    match kind {
        "first" => Some(first.clone()),
        "retry" => Some(previous.clone()),
        "fallback" => Some(ChatRequest {
            model: model.to_owned(),
            ..first.clone()
        }),
        "reask" => {
            let failed = failed?;
            let mut messages = first.messages.clone();
            if let Some(raw) = failed.raw {
                messages.push(Message::assistant(echo(raw)));
            }
            messages.push(Message::user(reask_message(
                failed.class,
                failed.errors,
                failed.confidence,
            )));
            Some(ChatRequest {
                messages,
                ..previous.clone()
            })
        }
        _ => None,
    }
}

/// The record's first request, or why it cannot be rebuilt.
pub(super) fn first_request(record: &AuditRecord) -> Result<ChatRequest, ReproduceError> {
    if record.request.message_policy != MessagePolicy::Full {
        return Err(ReproduceError::NotRecordedInFull {
            id: record.id.clone(),
            policy: record.request.message_policy,
        });
    }
    record
        .to_request()
        .ok_or_else(|| malformed(record, "its response format is not readable JSON".into()))
}

/// Every attempt's request rebuilt from `record`, with its fingerprint check.
///
/// Fails when the messages were not recorded in full (a [`MessagePolicy`] other than `Full`:
/// the record proves what was sent without keeping it, so nothing can be sent again) or when the
/// record does not hold what a rebuild needs (an unknown attempt kind, a reask after an attempt
/// that did not fail).
pub fn rebuild_requests(
    record: &AuditRecord,
) -> Result<Vec<(ChatRequest, RequestCheck)>, ReproduceError> {
    let first = first_request(record)?;
    let mut out: Vec<(ChatRequest, RequestCheck)> = Vec::with_capacity(record.attempts.len());
    for (i, attempt) in record.attempts.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| &record.attempts[j]);
        let errors = match before {
            Some(b) => recorded_errors(record, b)?,
            None => ValidationErrors::new(),
        };
        let failed = before.and_then(|b| previous(b, &errors));
        let previous_request = out.last().map_or(&first, |(r, _)| r);
        let request = next_request(
            &first,
            previous_request,
            &attempt.kind,
            &attempt.model,
            failed.as_ref(),
        )
        .ok_or_else(|| {
            malformed(
                record,
                format!(
                    "attempt {} is a `{}`, which cannot follow attempt {}",
                    attempt.n,
                    attempt.kind,
                    before.map_or(0, |b| b.n)
                ),
            )
        })?;
        let check = RequestCheck {
            n: attempt.n,
            kind: attempt.kind.clone(),
            recorded: attempt.fingerprint.clone(),
            rebuilt: request.fingerprint(),
        };
        out.push((request, check));
    }
    Ok(out)
}

/// The previous attempt's failure as the next request needs it.
pub(super) fn previous<'a>(
    attempt: &'a RecordedAttempt,
    errors: &'a ValidationErrors,
) -> Option<Previous<'a>> {
    Some(Previous {
        class: attempt.failure?,
        raw: attempt.raw.as_deref(),
        errors,
        confidence: attempt.error.as_deref().and_then(confidence_pair),
    })
}

/// `(confidence, threshold)` from the engine's wording of a low-confidence failure.
pub(super) fn confidence_pair(message: &str) -> Option<(f64, f64)> {
    let rest = message.strip_prefix("confidence ")?;
    let (c, t) = rest.split_once(" is below the threshold ")?;
    Some((c.parse().ok()?, t.parse().ok()?))
}

/// The validation errors an attempt recorded, as the reask worded them.
pub(super) fn recorded_errors(
    record: &AuditRecord,
    attempt: &RecordedAttempt,
) -> Result<ValidationErrors, ReproduceError> {
    let mut errors = ValidationErrors::new();
    for RecordedViolation {
        message,
        path,
        rule,
    } in &attempt.validation
    {
        let rule = intern(rule).ok_or_else(|| {
            malformed(
                record,
                format!("attempt {} names too many distinct rules", attempt.n),
            )
        })?;
        errors.0.push(crate::output::ValidationError {
            path: path.clone(),
            rule,
            message: message.clone(),
        });
    }
    Ok(errors)
}

/// The engine's rule names, and those of records read since: `ValidationError::rule` is a
/// `&'static str`. Bounded, so a hostile file cannot grow it without end.
fn intern(rule: &str) -> Option<&'static str> {
    const KNOWN: [&str; 10] = [
        "schema",
        "json",
        "range",
        "length",
        "pattern",
        "one_of",
        "custom",
        "required",
        "type",
        "confidence",
    ];
    const MAX_INTERNED: usize = 256;
    static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    if let Some(k) = KNOWN.iter().find(|k| **k == rule) {
        return Some(k);
    }
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = seen.iter().find(|s| **s == rule) {
        return Some(s);
    }
    if seen.len() >= MAX_INTERNED {
        return None;
    }
    // Leaked on purpose: at most MAX_INTERNED short names per process.
    let s: &'static str = Box::leak(rule.to_owned().into_boxed_str());
    seen.push(s);
    Some(s)
}

pub(super) fn malformed(record: &AuditRecord, reason: String) -> ReproduceError {
    ReproduceError::Malformed {
        id: record.id.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_low_confidence_wording_reads_back() {
        let message = format!("confidence {} is below the threshold {}", 0.1 + 0.2, 0.7);
        assert_eq!(confidence_pair(&message), Some((0.1 + 0.2, 0.7)));
        assert_eq!(confidence_pair("the output is not valid"), None);
    }

    #[test]
    fn rule_names_are_interned_once() {
        let a = intern("my_rule").unwrap();
        let b = intern("my_rule").unwrap();
        assert!(std::ptr::eq(a, b));
        assert_eq!(intern("schema"), Some("schema"));
    }
}
