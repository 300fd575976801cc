//! The audit record: what one finished call leaves behind, and how it is hashed.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::contract::{ActionKind, ContextPlan, FailureClass, TaskContract};
use crate::observe::CallEnd;
use crate::outcome::AttemptKind;
use crate::provider::{ChatRequest, Message, ResponseFormat, Role, Usage};

use super::canonical::{canonical_json, hash_hex, rfc3339, seal_bytes, sorted_opt, sorted_vec};

/// The `prev_hash` of the first record of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The version of the record layout, written as `v` in every record.
pub const RECORD_VERSION: u32 = 1;

/// How much of the prompt a record keeps: the messages sent and the task's inputs.
///
/// The model's raw outputs and the accepted value are always kept: they are what a reviewer
/// judges. Only [`MessagePolicy::Full`] records can be replayed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessagePolicy {
    /// The text of every message and input.
    #[default]
    Full,
    /// A SHA-256 of each message and input, and its length: proves what was sent without keeping it.
    Hashed,
    /// Only roles, input names and lengths.
    Redacted,
}

/// One message of the recorded request, as the [`MessagePolicy`] allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedMessage {
    /// The text ([`MessagePolicy::Full`] only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The text's length in bytes.
    pub len: usize,
    /// Who said it.
    pub role: Role,
    /// The SHA-256 of the text, in hex ([`MessagePolicy::Hashed`] only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The first attempt's request: the exact rendered messages and parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Maximum output tokens.
    pub max_tokens: Option<u32>,
    /// How the messages were recorded.
    pub message_policy: MessagePolicy,
    /// The conversation.
    pub messages: Vec<RecordedMessage>,
    /// The model asked for.
    pub model: String,
    /// The output shape asked for (`{"type": "json_schema", "name": ..., "schema": ...}`), as
    /// canonical JSON (serialized once per contract, not once per call).
    pub response_format: Box<RawValue>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
}

/// One input of the task, as the [`MessagePolicy`] allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedInput {
    /// Its length in bytes.
    pub len: usize,
    /// The argument's name.
    pub name: String,
    /// Its SHA-256 ([`MessagePolicy::Hashed`] only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The rendered value ([`MessagePolicy::Full`] only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedViolation {
    /// What is wrong.
    pub message: String,
    /// Where (`items[2].label`; empty for the whole output).
    pub path: String,
    /// Which rule.
    pub rule: String,
}

/// One provider attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedAttempt {
    /// The confidence the answer carried.
    pub confidence: Option<f64>,
    /// What failed, in words.
    pub error: Option<String>,
    /// The failure class, when the attempt failed.
    pub failure: Option<FailureClass>,
    /// SHA-256 of the exact request this attempt sent (empty in records written before
    /// attempts carried one).
    #[serde(default)]
    pub fingerprint: String,
    /// Why the model stopped.
    pub finish_reason: Option<String>,
    /// `first`, `retry`, `reask` or `fallback`.
    pub kind: String,
    /// How long it took, in milliseconds.
    pub latency_ms: f64,
    /// Model requested.
    pub model: String,
    /// 1-based number within the call.
    pub n: u32,
    /// Provider name.
    pub provider: String,
    /// The raw text the model returned.
    pub raw: Option<String>,
    /// Repairs the parser applied.
    #[serde(serialize_with = "sorted_vec")]
    pub repairs: Vec<Value>,
    /// Provider response id.
    pub response_id: Option<String>,
    /// Model that answered, as the provider reported it.
    pub response_model: Option<String>,
    /// When the attempt started (RFC 3339, UTC).
    pub started_at: String,
    /// Tokens billed.
    pub usage: Usage,
    /// Rules the answer broke.
    pub validation: Vec<RecordedViolation>,
    /// The SHA-256 of the exact bytes sent and of their stable prefix (absent when nothing was
    /// sent, for providers that send no bytes, and in records written before attempts had it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<crate::provider::WireDigest>,
}

/// One contract step the engine took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedAction {
    /// Which action.
    pub action: ActionKind,
    /// After which attempt.
    pub after_attempt: u32,
    /// For which failure.
    pub class: FailureClass,
    /// The backoff slept, the fallback model, or the reason for a terminal step.
    pub detail: String,
}

