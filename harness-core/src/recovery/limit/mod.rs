//! Per-provider limits: requests per minute, tokens per minute, calls in flight, and a pause
//! after the provider said `Retry-After`.
//!
//! Rates are GCRA limiters from `governor`, driven by [`TokioClock`] so they follow tokio's clock
//! (and `tokio::time::pause` in tests); a quota of `n` per minute allows a burst of `n`, then one
//! more every `60/n` seconds. Calls in flight are a tokio [`Semaphore`].
//!
//! When a limit is reached, [`Overload`] decides: [`Overload::Shed`] refuses at once with a
//! [`Shed`] that says which limit and when to try again; [`Overload::Wait`] sleeps (on tokio's
//! clock) until the call fits, but no longer than its maximum in total, and sheds beyond it.
//!
//! **Tokens.** The caller gives an estimate before the call (prompt plus expected output). After
//! the call, [`Limits::reconcile`] carries the difference between the tokens billed and the
//! estimate into the next admission: underestimates are charged later, overestimates are
//! credited (at most one minute's quota of credit). GCRA cannot take cells back, so this is the
//! only honest reconciliation; over a few calls the charged total follows the billed total.
//! An estimate larger than the per-minute quota is charged as the whole quota.
//!
//! Checks run in this order: pause, concurrency, requests, tokens. A call shed by a later check
//! has already used a cell of an earlier rate; the error is small (one cell) and on the safe side.

mod clock;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use clock::TokioClock;

type Governor = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// What to do when a limit is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overload {
    /// Refuse at once with a [`Shed`].
    Shed,
    /// Wait until the call fits, at most this long in total; shed beyond it.
    Wait(Duration),
}

/// One provider's limits. `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitConfig {
    /// Requests per minute.
    pub requests_per_minute: Option<NonZeroU32>,
    /// Tokens (input + output) per minute.
    pub tokens_per_minute: Option<NonZeroU32>,
    /// Calls in flight at once.
    pub max_concurrency: Option<NonZeroU32>,
    /// Waiting or shedding. Default: wait up to 30 s.
    pub overload: Overload,
    /// After a 429 with `Retry-After`, hold every call to this provider until then. Default on.
    pub honour_retry_after: bool,
}

impl LimitConfig {
    /// No limits, waiting up to 30 s when one is added.
    pub const NONE: LimitConfig = LimitConfig {
        requests_per_minute: None,
        tokens_per_minute: None,
        max_concurrency: None,
        overload: Overload::Wait(Duration::from_secs(30)),
        honour_retry_after: true,
    };

    /// Limits requests per minute (`0`: unlimited).
    pub fn requests_per_minute(mut self, n: u32) -> Self {
        self.requests_per_minute = NonZeroU32::new(n);
        self
    }

    /// Limits tokens per minute (`0`: unlimited).
    pub fn tokens_per_minute(mut self, n: u32) -> Self {
        self.tokens_per_minute = NonZeroU32::new(n);
        self
    }

    /// Limits calls in flight (`0`: unlimited).
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = NonZeroU32::new(n);
        self
    }

    /// Refuse calls over a limit at once.
    pub fn shed(mut self) -> Self {
        self.overload = Overload::Shed;
        self
    }

    /// Wait up to `max` for a call to fit.
    pub fn wait(mut self, max: Duration) -> Self {
        self.overload = Overload::Wait(max);
        self
    }
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig::NONE
    }
}

/// Which limit refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Requests per minute.
    Requests,
    /// Tokens per minute.
    Tokens,
    /// Calls in flight.
    Concurrency,
    /// The provider asked for a pause (`Retry-After`).
    RetryAfter,
}

impl Limit {
    /// `"requests"`, `"tokens"`, `"concurrency"` or `"retry_after"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Limit::Requests => "requests",
            Limit::Tokens => "tokens",
            Limit::Concurrency => "concurrency",
            Limit::RetryAfter => "retry_after",
        }
    }
}

/// A call refused by a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shed {
    /// The limit.
    pub limit: Limit,
    /// When the call would fit (unknown for concurrency).
    pub retry_after: Option<Duration>,
}

/// Holds a concurrency slot until dropped.
#[derive(Debug)]
pub struct LimitPermit {
    _slot: Option<OwnedSemaphorePermit>,
}

/// How long one admission may still wait: its `Overload::Wait` maximum, counted from its first
/// wait (so the fast path never reads the clock), and the caller's deadline.
struct Waiting {
    cap: Option<Instant>,
    until: Option<Instant>,
}

impl Waiting {
    fn until(&mut self, now: Instant, max: Duration) -> Instant {
        let cap = self.cap;
        *self.until.get_or_insert_with(|| {
            let until = now + max;
            cap.map_or(until, |cap| cap.min(until))
        })
    }
}

/// One provider's limiters. Thread-safe; share it by reference or `Arc`.
#[derive(Debug)]
pub struct Limits {
    clock: TokioClock,
    requests: Option<Governor>,
    tokens: Option<(Governor, u32)>,
    concurrency: Option<Arc<Semaphore>>,
    overload: Overload,
    honour_retry_after: bool,
    /// Tokens billed minus tokens charged, to charge (or credit) on the next admission.
    carry: AtomicI64,
    /// Clock nanos until which the provider asked us to pause; 0 for none.
    paused_until: AtomicU64,
}

