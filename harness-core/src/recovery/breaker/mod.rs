//! A circuit breaker for one provider and model.
//!
//! **Closed** (normal): calls go through; their results fill a sliding time window. Once the
//! window holds at least `min_calls` calls and either the share of failures reaches
//! `failure_rate` or the share of calls slower than `slow_call_duration` reaches
//! `slow_call_rate`, the breaker **opens**: every call is refused at once, without touching the
//! provider, for `open_for`. Then it goes **half-open**: `probes` calls are let through; the
//! first probe that fails (or is slow) opens it again, and when all of them have succeeded it
//! closes with an empty window.
//!
//! Only failures that say something about the provider's health count: timeouts and provider
//! errors. A rate-limited answer (429) is the provider working as intended and counts for
//! nothing, and so does an answer the model got wrong (invalid output, refusal).
//!
//! Every transition is a `tracing` event with target `harness::recovery` and the fields
//! `breaker` (the `provider/model` key), `from`, `to`, `failure_rate` and `slow_rate`.
//!
//! The closed fast path of [`Breaker::acquire`] is one atomic load; [`Ticket::record`] takes a
//! mutex for a few additions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::window::Ring;

/// When a breaker trips and how it recovers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    /// The sliding window results are counted over. Default 60 s.
    pub window: Duration,
    /// Calls the window must hold before the breaker may trip. Default 10.
    pub min_calls: u32,
    /// Share of failed calls (0–1) that trips the breaker. Default 0.5.
    pub failure_rate: f64,
    /// A call that takes at least this long is slow. Default 60 s.
    pub slow_call_duration: Duration,
    /// Share of slow calls (0–1) that trips the breaker; above 1 never trips. Default 0.8.
    pub slow_call_rate: f64,
    /// How long the breaker stays open before letting probes through. Default 30 s.
    pub open_for: Duration,
    /// Probe calls let through while half-open (at least 1). Default 3.
    pub probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: Duration::from_secs(60),
            min_calls: 10,
            failure_rate: 0.5,
            slow_call_duration: Duration::from_secs(60),
            slow_call_rate: 0.8,
            open_for: Duration::from_secs(30),
            probes: 3,
        }
    }
}

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through and are counted.
    Closed,
    /// Calls are refused without touching the provider.
    Open,
    /// A few probe calls go through; their results decide.
    HalfOpen,
}

impl BreakerState {
    /// `"closed"`, `"open"` or `"half_open"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    const fn code(self) -> u64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// A call the breaker refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The state that refused it (`Open`, or `HalfOpen` with every probe out).
    pub state: BreakerState,
    /// When the breaker will let a probe through, if known.
    pub retry_after: Option<Duration>,
}

/// What a call came to, as the breaker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The provider answered (whatever the model said), taking `latency`.
    Success(Duration),
    /// The provider failed (timeout, 5xx, connection), after `latency`.
    Failure(Duration),
    /// Says nothing about the provider's health (429, a request never sent).
    Ignored,
}

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    calls: u32,
    failures: u32,
    slow: u32,
}