/// The context plan a task names ([`TaskContract::plan`]): which plan, at which version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedPlan {
    /// The plan's name.
    pub name: String,
    /// The plan's version.
    pub version: String,
}

impl RecordedPlan {
    fn of(plan: &ContextPlan) -> RecordedPlan {
        RecordedPlan {
            name: plan.name.to_owned(),
            version: plan.version.to_owned(),
        }
    }
}

/// How the call ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedOutcome {
    /// For an escalation or failure after low confidence: the last valid but unconfident answer,
    /// for the reviewer. Never an accepted value.
    #[serde(serialize_with = "sorted_opt")]
    pub candidate: Option<Value>,
    /// The failure class (default, escalated) or error kind (failed).
    pub class: Option<String>,
    /// Why the call did not end in an answer: the terminal step's reason.
    pub reason: Option<String>,
    /// `answer`, `default`, `escalated` or `failed`.
    pub status: String,
    /// The accepted value (answers only).
    #[serde(serialize_with = "sorted_opt")]
    pub value: Option<Value>,
}

/// Everything recorded about one call. One JSONL line or one SQLite row.
///
/// The fields of every record struct are declared in sorted order, and nested JSON values are
/// written with sorted keys, so serializing a record writes its canonical form directly (no
/// intermediate [`Value`]); a test holds this equal to [`canonical_json`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Every contract step taken.
    pub actions: Vec<RecordedAction>,
    /// Who the call was made for.
    pub actor: Option<String>,
    /// Every provider attempt.
    pub attempts: Vec<RecordedAttempt>,
    /// How a context plan built the prompt: sections, what was kept and cut and why, the
    /// counter, the budget, the hashes of the messages and of their stable prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The contract version hash.
    pub contract_version: String,
    /// Cost in US dollars, when prices are known.
    pub cost_usd: Option<f64>,
    /// When it ended.
    pub ended_at: String,
    /// The hash of the exact rendered context and parameters of the first attempt.
    pub fingerprint: String,
    /// SHA-256 over the canonical form of this record without `hash` (see [`canonical_json`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    /// The record id: the call id.
    pub id: String,
    /// The task's rendered inputs.
    pub inputs: Vec<RecordedInput>,
    /// Wall time of the whole call, in milliseconds.
    pub latency_ms: f64,
    /// The model that produced the last response, as the provider reported it.
    pub model_answered: Option<String>,
    /// The model the task asked for.
    pub model_requested: String,
    /// `module::path` of the task.
    pub module: String,
    /// How the call ended.
    pub outcome: RecordedOutcome,
    /// The context plan the task names, if it names one (left out otherwise, so records of
    /// tasks without one, and their hashes, are what they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<RecordedPlan>,
    /// The previous record's `hash` ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// The first attempt's request.
    pub request: RecordedRequest,
    /// What each declared context source gave, or why it did not and what its contract did
    /// (left out for tasks without sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<crate::outcome::SourceReport>,
    /// When the call started (RFC 3339, UTC).
    pub started_at: String,
    /// Task name.
    pub task: String,
    /// Tokens billed over all attempts.
    pub usage: Usage,
    /// The record layout version ([`RECORD_VERSION`]).
    pub v: u32,
}

