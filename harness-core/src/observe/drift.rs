//! The drift alarm: notices when a task's model starts producing invalid or unconfident output.
//!
//! Validation already stops every bad answer; drift is the pattern across answers, the sign that
//! a model was updated, a provider changed something, or the inputs moved. [`DriftAlarm`] keeps,
//! per task, a rolling window of recent calls (the last `window` calls, optionally also no older
//! than `max_age`) and the share of them in which the model produced invalid output, or output
//! below the task's confidence threshold. When a share reaches its `fire_at` threshold the alarm
//! fires once: it calls your hook, counts the alarm, and logs a `tracing` warning. It re-arms only
//! after the share falls below `rearm_below` (hysteresis), so a rate hovering at the threshold
//! does not fire on every call.
//!
//! ```
//! use std::sync::Arc;
//! use harness_core::observe::drift::{DriftAlarm, DriftConfig};
//!
//! let alarm = Arc::new(DriftAlarm::new(DriftConfig::default()).on_drift(|e| {
//!     eprintln!("{e}");
//! }));
//! let harness = harness_core::Harness::builder().observer(alarm.clone()).build()?;
//! # let _ = harness;
//! assert_eq!(alarm.fired(), 0);
//! # Ok::<(), harness_core::ConfigError>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{CallEnd, Observer};
use crate::contract::FailureClass;

/// When a rate fires the alarm and when the alarm re-arms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    /// The alarm fires when the rate reaches this (0..=1).
    pub fire_at: f64,
    /// A fired alarm re-arms when the rate falls below this (at most `fire_at`).
    pub rearm_below: f64,
}

impl Threshold {
    /// Fires at `fire_at`, re-arms below half of it.
    pub const fn at(fire_at: f64) -> Threshold {
        Threshold {
            fire_at,
            rearm_below: fire_at / 2.0,
        }
    }
}

/// What the alarm watches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriftConfig {
    /// How many of a task's most recent calls the rates are computed over.
    pub window: usize,
    /// Calls older than this leave the window too (checked whenever a call of the task ends).
    pub max_age: Option<Duration>,
    /// No judgement before the window holds this many calls (nor, after `max_age` pruning,
    /// until it holds this many again).
    pub min_calls: usize,
    /// Share of calls in which the model produced invalid output at least once.
    pub invalid_output: Option<Threshold>,
    /// Share of calls in which the model's answer was below the confidence threshold at least once.
    pub low_confidence: Option<Threshold>,
}

impl Default for DriftConfig {
    /// 50 calls, no age limit, judged from 10 calls on; invalid output fires at 20 % and low
    /// confidence at 30 %, each re-arming below half of that.
    fn default() -> Self {
        DriftConfig {
            window: 50,
            max_age: None,
            min_calls: 10,
            invalid_output: Some(Threshold::at(0.2)),
            low_confidence: Some(Threshold::at(0.3)),
        }
    }
}

/// Which rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriftSignal {
    /// Invalid output (failure class `invalid_output`).
    InvalidOutput,
    /// Confidence below the task's threshold (failure class `low_confidence`).
    LowConfidence,
}

impl DriftSignal {
    /// `"invalid_output"` or `"low_confidence"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DriftSignal::InvalidOutput => FailureClass::InvalidOutput.as_str(),
            DriftSignal::LowConfidence => FailureClass::LowConfidence.as_str(),
        }
    }
}

/// Whether an alarm fired or re-armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The rate reached `fire_at`.
    Fired,
    /// The rate fell below `rearm_below`: the alarm is armed again.
    Recovered,
}

/// What the hook is told.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftEvent {
    /// The task.
    pub task: &'static str,
    /// The task's contract version.
    pub contract_version: &'static str,
    /// Which rate.
    pub signal: DriftSignal,
    /// Fired or recovered.
    pub transition: Transition,
    /// The rate over the window.
    pub rate: f64,
    /// Calls in the window.
    pub calls: usize,
    /// The threshold crossed (`fire_at` or `rearm_below`).
    pub threshold: f64,
    /// The id of the call that tipped it.
    pub call_id: String,
}