impl Counts {
    fn rates(&self) -> (f64, f64) {
        if self.calls == 0 {
            return (0.0, 0.0);
        }
        let calls = f64::from(self.calls);
        (
            f64::from(self.failures) / calls,
            f64::from(self.slow) / calls,
        )
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    generation: u64,
    window: Ring<Counts, 10>,
    opened_at: Instant,
    /// The rates that last opened the breaker, reported when it goes half-open.
    opened_by: (f64, f64),
    probes_out: u32,
    probes_ok: u32,
}

/// A circuit breaker. Shared behind an `Arc`: [`Breaker::acquire`] hands out tickets that keep it.
#[derive(Debug)]
pub struct Breaker {
    key: Arc<str>,
    config: BreakerConfig,
    /// `generation << 2 | state code`: the lock-free view of `inner` for the fast path.
    packed: AtomicU64,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker named `key` (conventionally `provider/model`).
    pub fn new(key: impl Into<Arc<str>>, config: BreakerConfig) -> Self {
        let config = BreakerConfig {
            probes: config.probes.max(1),
            ..config
        };
        Breaker {
            key: key.into(),
            config,
            packed: AtomicU64::new(BreakerState::Closed.code()),
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                generation: 0,
                window: Ring::new(config.window),
                opened_at: Instant::now(),
                opened_by: (0.0, 0.0),
                probes_out: 0,
                probes_ok: 0,
            }),
        }
    }

    /// The breaker's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The failure and slow-call rates that opened it last (what its state-change events report).
    #[cfg(test)]
    fn opened_by(&self) -> (f64, f64) {
        self.lock().opened_by
    }

    /// The current state (an open breaker whose time is up still reads `Open` until the next
    /// [`acquire`](Self::acquire)).
    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// Asks to make a call: a ticket to report its outcome with, or a refusal.
    pub fn acquire(self: &Arc<Self>) -> Result<Ticket, Refused> {
        let packed = self.packed.load(Ordering::Acquire);
        if packed & 3 == BreakerState::Closed.code() {
            return Ok(self.ticket(packed >> 2, false));
        }
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.state == BreakerState::Open {
            let reopens = inner.opened_at + self.config.open_for;
            if now < reopens {
                return Err(Refused {
                    state: BreakerState::Open,
                    retry_after: Some(reopens - now),
                });
            }
            let (failure_rate, slow_rate) = inner.opened_by;
            inner.probes_out = 0;
            inner.probes_ok = 0;
            self.transition(&mut inner, BreakerState::HalfOpen, failure_rate, slow_rate);
        }
        match inner.state {
            BreakerState::Closed => Ok(self.ticket(inner.generation, false)),
            BreakerState::HalfOpen if inner.probes_out < self.config.probes => {
                inner.probes_out += 1;
                Ok(self.ticket(inner.generation, true))
            }
            state => Err(Refused {
                state,
                retry_after: None,
            }),
        }
    }

    fn ticket(self: &Arc<Self>, generation: u64, probe: bool) -> Ticket {
        Ticket {
            breaker: Arc::clone(self),
            generation,
            probe,
            done: false,
        }
    }

    fn record(&self, generation: u64, probe: bool, outcome: CallOutcome) {
        let (failed, latency) = match outcome {
            CallOutcome::Success(latency) => (false, latency),
            CallOutcome::Failure(latency) => (true, latency),
            CallOutcome::Ignored => return self.release(generation, probe),
        };
        let slow = latency >= self.config.slow_call_duration;
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.generation != generation {
            // Admitted before the last transition: it describes a past the breaker has left.
            return;
        }
        match inner.state {
            BreakerState::Closed => {
                let counts = inner.window.current(now);
                counts.calls += 1;
                counts.failures += u32::from(failed);
                counts.slow += u32::from(slow);
                // Evaluated after every call, successes included: the window may just have
                // reached `min_calls`, or old successes may have left it.
                let total = inner
                    .window
                    .live(now)
                    .fold(Counts::default(), |a, c| Counts {
                        calls: a.calls + c.calls,
                        failures: a.failures + c.failures,
                        slow: a.slow + c.slow,
                    });
                let (failure_rate, slow_rate) = total.rates();
                if total.calls >= self.config.min_calls
                    && (failure_rate >= self.config.failure_rate
                        || slow_rate >= self.config.slow_call_rate)
                {
                    self.open(&mut inner, now, failure_rate, slow_rate);
                }
            }
            BreakerState::HalfOpen if probe => {
                if failed || slow {
                    let done = f64::from(inner.probes_ok + 1);
                    let failure_rate = f64::from(u8::from(failed)) / done;
                    let slow_rate = f64::from(u8::from(slow)) / done;
                    self.open(&mut inner, now, failure_rate, slow_rate);
                } else {
                    inner.probes_ok += 1;
                    if inner.probes_ok >= self.config.probes {
                        inner.window.clear();
                        self.transition(&mut inner, BreakerState::Closed, 0.0, 0.0);
                    }
                }
            }
            _ => {}
        }
    }

    /// Gives a probe slot back: its call ended without telling anything.
    fn release(&self, generation: u64, probe: bool) {
        if !probe {
            return;
        }
        let mut inner = self.lock();
        if inner.generation == generation && inner.state == BreakerState::HalfOpen {
            inner.probes_out = inner.probes_out.saturating_sub(1);
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant, failure_rate: f64, slow_rate: f64) {
        inner.opened_at = now;
        inner.opened_by = (failure_rate, slow_rate);
        self.transition(inner, BreakerState::Open, failure_rate, slow_rate);
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState, failure_rate: f64, slow_rate: f64) {
        let from = inner.state;
        inner.state = to;
        inner.generation += 1;
        self.packed
            .store(inner.generation << 2 | to.code(), Ordering::Release);
        if to == BreakerState::Open {
            tracing::warn!(
                target: "harness::recovery",
                breaker = %self.key,
                from = from.as_str(),
                to = to.as_str(),
                failure_rate,
                slow_rate,
                "circuit breaker state change"
            );
        } else {
            tracing::info!(
                target: "harness::recovery",
                breaker = %self.key,
                from = from.as_str(),
                to = to.as_str(),
                failure_rate,
                slow_rate,
                "circuit breaker state change"
            );
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(inner) => inner,
            // Every update leaves `inner` consistent before anything that could panic.
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Permission for one call. Report its outcome with [`Ticket::record`]; a ticket dropped without
/// a record (the call was cancelled, or another limit refused it) gives a probe slot back.
#[derive(Debug)]
#[must_use = "a ticket records the call's outcome; dropping it records nothing"]
pub struct Ticket {
    breaker: Arc<Breaker>,
    generation: u64,
    probe: bool,
    done: bool,
}

impl Ticket {
    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Reports how the call went.
    pub fn record(mut self, outcome: CallOutcome) {
        self.done = true;
        self.breaker.record(self.generation, self.probe, outcome);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.release(self.generation, self.probe);
        }
    }
}

#[cfg(test)]
mod tests;