impl Limits {
    /// Limiters for `config`.
    pub fn new(config: &LimitConfig) -> Self {
        let clock = TokioClock::new();
        let governor = |n| RateLimiter::direct_with_clock(Quota::per_minute(n), clock);
        Limits {
            clock,
            requests: config.requests_per_minute.map(governor),
            tokens: config.tokens_per_minute.map(|n| (governor(n), n.get())),
            concurrency: config
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(n.get() as usize))),
            overload: config.overload,
            honour_retry_after: config.honour_retry_after,
            carry: AtomicI64::new(0),
            paused_until: AtomicU64::new(0),
        }
    }

    /// Admits one call estimated at `est_tokens` tokens, waiting or shedding per [`Overload`].
    pub async fn acquire(&self, est_tokens: u32) -> Result<LimitPermit, Shed> {
        self.acquire_before(est_tokens, None).await
    }

    /// Like [`acquire`](Self::acquire), but never waits past `deadline`: a call that would fit
    /// only later is shed at once, with the wait as its `retry_after`.
    pub async fn acquire_before(
        &self,
        est_tokens: u32,
        deadline: Option<Instant>,
    ) -> Result<LimitPermit, Shed> {
        let mut deadline = Waiting {
            cap: deadline,
            until: None,
        };
        let paused_until = self.paused_until.load(Ordering::Relaxed);
        if paused_until != 0 {
            let now = u64::from(self.clock.now());
            if now < paused_until {
                let wait = Duration::from_nanos(paused_until - now);
                self.wait_or_shed(Limit::RetryAfter, wait, &mut deadline)
                    .await?;
            }
        }
        let slot = match &self.concurrency {
            None => None,
            Some(semaphore) => Some(self.slot(semaphore, &mut deadline).await?),
        };
        if let Some(requests) = &self.requests {
            while let Err(not_until) = requests.check() {
                let wait = not_until.wait_time_from(self.clock.now());
                self.wait_or_shed(Limit::Requests, wait, &mut deadline)
                    .await?;
            }
        }
        if let Some((tokens, burst)) = &self.tokens {
            self.charge_tokens(tokens, *burst, est_tokens, &mut deadline)
                .await?;
        }
        Ok(LimitPermit { _slot: slot })
    }

    async fn slot(
        &self,
        semaphore: &Arc<Semaphore>,
        deadline: &mut Waiting,
    ) -> Result<OwnedSemaphorePermit, Shed> {
        if let Ok(slot) = Arc::clone(semaphore).try_acquire_owned() {
            return Ok(slot);
        }
        let shed = Shed {
            limit: Limit::Concurrency,
            retry_after: None,
        };
        let Overload::Wait(max) = self.overload else {
            return Err(shed);
        };
        let deadline = deadline.until(Instant::now(), max);
        match tokio::time::timeout_at(deadline, Arc::clone(semaphore).acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            // Timed out; or closed, which `Limits` never does.
            _ => Err(shed),
        }
    }

    async fn charge_tokens(
        &self,
        tokens: &Governor,
        burst: u32,
        estimate: u32,
        deadline: &mut Waiting,
    ) -> Result<(), Shed> {
        // A load first: the swap's write is needless when estimates are exact or unreconciled.
        let carry = match self.carry.load(Ordering::Acquire) {
            0 => 0,
            _ => self.carry.swap(0, Ordering::AcqRel),
        };
        let want = i64::from(estimate).saturating_add(carry);
        let Some(charge) = u32::try_from(want.min(i64::from(burst)))
            .ok()
            .and_then(NonZeroU32::new)
        else {
            // Nothing to charge: a credit at least as large as the estimate. Keep what is left.
            if want != 0 {
                self.carry.fetch_add(want, Ordering::AcqRel);
            }
            return Ok(());
        };
        loop {
            let not_until = match tokens.check_n(charge) {
                Ok(Ok(())) => break,
                Ok(Err(not_until)) => not_until,
                // `charge` never exceeds the burst, so this cannot happen; pass rather than block.
                Err(_) => break,
            };
            let wait = not_until.wait_time_from(self.clock.now());
            if let Err(shed) = self.wait_or_shed(Limit::Tokens, wait, deadline).await {
                self.carry.fetch_add(carry, Ordering::AcqRel);
                return Err(shed);
            }
        }
        let excess = want - i64::from(charge.get());
        if excess != 0 {
            self.carry.fetch_add(excess, Ordering::AcqRel);
        }
        Ok(())
    }

    async fn wait_or_shed(
        &self,
        limit: Limit,
        wait: Duration,
        deadline: &mut Waiting,
    ) -> Result<(), Shed> {
        let shed = Shed {
            limit,
            retry_after: Some(wait),
        };
        let Overload::Wait(max) = self.overload else {
            return Err(shed);
        };
        let now = Instant::now();
        if now + wait > deadline.until(now, max) {
            return Err(shed);
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Tells the token limiter what a call admitted with `estimated` tokens was billed.
    pub fn reconcile(&self, estimated: u32, billed: u64) {
        let Some((_, burst)) = &self.tokens else {
            return;
        };
        let diff = i64::try_from(billed)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::from(estimated));
        if diff == 0 {
            return;
        }
        let floor = -i64::from(*burst);
        let _ = self
            .carry
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_add(diff).max(floor))
            });
    }

    /// The provider asked for a pause (`Retry-After`): hold calls for `pause` from now, if
    /// configured to.
    pub fn pause(&self, pause: Duration) {
        if !self.honour_retry_after || pause.is_zero() {
            return;
        }
        let until = self.clock.now() + Nanos::from(pause);
        self.paused_until
            .fetch_max(u64::from(until).max(1), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests;