impl fmt::Display for DriftEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.transition {
            Transition::Fired => "reached",
            Transition::Recovered => "fell below",
        };
        write!(
            f,
            "drift {}: task `{}` {} rate {:.0}% over the last {} calls {verb} {:.0}%",
            match self.transition {
                Transition::Fired => "alarm",
                Transition::Recovered => "recovered",
            },
            self.task,
            self.signal.as_str(),
            self.rate * 100.0,
            self.calls,
            self.threshold * 100.0
        )
    }
}

type Hook = Box<dyn Fn(&DriftEvent) + Send + Sync>;

/// Per-task rolling windows of invalid-output and low-confidence rates, with an alarm each.
/// An [`Observer`]: register it with `Harness::builder().observer(...)` (an `Arc` of it, to keep a handle).
pub struct DriftAlarm {
    config: DriftConfig,
    tasks: Mutex<HashMap<&'static str, Window>>,
    hook: Option<Hook>,
    fired: AtomicU64,
}

impl fmt::Debug for DriftAlarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriftAlarm")
            .field("config", &self.config)
            .field("fired", &self.fired())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Window {
    calls: VecDeque<(Instant, bool, bool)>,
    invalid: usize,
    low: usize,
    firing: [bool; 2],
    fired: [u64; 2],
}

impl Window {
    fn count(&self, signal: DriftSignal) -> usize {
        match signal {
            DriftSignal::InvalidOutput => self.invalid,
            DriftSignal::LowConfidence => self.low,
        }
    }
}

impl DriftAlarm {
    /// An alarm with no hook (it still counts and logs).
    pub fn new(config: DriftConfig) -> DriftAlarm {
        DriftAlarm {
            config,
            tasks: Mutex::new(HashMap::new()),
            hook: None,
            fired: AtomicU64::new(0),
        }
    }

    /// Calls `hook` whenever an alarm fires or recovers. It runs on the task's caller, after the
    /// call's outcome is decided: keep it short (send to a channel for anything slow).
    pub fn on_drift(mut self, hook: impl Fn(&DriftEvent) + Send + Sync + 'static) -> DriftAlarm {
        self.hook = Some(Box::new(hook));
        self
    }

    /// How many times any alarm has fired.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
    }

    /// How many times the alarm for `task` and `signal` has fired.
    pub fn fired_for(&self, task: &str, signal: DriftSignal) -> u64 {
        self.lock()
            .get(task)
            .map_or(0, |w| w.fired[signal as usize])
    }

    /// Whether the alarm for `task` and `signal` is firing now.
    pub fn is_firing(&self, task: &str, signal: DriftSignal) -> bool {
        self.lock()
            .get(task)
            .is_some_and(|w| w.firing[signal as usize])
    }

    /// The current rate for `task` and `signal`, and the calls it is over.
    pub fn rate(&self, task: &str, signal: DriftSignal) -> Option<(f64, usize)> {
        let tasks = self.lock();
        let w = tasks.get(task)?;
        let n = w.calls.len();
        (n > 0).then(|| (w.count(signal) as f64 / n as f64, n))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Window>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one call of `task` and returns the alarms it fired or re-armed.
    fn record(
        &self,
        task: &'static str,
        invalid: bool,
        low: bool,
        now: Instant,
    ) -> Vec<(DriftSignal, Transition, f64, usize, f64)> {
        let c = &self.config;
        let mut tasks = self.lock();
        let w = tasks.entry(task).or_default();
        w.calls.push_back((now, invalid, low));
        w.invalid += usize::from(invalid);
        w.low += usize::from(low);
        while let Some(&(at, i, l)) = w.calls.front() {
            let too_many = w.calls.len() > c.window.max(1);
            let too_old = c
                .max_age
                .is_some_and(|age| now.saturating_duration_since(at) > age);
            if !(too_many || too_old) {
                break;
            }
            w.calls.pop_front();
            w.invalid -= usize::from(i);
            w.low -= usize::from(l);
        }
        let n = w.calls.len();
        let mut changes = Vec::new();
        if n < c.min_calls.max(1) {
            return changes;
        }
        for (signal, threshold) in [
            (DriftSignal::InvalidOutput, c.invalid_output),
            (DriftSignal::LowConfidence, c.low_confidence),
        ] {
            let Some(t) = threshold else { continue };
            let rate = w.count(signal) as f64 / n as f64;
            let firing = &mut w.firing[signal as usize];
            if !*firing && rate >= t.fire_at {
                *firing = true;
                w.fired[signal as usize] += 1;
                changes.push((signal, Transition::Fired, rate, n, t.fire_at));
            } else if *firing && rate < t.rearm_below.min(t.fire_at) {
                *firing = false;
                changes.push((signal, Transition::Recovered, rate, n, t.rearm_below));
            }
        }
        changes
    }
}

