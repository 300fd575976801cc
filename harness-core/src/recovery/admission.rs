//! What the engine hands back and forth with [`Recovery`](super::Recovery): the admission of one
//! attempt, the attempt's result, and the rejection of an attempt that was never sent.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::ProviderState;
use super::breaker::{BreakerState, Refused, Ticket};
use super::limit::{Limit, LimitPermit, Shed};
use crate::contract::FailureClass;
use crate::provider::{ChatRequest, ChatResponse, ProviderError, ResponseFormat};

/// Output tokens assumed for a request that sets no `max_tokens`.
pub const DEFAULT_OUTPUT_ESTIMATE: u32 = 1024;

/// A rough token estimate for the token rate limit: a token per 4 bytes of messages and schema,
/// 4 per message, plus `max_tokens` (or [`DEFAULT_OUTPUT_ESTIMATE`]). Deliberately simple: the
/// billed count reconciles it after the call (see [`limit`](super::limit)). Serializes the
/// schema, so compute it once per request, not per attempt.
pub fn estimate_tokens(request: &ChatRequest) -> u32 {
    let mut bytes: usize = request.messages.iter().map(|m| m.content.len() + 16).sum();
    if let ResponseFormat::JsonSchema { schema, .. } = &request.response_format {
        bytes += serde_json::to_string(schema).map_or(0, |s| s.len());
    }
    let input = u32::try_from(bytes / 4).unwrap_or(u32::MAX);
    input.saturating_add(request.max_tokens.unwrap_or(DEFAULT_OUTPUT_ESTIMATE))
}

/// Permission to send one attempt. Give it back with [`Recovery::record`](super::Recovery::record)
/// when the attempt ends; dropping it instead (a cancelled call) frees its slots and records
/// nothing.
#[derive(Debug)]
#[must_use = "record the attempt's result with `Recovery::record`"]
pub struct Admission {
    pub(super) state: Arc<ProviderState>,
    pub(super) ticket: Option<Ticket>,
    pub(super) permit: LimitPermit,
    pub(super) est_tokens: u32,
}

impl Admission {
    /// Whether this attempt is a half-open breaker's probe.
    pub fn is_probe(&self) -> bool {
        self.ticket.as_ref().is_some_and(Ticket::is_probe)
    }

    /// The token estimate it was admitted with.
    pub fn est_tokens(&self) -> u32 {
        self.est_tokens
    }
}

/// How an admitted attempt went, as far as recovery cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// The provider answered, whatever the model said (an invalid or refused answer is still the
    /// provider working). A 4xx client error other than 408/409/429 counts here too: it says the
    /// provider is up.
    Success {
        /// From sending the request to the end of the answer.
        latency: Duration,
        /// Tokens billed (input + output), when known: reconciles the token rate limit.
        tokens: Option<u64>,
    },
    /// The provider failed. `Timeout` and `ProviderError` count against the breaker; any other
    /// class is treated as [`AttemptResult::Success`].
    Failure {
        /// The failure class.
        class: FailureClass,
        /// Until the failure was known.
        latency: Duration,
    },
    /// 429 or an equivalent: not a breaker failure. With `Retry-After`, the provider's calls are
    /// held until then (capped by `RecoveryConfig::max_retry_after`) if its limits honour it.
    RateLimited {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// The request never reached the provider (a configuration error): counts for nothing.
    NotSent,
}

impl AttemptResult {
    /// Classifies a provider exchange that took `latency`.
    pub fn from_provider(result: &Result<ChatResponse, ProviderError>, latency: Duration) -> Self {
        match result {
            Ok(response) => AttemptResult::Success {
                latency,
                tokens: Some(response.usage.total()).filter(|t| *t > 0),
            },
            Err(error) => AttemptResult::from_error(error, latency),
        }
    }

    /// Classifies a provider error that took `latency`.
    pub fn from_error(error: &ProviderError, latency: Duration) -> Self {
        match error {
            ProviderError::RateLimited { retry_after, .. } => AttemptResult::RateLimited {
                retry_after: *retry_after,
            },
            ProviderError::Status { status, .. } if (400..500).contains(status) => {
                if error.is_retryable() {
                    AttemptResult::Failure {
                        class: FailureClass::ProviderError,
                        latency,
                    }
                } else {
                    AttemptResult::Success {
                        latency,
                        tokens: None,
                    }
                }
            }
            ProviderError::Config(_) | ProviderError::CircuitOpen(_) => AttemptResult::NotSent,
            other => AttemptResult::Failure {
                class: other.class(),
                latency,
            },
        }
    }
}

/// Why an attempt was refused before reaching the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The breaker for this provider and model is open (or half-open with every probe out).
    CircuitOpen,
    /// A provider limit was reached and the configuration says shed, or waiting would take too
    /// long.
    Limit(Limit),
}

/// An attempt refused by [`Recovery::admit`](super::Recovery::admit): no request was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// What refused it.
    pub reason: RejectReason,
    /// The provider's registered name.
    pub provider: String,
    /// The model.
    pub model: String,
    /// When an attempt could be admitted, if known.
    pub retry_after: Option<Duration>,
}

impl Rejection {
    pub(super) fn open(provider: &str, model: &str, refused: Refused) -> Self {
        debug_assert_ne!(refused.state, BreakerState::Closed);
        Rejection {
            reason: RejectReason::CircuitOpen,
            provider: provider.to_owned(),
            model: model.to_owned(),
            retry_after: refused.retry_after,
        }
    }

    pub(super) fn shed(provider: &str, model: &str, shed: Shed) -> Self {
        Rejection {
            reason: RejectReason::Limit(shed.limit),
            provider: provider.to_owned(),
            model: model.to_owned(),
            retry_after: shed.retry_after,
        }
    }

    /// The provider error the engine answers with the contract:
    /// - an open breaker is [`ProviderError::CircuitOpen`] (`provider/model`): class
    ///   `provider_error`, not retryable, so the chain skips `retry` and `reask` and goes straight
    ///   to its `fallback`, `default`, `escalate` or `fail`;
    /// - a shed limit is [`ProviderError::RateLimited`] with `status: 429` (synthetic: no request
    ///   was sent) and the limiter's `retry_after`: class `rate_limited`, retryable, and the
    ///   backoff waits at least until the call would fit.
    pub fn into_provider_error(self) -> ProviderError {
        match self.reason {
            RejectReason::CircuitOpen => {
                ProviderError::CircuitOpen(format!("{}/{}", self.provider, self.model))
            }
            RejectReason::Limit(limit) => ProviderError::Shed {
                limit: limit.as_str(),
                retry_after: self.retry_after,
            },
        }
    }
}

impl From<Rejection> for ProviderError {
    fn from(rejection: Rejection) -> Self {
        rejection.into_provider_error()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            RejectReason::CircuitOpen => write!(
                f,
                "the circuit breaker for {}/{} is open",
                self.provider, self.model
            ),
            RejectReason::Limit(limit) => write!(
                f,
                "the {} limit for {} is reached",
                limit.as_str(),
                self.provider
            ),
        }?;
        match self.retry_after {
            Some(after) => write!(f, "; retry after {after:?}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Rejection {}
