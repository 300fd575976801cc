//! [`ReplayProvider`]: answers requests with the responses recorded in an audit trail, offline.
//!
//! Record real calls once (with a [`JsonlSink`](crate::audit::JsonlSink) and
//! [`MessagePolicy::Full`](crate::audit::MessagePolicy)), then run the same tasks against a
//! `ReplayProvider` loaded from that file in tests: each call gets exactly the answers the model
//! gave then, attempt by attempt (retries, reasks and fallbacks included), and any change to a
//! prompt, a schema or a parameter shows up as a request with no recording.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::{AuditRecord, RecordedAttempt, hash_hex};
use crate::contract::FailureClass;
use crate::provider::{
    BoxFuture, ChatRequest, ChatResponse, FinishReason, Message, Provider, ProviderError,
    ProviderInfo, ResponseFormat,
};

/// Serves recorded responses, matched by request fingerprint, in recorded order.
///
/// A call is identified by the fingerprint of its first request without the model: the messages,
/// response format, temperature, max tokens and seed. Later attempts of the same call (a reask
/// appends messages; a fallback changes only the model) start with the same messages, so they
/// find the same call. Each request is answered with the next recorded attempt of that call;
/// calls recorded several times with the same request are served one after the other. Attempts
/// that failed at the provider are served as the same kind of error.
///
/// A request with no recording left fails with a non-retryable [`ProviderError::Config`] naming
/// its fingerprint, so a test sees at once which call changed.
#[derive(Debug)]
pub struct ReplayProvider {
    calls: Mutex<HashMap<String, VecDeque<Served>>>,
    /// The distinct numbers of messages in recorded first requests, longest first.
    prefix_lens: Vec<usize>,
    total: usize,
}

#[derive(Clone, Debug)]
enum Served {
    Response(ChatResponse),
    Error(ProviderError),
}

/// What identifies a call: its first request, without the model.
#[derive(Serialize)]
struct Key<'a> {
    messages: &'a [Message],
    response_format: &'a ResponseFormat,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    seed: Option<u64>,
}

fn key(request: &ChatRequest, prefix: usize) -> String {
    let k = Key {
        messages: &request.messages[..prefix],
        response_format: &request.response_format,
        temperature: request.temperature,
        max_tokens: request.max_tokens,
        seed: request.seed,
    };
    hash_hex(&serde_json::to_vec(&k).unwrap_or_default())
}

impl ReplayProvider {
    /// Loads recorded calls. Records whose messages were not kept in full cannot be matched and
    /// are skipped (with a `tracing` warning).
    pub fn from_records(records: impl IntoIterator<Item = AuditRecord>) -> ReplayProvider {
        let mut calls: HashMap<String, VecDeque<Served>> = HashMap::new();
        let mut prefix_lens = Vec::new();
        let mut total = 0;
        for record in records {
            let Some(request) = record.to_request() else {
                tracing::warn!(record = %record.id, "not replayable: messages not recorded in full");
                continue;
            };
            let n = request.messages.len();
            if !prefix_lens.contains(&n) {
                prefix_lens.push(n);
            }
            let queue = calls.entry(key(&request, n)).or_default();
            for attempt in &record.attempts {
                queue.push_back(served(attempt));
                total += 1;
            }
        }
        prefix_lens.sort_unstable_by(|a, b| b.cmp(a));
        ReplayProvider {
            calls: Mutex::new(calls),
            prefix_lens,
            total,
        }
    }

    /// Loads the complete records of a JSONL audit file.
    pub fn from_jsonl(path: impl AsRef<Path>) -> std::io::Result<ReplayProvider> {
        Ok(Self::from_records(super::read_jsonl(path)?))
    }

    /// Recorded responses loaded.
    pub fn loaded(&self) -> usize {
        self.total
    }

    /// Recorded responses not served yet.
    pub fn remaining(&self) -> usize {
        self.lock().values().map(VecDeque::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Served>>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let mut calls = self.lock();
        for &n in &self.prefix_lens {
            if request.messages.len() < n {
                continue;
            }
            if let Some(queue) = calls.get_mut(&key(request, n))
                && let Some(next) = queue.pop_front()
            {
                return match next {
                    Served::Response(r) => Ok(r),
                    Served::Error(e) => Err(e),
                };
            }
        }
        Err(ProviderError::Config(format!(
            "no recorded response left for this request (fingerprint {}, model {}, {} messages)",
            key(request, request.messages.len()),
            request.model,
            request.messages.len()
        )))
    }
}

fn served(a: &RecordedAttempt) -> Served {
    if let Some(raw) = &a.raw {
        // The engine words a provider-reported refusal as "the model refused: <reason>".
        let refusal = (a.failure == Some(FailureClass::Refusal))
            .then(|| a.error.as_deref()?.strip_prefix("the model refused: "))
            .flatten()
            .filter(|r| *r != "the provider's content filter stopped the answer")
            .map(str::to_owned);
        return Served::Response(ChatResponse {
            content: raw.clone(),
            refusal,
            finish_reason: a.finish_reason.as_deref().map(FinishReason::parse),
            model: a.response_model.clone(),
            id: a.response_id.clone(),
            usage: a.usage,
            ..Default::default()
        });
    }
    Served::Error(provider_error(a))
}

/// The provider error an attempt recorded, rebuilt from its class and its message (the
/// `Display` of [`ProviderError`]).
fn provider_error(a: &RecordedAttempt) -> ProviderError {
    let message = a.error.as_deref().unwrap_or_default();
    let after = |prefix: &str| message.strip_prefix(prefix).map(str::to_owned);
    match a.failure {
        Some(FailureClass::Timeout) => {
            ProviderError::Timeout(Duration::from_secs_f64(a.latency_ms.max(0.0) / 1000.0))
        }
        Some(FailureClass::RateLimited) => ProviderError::RateLimited {
            status: message
                .strip_prefix("rate limited by the provider (HTTP ")
                .and_then(|r| r.get(..3))
                .and_then(|s| s.parse().ok())
                .unwrap_or(429),
            retry_after: None,
        },
        _ => {
            if let Some(rest) = after("the provider answered HTTP ")
                && let Some((status, msg)) = rest.split_once(": ")
                && let Ok(status) = status.parse()
            {
                return ProviderError::Status {
                    status,
                    message: msg.to_owned(),
                };
            }
            if let Some(m) = after("connection to the provider failed: ") {
                return ProviderError::Connection(m);
            }
            if let Some(m) = after("the provider's response could not be read: ") {
                return ProviderError::InvalidResponse(m);
            }
            if let Some(m) = after("configuration error: ") {
                return ProviderError::Config(m);
            }
            ProviderError::Status {
                status: 500,
                message: message.to_owned(),
            }
        }
    }
}

impl Provider for ReplayProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "replay".into(),
            address: None,
            port: None,
        }
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        let result = self.next(request);
        Box::pin(async move { result })
    }
}
