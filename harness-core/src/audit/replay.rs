//! Replay: send a recorded call's exact first request again and diff the answers.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::record::{AuditRecord, extract_json};
use crate::engine::Harness;
use crate::provider::{ChatRequest, ChatResponse, Provider, ProviderError};

/// Why a record could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The record's messages were hashed or redacted ([`MessagePolicy`](super::MessagePolicy)).
    #[error("record {0} cannot be replayed: its messages were not recorded in full")]
    NotRecordedInFull(String),
    /// No provider is registered for the recorded model.
    #[error("record {id}: {message}")]
    NoProvider {
        /// The record.
        id: String,
        /// Why.
        message: String,
    },
    /// The provider failed.
    #[error("the provider failed: {0}")]
    Provider(#[from] ProviderError),
}

/// One difference between two JSON values.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Difference {
    /// The value at `path` changed.
    Changed {
        /// Where (`items[2].label`; empty for the root).
        path: String,
        /// Before.
        old: Value,
        /// After.
        new: Value,
    },
    /// `path` exists only in the new value.
    Added {
        /// Where.
        path: String,
        /// The new value.
        new: Value,
    },
    /// `path` exists only in the old value.
    Removed {
        /// Where.
        path: String,
        /// The old value.
        old: Value,
    },
}

impl Difference {
    /// Where the difference is.
    pub fn path(&self) -> &str {
        match self {
            Difference::Changed { path, .. }
            | Difference::Added { path, .. }
            | Difference::Removed { path, .. } => path,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = |p: &str| {
            if p.is_empty() {
                "(root)".to_owned()
            } else {
                p.to_owned()
            }
        };
        match self {
            Difference::Changed { path, old, new } => write!(f, "~ {}: {old} -> {new}", p(path)),
            Difference::Added { path, new } => write!(f, "+ {}: {new}", p(path)),
            Difference::Removed { path, old } => write!(f, "- {}: {old}", p(path)),
        }
    }
}

/// What a replay found.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayResult {
    /// The record replayed.
    pub id: String,
    /// The request sent (the record's first request, rebuilt).
    pub request: ChatRequest,
    /// Whether the rebuilt request hashes to the record's fingerprint, i.e. it is byte for byte
    /// the request the engine sent then.
    pub request_matches: bool,
    /// What the first attempt returned then.
    pub recorded_raw: Option<String>,
    /// The JSON in it (or, when the first attempt got no answer, the accepted value).
    pub recorded: Option<Value>,
    /// What the provider returned now.
    pub response: ChatResponse,
    /// The JSON in it.
    pub replayed: Option<Value>,
    /// `recorded` → `replayed`, by path.
    pub diff: Vec<Difference>,
}

impl ReplayResult {
    /// Whether the new answer carries the same JSON as the recorded one.
    pub fn is_same(&self) -> bool {
        self.diff.is_empty() && self.recorded.is_some() == self.replayed.is_some()
    }
}

impl fmt::Display for ReplayResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "record {} — request {}",
            self.id,
            if self.request_matches {
                "matches the recorded fingerprint"
            } else {
                "DIFFERS from the recorded fingerprint"
            }
        )?;
        match (&self.recorded, &self.replayed) {
            (_, None) => write!(
                f,
                "the new answer holds no JSON: {:?}",
                self.response.content
            ),
            (None, Some(_)) => write!(f, "the recorded answer held no JSON; the new one does"),
            _ if self.diff.is_empty() => write!(f, "same output"),
            _ => {
                write!(f, "{} difference(s):", self.diff.len())?;
                for d in &self.diff {
                    write!(f, "\n  {d}")?;
                }
                Ok(())
            }
        }
    }
}

/// Sends `record`'s exact first request (same messages, model, parameters and seed) to
/// `provider` and diffs the answer against the one recorded for that request.
pub async fn replay(
    record: &AuditRecord,
    provider: &dyn Provider,
) -> Result<ReplayResult, ReplayError> {
    let request = record
        .to_request()
        .ok_or_else(|| ReplayError::NotRecordedInFull(record.id.clone()))?;
    let response = provider.chat(&request).await?;
    Ok(compare(record, request, response))
}

/// Like [`replay`], through the provider `harness` routes the recorded model to (the provider the
/// first attempt used, when one of that name is registered).
pub async fn replay_with(
    record: &AuditRecord,
    harness: &Harness,
) -> Result<ReplayResult, ReplayError> {
    let named = record
        .attempts
        .first()
        .map(|a| a.provider.as_str())
        .filter(|p| harness.provider(p).is_some());
    let (_, provider) = harness
        .route(named, &record.request.model)
        .map_err(|message| ReplayError::NoProvider {
            id: record.id.clone(),
            message,
        })?;
    replay(record, provider.as_ref()).await
}

fn compare(record: &AuditRecord, request: ChatRequest, response: ChatResponse) -> ReplayResult {
    let recorded_raw = record.attempts.first().and_then(|a| a.raw.clone());
    let recorded = recorded_raw
        .as_deref()
        .and_then(extract_json)
        .or_else(|| record.outcome.value.clone());
    let replayed = extract_json(&response.content);
    let diff = match (&recorded, &replayed) {
        (Some(old), Some(new)) => diff_json(old, new),
        _ => Vec::new(),
    };
    let request_matches = request_fingerprint(&request) == record.fingerprint;
    ReplayResult {
        id: record.id.clone(),
        request,
        request_matches,
        recorded_raw,
        recorded,
        response,
        replayed,
        diff,
    }
}

/// The fingerprint of a request: SHA-256 of its JSON serialization, hex. The engine stores it on
/// every report (`CallReport::fingerprint`); this is the one function that computes it.
pub fn request_fingerprint(request: &ChatRequest) -> String {
    request.fingerprint()
}

/// Every difference between `old` and `new`, by path, in a stable order.
pub fn diff_json(old: &Value, new: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(String::new(), old, new, &mut out);
    out
}

fn walk(path: String, old: &Value, new: &Value, out: &mut Vec<Difference>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                entry(p, a.get(key), b.get(key), out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                entry(format!("{path}[{i}]"), a.get(i), b.get(i), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Difference::Changed {
            path,
            old: a.clone(),
            new: b.clone(),
        }),
    }
}

/// The difference at `path` between a value that may be missing before and one that may be
/// missing after.
fn entry(path: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Difference>) {
    match (old, new) {
        (Some(x), Some(y)) => walk(path, x, y, out),
        (Some(x), None) => out.push(Difference::Removed {
            path,
            old: x.clone(),
        }),
        (None, Some(y)) => out.push(Difference::Added {
            path,
            new: y.clone(),
        }),
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_by_path() {
        let old = json!({"label": "positive", "score": 0.9, "tags": ["a", "b"], "gone": 1});
        let new = json!({"label": "negative", "score": 0.9, "tags": ["a"], "extra": {"x": 1}});
        let d: Vec<String> = diff_json(&old, &new)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            d,
            [
                "+ extra: {\"x\":1}",
                "- gone: 1",
                "~ label: \"positive\" -> \"negative\"",
                "- tags[1]: \"b\"",
            ]
        );
        assert!(diff_json(&old, &old).is_empty());
    }
}
