//! Recovery machinery: backoff, retry budget, circuit breaker, rate and concurrency limits.
//!
//! Each concern is its own module and usable alone ([`backoff`], [`budget`], [`breaker`],
//! [`limit`]); [`Recovery`] puts them together for the engine, per provider (limits, budget) and
//! per provider and model (breaker). One `Recovery` lives in a harness, shared by every call.
//!
//! How the engine uses it during one call:
//!
//! 1. When the call starts on a provider, [`Recovery::on_call`] deposits into that provider's
//!    retry budget.
//! 2. Before every attempt, [`Recovery::admit`] with the provider, the model and a token estimate.
//!    A [`Rejection`] means no request is sent; its
//!    [`into_provider_error`](Rejection::into_provider_error) is the failure the contract answers.
//! 3. After the attempt, [`Recovery::record`] with the [`Admission`] and an [`AttemptResult`]
//!    (usually [`AttemptResult::from_provider`]).
//! 4. On a `retry` decision, [`Recovery::retry_allowed`] withdraws from the budget (refused: skip
//!    the retry step as if exhausted) and [`Recovery::backoff`] gives the delay.
//!
//! Time is tokio's, so all of it follows `tokio::time::pause`; jitter is seedable.
//!
//! ```
//! use std::time::Duration;
//! use harness_core::contract::Backoff;
//! use harness_core::provider::{ChatRequest, ChatResponse, ProviderError};
//! use harness_core::recovery::{AttemptResult, Recovery, estimate_tokens};
//! use tokio::time::Instant;
//!
//! async fn attempt_once(
//!     recovery: &Recovery,
//!     provider: &str,
//!     request: &ChatRequest,
//!     deadline: Instant,
//!     send: impl AsyncFnOnce() -> Result<ChatResponse, ProviderError>,
//! ) -> Result<ChatResponse, ProviderError> {
//!     let admission = recovery
//!         .admit_before(provider, &request.model, estimate_tokens(request), Some(deadline))
//!         .await?; // a `Rejection` becomes `CircuitOpen` or `RateLimited`: no request sent
//!     let started = Instant::now();
//!     let result = send().await;
//!     recovery.record(admission, AttemptResult::from_provider(&result, started.elapsed()));
//!     result
//! }
//!
//! # async fn demo(request: ChatRequest) {
//! let recovery = Recovery::default();
//! let deadline = Instant::now() + Duration::from_secs(30);
//! recovery.on_call("openai");
//! let mut result = attempt_once(&recovery, "openai", &request, deadline, async || {
//!     Err(ProviderError::Timeout(Duration::from_secs(20)))
//! })
//! .await;
//! let mut retry = 0;
//! while let Err(error) = &result {
//!     retry += 1;
//!     if !error.is_retryable() || retry > 2 || !recovery.retry_allowed("openai") {
//!         break;
//!     }
//!     let delay = recovery.backoff(&Backoff::DEFAULT, retry, error.retry_after());
//!     tokio::time::sleep(delay).await;
//!     result = attempt_once(&recovery, "openai", &request, deadline, async || {
//!         Ok(ChatResponse::default())
//!     })
//!     .await;
//! }
//! # }
//! ```

mod admission;
pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod limit;
mod window;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

pub use admission::{
    Admission, AttemptResult, DEFAULT_OUTPUT_ESTIMATE, RejectReason, Rejection, estimate_tokens,
};
pub use backoff::Jitter;
pub use breaker::{Breaker, BreakerConfig, BreakerState, CallOutcome};
pub use budget::{BudgetConfig, RetryBudget};
pub use limit::{Limit, LimitConfig, Limits, Overload};

use crate::contract::{Backoff, FailureClass};

/// What [`Recovery`] enforces. [`Default`] turns on the breaker and the retry budget with their
/// defaults, sets no rate or concurrency limits (they depend on your account), and honours
/// `Retry-After` up to 60 s; [`RecoveryConfig::off`] turns everything off.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryConfig {
    /// The circuit breaker for every provider and model; `None`: no breaker.
    pub breaker: Option<BreakerConfig>,
    /// The retry budget of every provider; `None`: retries are limited by contracts only.
    pub budget: Option<BudgetConfig>,
    /// Limits of providers not listed in `provider_limits`.
    pub limits: LimitConfig,
    /// Limits per provider, by registered name.
    pub provider_limits: Vec<(String, LimitConfig)>,
    /// The longest `Retry-After` honoured, by backoff and by the provider pause.
    pub max_retry_after: Duration,
    /// Seeds the backoff jitter, for reproducible runs.
    pub seed: Option<u64>,
}

