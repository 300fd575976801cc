//! The record as the contract: re-running a recorded call with only what the record holds, for
//! programs (such as the `harness` binary) that do not link the task's code.
//!
//! Each answer is judged as far as the record allows: the lenient parser and the JSON schema the
//! record carries (with the engine's refusal and truncation checks). The task's own rules and
//! confidence threshold live in its code; for an answer identical to the recorded one their
//! verdict is taken from the record (and said so). After a failure, the next step is the one the
//! contract took then for the same failure of that class, in order; a failure the record holds
//! no step for ends the run as `unknown`.

use serde_json::Value;

use super::rebuild::{Previous, confidence_pair, next_request, recorded_errors};
use super::{ReproduceError, Run, RunAttempt};
use crate::audit::record::{AuditRecord, RecordedAttempt};
use crate::audit::replay_provider::ReplayProvider;
use crate::contract::{ActionKind, FailureClass};
use crate::engine::{Harness, looks_like_refusal};
use crate::output::parse::{self, ParseLimits};
use crate::output::{FieldPath, SchemaValidator, ValidationErrors};
use crate::provider::{
    ChatRequest, ChatResponse, FinishReason, Provider, ProviderError, ResponseFormat,
};

/// Where answers come from.
pub(super) enum Answers<'a> {
    /// The recorded responses, matched by request (a [`ReplayProvider`]).
    Recorded(ReplayProvider),
    /// The provider `harness` routes the request's model to.
    Live(&'a Harness),
}

impl Answers<'_> {
    async fn answer(
        &self,
        request: &ChatRequest,
        provider: Option<&str>,
    ) -> Result<ChatResponse, ProviderError> {
        match self {
            Answers::Recorded(replay) => replay.chat(request).await,
            Answers::Live(harness) => {
                let named = provider.filter(|p| harness.provider(p).is_some());
                let (_, provider) = harness
                    .route(named, &request.model)
                    .map_err(ProviderError::Config)?;
                provider.chat(request).await
            }
        }
    }
}

/// One answer, judged.
struct Judged {
    failure: Option<FailureClass>,
    value: Option<Value>,
    errors: ValidationErrors,
    raw: Option<String>,
    confidence: Option<(f64, f64)>,
}

impl Judged {
    fn failed(class: FailureClass, raw: Option<String>, errors: ValidationErrors) -> Judged {
        Judged {
            failure: Some(class),
            value: None,
            errors,
            raw,
            confidence: None,
        }
    }
}

/// The schema a record's request asked for.
pub(super) fn schema_of(
    record: &AuditRecord,
    first: &ChatRequest,
) -> Result<SchemaValidator, ReproduceError> {
    match &first.response_format {
        ResponseFormat::JsonSchema { schema, .. } => {
            let validator = SchemaValidator::new(serde_json::Value::clone(schema));
            match validator.compile_error() {
                Some(e) => Err(super::rebuild::malformed(
                    record,
                    format!("its output schema cannot be compiled: {e}"),
                )),
                None => Ok(validator),
            }
        }
        ResponseFormat::Text => Err(super::rebuild::malformed(
            record,
            "its request asked for no JSON schema".into(),
        )),
    }
}

/// Re-runs `record` from its first request, steps taken as the record shows them.
pub(super) async fn drive(
    record: &AuditRecord,
    first: ChatRequest,
    answers: &Answers<'_>,
    notes: &mut Vec<String>,
) -> Result<Run, ReproduceError> {
    let schema = schema_of(record, &first)?;
    let limits = ParseLimits::default();
    let mut request = first.clone();
    let mut kind = "first";
    let mut used = [0usize; FailureClass::ALL.len()];
    let mut run = Run::default();
    loop {
        let n = run.attempts.len() as u32 + 1;
        let recorded = record.attempts.get(run.attempts.len());
        let result = answers
            .answer(&request, recorded.map(|a| a.provider.as_str()))
            .await;
        let judged = judge(record, result, &schema, &limits, recorded, n, notes)?;
        run.attempts.push(RunAttempt {
            n,
            kind: kind.to_owned(),
            model: request.model.clone(),
            fingerprint: request.fingerprint(),
            verdict: judged
                .failure
                .map_or("accepted", FailureClass::as_str)
                .to_owned(),
        });
        let Some(class) = judged.failure else {
            return Ok(run.ended("answer", None, judged.value));
        };
        let slot = &mut used[FailureClass::ALL
            .iter()
            .position(|c| *c == class)
            .unwrap_or(0)];
        let action = record
            .actions
            .iter()
            .filter(|a| a.class == class)
            .nth(*slot);
        *slot += 1;
        let Some(action) = action else {
            notes.push(format!(
                "attempt {n} failed ({class}) and the record holds no step for failure {} of that class: what the contract does next is in the task's code (reproduce from a program that links it: `audit::reproduce_task`)",
                *slot,
                class = class.as_str()
            ));
            return Ok(run.ended("unknown", Some(class.as_str().to_owned()), None));
        };
        let previous = Previous {
            class,
            raw: judged.raw.as_deref(),
            errors: &judged.errors,
            confidence: judged.confidence,
        };
        kind = match action.action {
            ActionKind::Retry => "retry",
            ActionKind::Reask => "reask",
            ActionKind::Fallback => "fallback",
            ActionKind::Escalate => {
                return Ok(run.ended("escalated", Some(class.as_str().into()), None));
            }
            ActionKind::Fail => return Ok(run.ended("failed", Some(class.as_str().into()), None)),
            ActionKind::Default => return Ok(default(record, run, class, notes)),
            // A source's step: never recorded against an attempt's failure.
            ActionKind::Proceed => {
                return Ok(run.ended("unknown", Some(class.as_str().into()), None));
            }
        };
        request = next_request(&first, &request, kind, &action.detail, Some(&previous))
            .unwrap_or_else(|| request.clone());
    }
}