impl AuditRecord {
    /// The record of a finished call, not yet chained (`prev_hash` and `hash` are empty).
    pub fn from_call_end(call: &CallEnd<'_>, policy: MessagePolicy) -> AuditRecord {
        let report = call.report;
        let attempts: Vec<RecordedAttempt> = report
            .attempts
            .iter()
            .map(|a| RecordedAttempt {
                n: a.n,
                kind: attempt_kind(a.kind).to_owned(),
                provider: a.provider.clone(),
                model: a.model.clone(),
                fingerprint: a.fingerprint.clone(),
                response_model: a.response_model.clone(),
                response_id: a.response_id.clone(),
                started_at: rfc3339(a.started_at),
                latency_ms: a.latency.as_micros() as f64 / 1000.0,
                usage: a.usage,
                finish_reason: a.finish_reason.as_ref().map(|f| f.as_str().to_owned()),
                raw: a.raw.clone(),
                failure: a.failure,
                error: a.error.clone(),
                validation: a
                    .validation
                    .iter()
                    .map(|e| RecordedViolation {
                        path: e.path.clone(),
                        rule: e.rule.to_owned(),
                        message: e.message.clone(),
                    })
                    .collect(),
                repairs: a
                    .repairs
                    .iter()
                    .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
                    .collect(),
                confidence: a.confidence,
                wire: a.wire.clone(),
            })
            .collect();
        let actions: Vec<RecordedAction> = report
            .actions
            .iter()
            .map(|a| RecordedAction {
                after_attempt: a.after_attempt,
                class: a.class,
                action: a.action,
                detail: a.detail.clone(),
            })
            .collect();
        let outcome = outcome(call, &attempts, &actions);
        let model_answered = attempts
            .iter()
            .rev()
            .find(|a| a.raw.is_some())
            .map(|a| a.response_model.clone().unwrap_or_else(|| a.model.clone()));
        AuditRecord {
            v: RECORD_VERSION,
            id: report.call_id.clone(),
            prev_hash: String::new(),
            started_at: rfc3339(report.started_at),
            ended_at: rfc3339(report.started_at + report.elapsed),
            task: call.contract.name.to_owned(),
            module: call.contract.module.to_owned(),
            contract_version: report.contract_version.to_owned(),
            model_requested: report.model_requested.clone(),
            model_answered,
            fingerprint: report.fingerprint.clone(),
            context: report.context.clone(),
            plan: call.contract.plan.map(RecordedPlan::of),
            request: RecordedRequest::new(call.contract, call.request, policy),
            sources: report.sources.clone(),
            inputs: call
                .inputs
                .iter()
                .map(|(name, text)| {
                    let (value, sha256) = keep(text, policy);
                    RecordedInput {
                        name: (*name).to_owned(),
                        value,
                        sha256,
                        len: text.len(),
                    }
                })
                .collect(),
            attempts,
            actions,
            outcome,
            usage: report.usage,
            cost_usd: report.cost_usd,
            latency_ms: report.elapsed.as_micros() as f64 / 1000.0,
            actor: call.actor.map(str::to_owned),
            hash: String::new(),
        }
    }

    /// Sets `prev_hash`, computes `hash`, and returns the record as one JSON line (no newline).
    pub fn seal(&mut self, prev_hash: &str) -> String {
        self.prev_hash.clear();
        self.prev_hash.push_str(prev_hash);
        self.hash = String::new();
        // Serializing a struct of strings, numbers and JSON values into memory cannot fail.
        let bytes = serde_json::to_vec(&*self).unwrap_or_default();
        let (hash, line) = seal_bytes(bytes);
        self.hash = hash;
        line
    }

    /// Whether `hash` matches the record's content.
    pub fn hash_is_valid(&self) -> bool {
        let mut copy = self.clone();
        copy.hash = String::new();
        let value = serde_json::to_value(&copy).unwrap_or(Value::Null);
        hash_hex(&canonical_json(&value)) == self.hash
    }

    /// The request's messages, when they were recorded in full.
    pub fn messages(&self) -> Option<Vec<Message>> {
        self.request
            .messages
            .iter()
            .map(|m| m.content.as_ref().map(|c| Message::new(m.role, c.clone())))
            .collect()
    }

    /// The exact first request, when its messages were recorded in full.
    pub fn to_request(&self) -> Option<ChatRequest> {
        let messages = self.messages()?;
        let r = &self.request;
        let format: Value = serde_json::from_str(r.response_format.get()).ok()?;
        let response_format = match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                let name = format
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let schema = format.get("schema").cloned().unwrap_or(Value::Null);
                let rebuilt = ResponseFormat::json_schema(name, schema);
                match format.get("instruction").and_then(Value::as_str) {
                    Some(text) => rebuilt.with_instruction(text),
                    None => rebuilt,
                }
            }
            _ => ResponseFormat::Text,
        };
        Some(ChatRequest {
            model: r.model.clone(),
            messages,
            response_format,
            temperature: r.temperature,
            max_tokens: r.max_tokens,
            seed: r.seed,
            ..Default::default()
        })
    }
}