impl RecoveryConfig {
    /// No breaker, no budget, no limits, `Retry-After` honoured only by backoff.
    pub fn off() -> Self {
        RecoveryConfig {
            breaker: None,
            budget: None,
            limits: LimitConfig {
                honour_retry_after: false,
                ..LimitConfig::NONE
            },
            provider_limits: Vec::new(),
            max_retry_after: backoff::DEFAULT_MAX_RETRY_AFTER,
            seed: None,
        }
    }

    /// Sets the limits of the provider registered as `provider`.
    pub fn limits_for(mut self, provider: impl Into<String>, limits: LimitConfig) -> Self {
        let provider = provider.into();
        self.provider_limits.retain(|(p, _)| *p != provider);
        self.provider_limits.push((provider, limits));
        self
    }

    /// Seeds the backoff jitter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    fn limits_of(&self, provider: &str) -> &LimitConfig {
        self.provider_limits
            .iter()
            .find(|(p, _)| p == provider)
            .map_or(&self.limits, |(_, l)| l)
    }
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            breaker: Some(BreakerConfig::default()),
            budget: Some(BudgetConfig::default()),
            limits: LimitConfig::NONE,
            provider_limits: Vec::new(),
            max_retry_after: backoff::DEFAULT_MAX_RETRY_AFTER,
            seed: None,
        }
    }
}

/// One provider's recovery state.
#[derive(Debug)]
pub(crate) struct ProviderState {
    name: Box<str>,
    limits: Limits,
    budget: Option<RetryBudget>,
    breakers: RwLock<HashMap<Box<str>, Arc<Breaker>>>,
}

impl ProviderState {
    /// Asks `model`'s breaker (made on first use) for a ticket.
    fn acquire(
        &self,
        model: &str,
        config: &BreakerConfig,
    ) -> Result<breaker::Ticket, breaker::Refused> {
        if let Some(b) = read(&self.breakers).get(model) {
            return b.acquire();
        }
        self.breaker(model, config).acquire()
    }

    fn breaker(&self, model: &str, config: &BreakerConfig) -> Arc<Breaker> {
        let mut breakers = write(&self.breakers);
        let b = breakers
            .entry(model.into())
            .or_insert_with(|| Arc::new(Breaker::new(format!("{}/{model}", self.name), *config)));
        Arc::clone(b)
    }
}

/// Backoff, retry budgets, circuit breakers and limits for a harness. Thread-safe; keep one in
/// an `Arc` and share it.
#[derive(Debug)]
pub struct Recovery {
    config: RecoveryConfig,
    providers: RwLock<HashMap<Box<str>, Arc<ProviderState>>>,
    jitter: Jitter,
}

impl Recovery {
    /// Recovery as `config` says.
    pub fn new(config: RecoveryConfig) -> Self {
        Recovery {
            jitter: Jitter::new(config.seed, config.max_retry_after),
            config,
            providers: RwLock::new(HashMap::new()),
        }
    }

    /// Everything off: every attempt admitted, every retry allowed.
    pub fn off() -> Self {
        Recovery::new(RecoveryConfig::off())
    }

    /// The configuration.
    pub fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    /// Asks to send one attempt to `model` on `provider`, estimated at `est_tokens` tokens (input
    /// plus expected output, see [`estimate_tokens`]; with `0`, only what earlier attempts were
    /// billed beyond their estimates is charged). Checks the breaker, then the provider's
    /// pause, concurrency, request and token limits; may wait if the limits say so.
    pub async fn admit(
        &self,
        provider: &str,
        model: &str,
        est_tokens: u32,
    ) -> Result<Admission, Rejection> {
        self.admit_before(provider, model, est_tokens, None).await
    }