/// A run that ended in the task's default: the value is the task's code, so the recorded one.
fn default(record: &AuditRecord, run: Run, class: FailureClass, notes: &mut Vec<String>) -> Run {
    let value = (record.outcome.status == "default")
        .then(|| record.outcome.value.clone())
        .flatten();
    notes.push(
        "the call ended in the task's default, which is computed by the task's code: the value shown is the recorded one".into(),
    );
    run.ended("default", Some(class.as_str().to_owned()), value)
}

/// Judges one answer as far as the record allows, reconciled with the recorded verdict when the
/// answer is the recorded one.
fn judge(
    record: &AuditRecord,
    result: Result<ChatResponse, ProviderError>,
    schema: &SchemaValidator,
    limits: &ParseLimits,
    recorded: Option<&RecordedAttempt>,
    n: u32,
    notes: &mut Vec<String>,
) -> Result<Judged, ReproduceError> {
    let mut judged = check(result, schema, limits);
    let Some(rec) = recorded.filter(|r| r.raw.is_some() && r.raw == judged.raw) else {
        if judged.failure.is_none() {
            notes.push(format!(
                "attempt {n}: a new answer, checked against the recorded schema only (the task's rules and confidence threshold are in its code)"
            ));
        }
        return Ok(judged);
    };
    let by_code = rec.failure == Some(FailureClass::LowConfidence)
        || (rec.failure == Some(FailureClass::InvalidOutput)
            && rec
                .validation
                .iter()
                .all(|v| !matches!(v.rule.as_str(), "json" | "schema" | "length")));
    if judged.failure == rec.failure && rec.failure.is_some()
        || (judged.failure.is_none() && by_code)
    {
        if judged.failure.is_none() {
            notes.push(format!(
                "attempt {n}: the answer fits the schema; the record says it failed ({}), a check in the task's code: verdict taken from the record",
                rec.failure.map_or("", FailureClass::as_str)
            ));
        }
        judged.failure = rec.failure;
        judged.errors = recorded_errors(record, rec)?;
        judged.confidence = rec.error.as_deref().and_then(confidence_pair);
        judged.value = None;
    }
    Ok(judged)
}

/// The data-dependent checks of the engine: provider errors, refusals, the lenient parser, the
/// schema and truncation.
fn check(
    result: Result<ChatResponse, ProviderError>,
    schema: &SchemaValidator,
    limits: &ParseLimits,
) -> Judged {
    let response = match result {
        Ok(r) => r,
        Err(e) => return Judged::failed(e.class(), None, ValidationErrors::new()),
    };
    let raw = Some(response.content.clone());
    if response.refusal.is_some() || response.finish_reason == Some(FinishReason::ContentFilter) {
        return Judged::failed(FailureClass::Refusal, raw, ValidationErrors::new());
    }
    let mut errors = ValidationErrors::new();
    let parsed = match parse::parse(&response.content, schema, limits) {
        Ok(p) => p,
        Err(_) if looks_like_refusal(&response.content) => {
            return Judged::failed(FailureClass::Refusal, raw, errors);
        }
        Err(e) => {
            errors.push(&FieldPath::root(), "json", e.to_string());
            return Judged::failed(FailureClass::InvalidOutput, raw, errors);
        }
    };
    errors.0.extend(schema.errors(&parsed.value));
    if response.finish_reason == Some(FinishReason::Length) {
        errors.push(
            &FieldPath::root(),
            "length",
            "the answer was cut off by the token limit (finish_reason: length); give a shorter answer",
        );
    }
    if !errors.is_empty() {
        return Judged::failed(FailureClass::InvalidOutput, raw, errors);
    }
    Judged {
        failure: None,
        value: Some(parsed.value),
        errors,
        raw,
        confidence: None,
    }
}