impl Observer for DriftAlarm {
    fn on_call_end(&self, call: &CallEnd<'_>) {
        let attempts = &call.report.attempts;
        // Only calls in which the model answered at all say anything about its output.
        if !attempts.iter().any(|a| a.raw.is_some()) {
            return;
        }
        let had = |class| attempts.iter().any(|a| a.failure == Some(class));
        let invalid = had(FailureClass::InvalidOutput);
        let low = had(FailureClass::LowConfidence);
        let task = call.contract.name;
        let changes = self.record(task, invalid, low, Instant::now());
        for (signal, transition, rate, calls, threshold) in changes {
            let event = DriftEvent {
                task,
                contract_version: call.contract.version,
                signal,
                transition,
                rate,
                calls,
                threshold,
                call_id: call.report.call_id.clone(),
            };
            match transition {
                Transition::Fired => {
                    self.fired.fetch_add(1, Ordering::Relaxed);
                    // `monotonic_counter.*` becomes a counter under tracing-opentelemetry's
                    // MetricsLayer.
                    tracing::warn!(
                        task,
                        signal = signal.as_str(),
                        rate,
                        calls,
                        threshold,
                        call_id = %event.call_id,
                        monotonic_counter.harness_drift_alarms = 1u64,
                        "{event}"
                    );
                }
                Transition::Recovered => tracing::info!(
                    task,
                    signal = signal.as_str(),
                    rate,
                    calls,
                    threshold,
                    "{event}"
                ),
            }
            if let Some(hook) = &self.hook {
                hook(&event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(window: usize, max_age: Option<Duration>) -> DriftAlarm {
        DriftAlarm::new(DriftConfig {
            window,
            max_age,
            min_calls: 4,
            invalid_output: Some(Threshold {
                fire_at: 0.5,
                rearm_below: 0.25,
            }),
            low_confidence: None,
        })
    }

    #[test]
    fn fires_once_then_rearms_with_hysteresis() {
        let a = alarm(8, None);
        let t = Instant::now();
        let counts = std::cell::Cell::new((0, 0));
        let feed = |bad: bool| {
            for (_, tr, ..) in a.record("t", bad, false, t) {
                let (f, r) = counts.get();
                counts.set(match tr {
                    Transition::Fired => (f + 1, r),
                    Transition::Recovered => (f, r + 1),
                });
            }
        };
        for _ in 0..4 {
            feed(false);
        }
        for _ in 0..6 {
            feed(true); // the rate climbs past 50 % and stays there: one alarm
        }
        assert_eq!(counts.get(), (1, 0));
        for _ in 0..5 {
            feed(false); // 3 bad of 8 = 37.5 %: below fire_at, not yet below rearm_below
        }
        assert_eq!(counts.get(), (1, 0));
        for _ in 0..2 {
            feed(false); // 1 of 8 = 12.5 %: re-armed
        }
        assert_eq!(counts.get(), (1, 1));
        for _ in 0..4 {
            feed(true);
        }
        assert_eq!(counts.get(), (2, 1));
    }

    #[test]
    fn old_calls_leave_the_window() {
        let a = alarm(100, Some(Duration::from_secs(60)));
        let t0 = Instant::now();
        for _ in 0..4 {
            a.record("t", true, false, t0);
        }
        assert!(a.lock()["t"].firing[0]);
        let later = t0 + Duration::from_secs(120);
        for _ in 0..4 {
            a.record("t", false, false, later);
        }
        let tasks = a.lock();
        assert_eq!(tasks["t"].calls.len(), 4);
        assert!(!tasks["t"].firing[0]);
    }
}