    /// Like [`admit`](Self::admit), but never waits for a limit past `deadline` (the call's):
    /// an attempt that would fit only later is rejected at once, with the wait as `retry_after`,
    /// so the contract can decide (a retry whose delay passes the deadline is skipped).
    pub async fn admit_before(
        &self,
        provider: &str,
        model: &str,
        est_tokens: u32,
        deadline: Option<Instant>,
    ) -> Result<Admission, Rejection> {
        let state = self.provider(provider);
        let ticket = match &self.config.breaker {
            None => None,
            Some(config) => Some(
                state
                    .acquire(model, config)
                    .map_err(|refused| Rejection::open(provider, model, refused))?,
            ),
        };
        let permit = state
            .limits
            .acquire_before(est_tokens, deadline)
            .await
            .map_err(|shed| Rejection::shed(provider, model, shed))?;
        Ok(Admission {
            state,
            ticket,
            permit,
            est_tokens,
        })
    }

    /// Records how an admitted attempt went, and frees its concurrency slot.
    pub fn record(&self, admission: Admission, result: AttemptResult) {
        let Admission {
            state,
            ticket,
            permit,
            est_tokens,
        } = admission;
        drop(permit);
        let outcome = match result {
            AttemptResult::Success { latency, tokens } => {
                if let Some(tokens) = tokens {
                    state.limits.reconcile(est_tokens, tokens);
                }
                CallOutcome::Success(latency)
            }
            AttemptResult::Failure { class, latency } => match class {
                FailureClass::Timeout | FailureClass::ProviderError => {
                    CallOutcome::Failure(latency)
                }
                _ => CallOutcome::Success(latency),
            },
            AttemptResult::RateLimited { retry_after } => {
                if let Some(after) = retry_after {
                    state.limits.pause(after.min(self.config.max_retry_after));
                }
                CallOutcome::Ignored
            }
            AttemptResult::NotSent => CallOutcome::Ignored,
        };
        if let Some(ticket) = ticket {
            ticket.record(outcome);
        }
    }

    /// Deposits into `provider`'s retry budget: call once when a call starts on a provider (its
    /// first attempt, or its first attempt there after a fallback), not for retries.
    pub fn on_call(&self, provider: &str) {
        if self.config.budget.is_some() {
            self.with_provider(provider, |state| {
                if let Some(budget) = &state.budget {
                    budget.deposit();
                }
            });
        }
    }

    /// Withdraws one retry from `provider`'s budget; `false` means the budget is spent and the
    /// retry should not be made.
    pub fn retry_allowed(&self, provider: &str) -> bool {
        if self.config.budget.is_none() {
            return true;
        }
        self.with_provider(provider, |state| {
            state.budget.as_ref().is_none_or(RetryBudget::withdraw)
        })
    }

    /// The delay before retry number `retry` (1-based) under `backoff`: full jitter from the
    /// seeded generator, at least `retry_after` (capped by `max_retry_after`).
    pub fn backoff(
        &self,
        backoff: &Backoff,
        retry: u32,
        retry_after: Option<Duration>,
    ) -> Duration {
        self.jitter.delay(backoff, retry, retry_after)
    }

    /// The state of the breaker for `model` on `provider`, if it has been used.
    pub fn breaker_state(&self, provider: &str, model: &str) -> Option<BreakerState> {
        let state = read(&self.providers).get(provider).cloned()?;
        let breakers = read(&state.breakers);
        breakers.get(model).map(|b| b.state())
    }

    /// Runs `f` on `name`'s state under the read lock, sparing the `Arc` clone.
    fn with_provider<R>(&self, name: &str, f: impl FnOnce(&ProviderState) -> R) -> R {
        if let Some(state) = read(&self.providers).get(name) {
            return f(state);
        }
        f(&self.provider(name))
    }

    fn provider(&self, name: &str) -> Arc<ProviderState> {
        if let Some(state) = read(&self.providers).get(name) {
            return Arc::clone(state);
        }
        let mut providers = write(&self.providers);
        let state = providers.entry(name.into()).or_insert_with(|| {
            Arc::new(ProviderState {
                name: name.into(),
                limits: Limits::new(self.config.limits_of(name)),
                budget: self.config.budget.map(RetryBudget::new),
                breakers: RwLock::new(HashMap::new()),
            })
        });
        Arc::clone(state)
    }
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery::new(RecoveryConfig::default())
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // Maps that are only ever inserted into: a panic cannot leave one half-updated.
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