impl PartialEq for RecordedRequest {
    fn eq(&self, other: &Self) -> bool {
        self.max_tokens == other.max_tokens
            && self.message_policy == other.message_policy
            && self.messages == other.messages
            && self.model == other.model
            && self.response_format.get() == other.response_format.get()
            && self.seed == other.seed
            && self.temperature == other.temperature
    }
}

impl RecordedRequest {
    fn new(contract: &'static TaskContract, request: &ChatRequest, policy: MessagePolicy) -> Self {
        RecordedRequest {
            model: request.model.clone(),
            message_policy: policy,
            messages: request
                .messages
                .iter()
                .map(|m| {
                    let (content, sha256) = keep(&m.content, policy);
                    RecordedMessage {
                        role: m.role,
                        content,
                        sha256,
                        len: m.content.len(),
                    }
                })
                .collect(),
            response_format: response_format(contract, &request.response_format),
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            seed: request.seed,
        }
    }
}

/// The text and/or hash a policy keeps of `text`.
fn keep(text: &str, policy: MessagePolicy) -> (Option<String>, Option<String>) {
    match policy {
        MessagePolicy::Full => (Some(text.to_owned()), None),
        MessagePolicy::Hashed => (None, Some(hash_hex(text.as_bytes()))),
        MessagePolicy::Redacted => (None, None),
    }
}

/// The outcome section: status, reason and candidate as the engine reports them on `CallEnd`.
fn outcome(
    call: &CallEnd<'_>,
    attempts: &[RecordedAttempt],
    actions: &[RecordedAction],
) -> RecordedOutcome {
    let (name, class) = call.status.parts();
    let (name, class) = (name.to_owned(), class.map(str::to_owned));
    if name == "answer" {
        return RecordedOutcome {
            status: name,
            class,
            value: call.value.cloned(),
            reason: None,
            candidate: None,
        };
    }
    let reason = call.reason.map(str::to_owned).or_else(|| {
        actions
            .last()
            .filter(|a| a.action.is_terminal())
            .map(|a| a.detail.clone())
            .or_else(|| attempts.last().and_then(|a| a.error.clone()))
    });
    // The engine hands the candidate it accepted (valid, below the threshold) on `CallEnd`.
    let candidate = call.candidate.cloned();
    RecordedOutcome {
        status: name,
        class,
        value: call.value.cloned(),
        reason,
        candidate,
    }
}

/// The first JSON value in a model's text: the whole text, or the first `{`/`[` onwards.
pub(crate) fn extract_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str(trimmed) {
        return Some(v);
    }
    let start = trimmed.find(['{', '['])?;
    serde_json::Deserializer::from_str(&trimmed[start..])
        .into_iter::<Value>()
        .next()?
        .ok()
}

pub(crate) fn attempt_kind(kind: AttemptKind) -> &'static str {
    match kind {
        AttemptKind::First => "first",
        AttemptKind::Retry => "retry",
        AttemptKind::Reask => "reask",
        AttemptKind::Fallback => "fallback",
    }
}

/// A contract's response format as canonical JSON, serialized once per contract: the schema is
/// the largest part of a record and the same for every call of a task.
fn response_format(contract: &'static TaskContract, format: &ResponseFormat) -> Box<RawValue> {
    type Cache = HashMap<usize, (ResponseFormat, Box<RawValue>)>;
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let key = std::ptr::from_ref(contract) as usize;
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some((cached, raw)) = cache.get(&key)
        && cached == format
    {
        return raw.clone();
    }
    let value = serde_json::to_value(format).unwrap_or(Value::Null);
    let text = String::from_utf8(canonical_json(&value)).unwrap_or_else(|_| "null".into());
    let raw = RawValue::from_string(text).unwrap_or_else(|_| null_raw());
    // One entry per contract (they are `static`s), so the cache stays small.
    cache.insert(key, (format.clone(), raw.clone()));
    raw
}

fn null_raw() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!("`null` is JSON"))
}
