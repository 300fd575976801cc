//! [`Metrics`]: an [`Observer`] that turns every finished call into the GenAI client metrics
//! (per attempt) and harness's own counters (per task), kept in memory for
//! [`snapshot`](Metrics::snapshot) and, with feature `otel`, exported through an OpenTelemetry
//! [`Meter`](opentelemetry::metrics::Meter).
//!
//! ```
//! use harness_core::telemetry::Metrics;
//! use harness_core::Harness;
//!
//! let metrics = Metrics::new();
//! let harness = Harness::builder().observer(metrics.clone()).build()?;
//! # let _ = harness;
//! // ... run tasks ...
//! let snap = metrics.snapshot();
//! for (task, stats) in &snap.tasks {
//!     println!("{task}: {} calls, pass rate {:?}", stats.calls, stats.pass_rate());
//! }
//! # Ok::<(), harness_core::ConfigError>(())
//! ```

mod histogram;
#[cfg(feature = "otel")]
mod otel;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

pub use histogram::Histogram;

use crate::contract::{ActionKind, FailureClass, RepairKind};
use crate::observe::names as n;
use crate::observe::{CallEnd, EndStatus, Observer};
use crate::outcome::Attempt;
use crate::outcome::PriceTable;

/// Records metrics from every finished call. Cheap to clone: clones share their counts, so keep
/// one to read [`snapshot`](Self::snapshot)s and give the harness another.
#[derive(Clone, Debug)]
pub struct Metrics {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Arc<Mutex<State>>,
    prices: PriceTable,
    #[cfg(feature = "otel")]
    otel: Option<otel::Instruments>,
}

#[derive(Debug, Default)]
struct State {
    tasks: BTreeMap<&'static str, TaskStats>,
    /// provider → model → stats.
    models: BTreeMap<String, BTreeMap<String, ModelStats>>,
}

/// Counts for one task.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskStats {
    /// Calls finished.
    pub calls: u64,
    /// Calls that ended in a model answer.
    pub answers: u64,
    /// Calls answered on their first attempt.
    pub first_try_answers: u64,
    /// Calls that ended in the task's default.
    pub defaults: u64,
    /// Calls escalated to a human.
    pub escalated: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Provider attempts, over all calls.
    pub attempts: u64,
    /// Attempts per call.
    pub attempts_per_call: Histogram,
    /// Failed attempts by failure class (validation failures and provider errors alike).
    pub failures: BTreeMap<FailureClass, u64>,
    /// Retries, by the failure class that caused them.
    pub retries: BTreeMap<FailureClass, u64>,
    /// Reasks, by failure class.
    pub reasks: BTreeMap<FailureClass, u64>,
    /// Fallbacks, by failure class.
    pub fallbacks: BTreeMap<FailureClass, u64>,
    /// Escalations, by failure class.
    pub escalations: BTreeMap<FailureClass, u64>,
    /// The lenient parser's repairs over all attempts, by kind (its stable name in metrics).
    pub repairs: BTreeMap<RepairKind, u64>,
    /// Input tokens billed, over all attempts.
    pub input_tokens: u64,
    /// Output tokens billed, over all attempts.
    pub output_tokens: u64,
    /// Cost in USD of the calls whose prices are known; `None` (unknown, not 0) while no call's
    /// price is known. Calls of unknown cost add nothing: see [`unpriced_calls`](Self::unpriced_calls).
    pub cost_usd: Option<f64>,
    /// Calls with a known cost.
    pub priced_calls: u64,
    /// Calls whose cost is unknown: a model of theirs has no price.
    pub unpriced_calls: u64,
}

impl TaskStats {
    fn new() -> Self {
        TaskStats {
            calls: 0,
            answers: 0,
            first_try_answers: 0,
            defaults: 0,
            escalated: 0,
            failed: 0,
            attempts: 0,
            attempts_per_call: Histogram::new(&n::ATTEMPT_BUCKETS),
            failures: BTreeMap::new(),
            retries: BTreeMap::new(),
            reasks: BTreeMap::new(),
            fallbacks: BTreeMap::new(),
            escalations: BTreeMap::new(),
            repairs: BTreeMap::new(),
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: None,
            priced_calls: 0,
            unpriced_calls: 0,
        }
    }

    /// The share of calls that ended in a model answer (not a default, escalation or failure).
    pub fn pass_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.answers as f64 / self.calls as f64)
    }

    /// The share of calls answered on their first attempt.
    pub fn first_try_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.first_try_answers as f64 / self.calls as f64)
    }

    /// The cost as a report shows it: `$0.001234`, or `unknown` when no call's price is known,
    /// with `(N calls unpriced)` when some calls' cost is unknown.
    pub fn cost_display(&self) -> String {
        let known = match self.cost_usd {
            Some(c) => format!("${c:.6}"),
            None => return "unknown".to_owned(),
        };
        match self.unpriced_calls {
            0 => known,
            1 => format!("{known} (+1 call of unknown cost)"),
            n => format!("{known} (+{n} calls of unknown cost)"),
        }
    }

    /// Failed attempts of one class.
    pub fn failures_of(&self, class: FailureClass) -> u64 {
        self.failures.get(&class).copied().unwrap_or(0)
    }
}

/// The GenAI client metrics of one provider and model (per attempt).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelStats {
    /// Attempts made.
    pub attempts: u64,
    /// `gen_ai.client.operation.duration`, in seconds.
    pub duration: Histogram,
    /// `gen_ai.client.token.usage` of input tokens.
    pub input_tokens: Histogram,
    /// `gen_ai.client.token.usage` of output tokens.
    pub output_tokens: Histogram,
    /// Failed attempts by `error.type`.
    pub errors: BTreeMap<&'static str, u64>,
}

impl ModelStats {
    fn new() -> Self {
        ModelStats {
            attempts: 0,
            duration: Histogram::new(&n::DURATION_BUCKETS),
            input_tokens: Histogram::new(&n::TOKEN_BUCKETS),
            output_tokens: Histogram::new(&n::TOKEN_BUCKETS),
            errors: BTreeMap::new(),
        }
    }
}

/// A copy of the counts at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// By task name.
    pub tasks: BTreeMap<String, TaskStats>,
    /// By provider, then model (the model asked for).
    pub models: BTreeMap<String, BTreeMap<String, ModelStats>>,
}

impl MetricsSnapshot {
    /// One task's counts.
    pub fn task(&self, name: &str) -> Option<&TaskStats> {
        self.tasks.get(name)
    }

    /// One model's attempt metrics.
    pub fn model(&self, provider: &str, model: &str) -> Option<&ModelStats> {
        self.models.get(provider).and_then(|m| m.get(model))
    }

    /// Pass rate by task.
    pub fn pass_rates(&self) -> BTreeMap<&str, f64> {
        self.tasks
            .iter()
            .filter_map(|(k, v)| v.pass_rate().map(|r| (k.as_str(), r)))
            .collect()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Metrics kept in memory, with costs from the built-in prices for calls whose report has no
    /// cost of its own.
    pub fn new() -> Self {
        Metrics::with_prices(PriceTable::with_defaults())
    }

    /// Metrics that price calls without a `cost_usd` of their own with `prices`.
    pub fn with_prices(prices: PriceTable) -> Self {
        Metrics {
            shared: Arc::new(Shared {
                state: Arc::default(),
                prices,
                #[cfg(feature = "otel")]
                otel: None,
            }),
        }
    }

    /// Metrics that are also exported through `meter` (e.g. the one
    /// [`otlp::Otlp::meter`](crate::telemetry::otlp::Otlp::meter) gives), with the conventions'
    /// bucket boundaries. The counters are read from the in-memory counts when the SDK collects
    /// (so counts `self` already has are exported too, and [`reset`](Self::reset) restarts
    /// them); the histograms see only the calls recorded from now on.
    #[cfg(feature = "otel")]
    pub fn with_meter(self, meter: &opentelemetry::metrics::Meter) -> Self {
        let state = self.shared.state.clone();
        let prices = self.shared.prices.clone();
        let otel = otel::Instruments::new(meter, state.clone());
        Metrics {
            shared: Arc::new(Shared {
                state,
                prices,
                otel: Some(otel),
            }),
        }
    }

    /// A copy of the counts so far.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let state = lock(&self.shared.state);
        MetricsSnapshot {
            tasks: state
                .tasks
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            models: state.models.clone(),
        }
    }

    /// Forgets every count.
    pub fn reset(&self) {
        *lock(&self.shared.state) = State::default();
    }

    /// Records one finished call (what [`Observer::on_call_end`] does).
    pub fn record(&self, end: &CallEnd<'_>) {
        let report = end.report;
        let ended = end.status;
        let cost = report
            .cost_usd
            .or_else(|| self.shared.prices.report_cost(report));
        {
            let mut state = lock(&self.shared.state);
            let task = state
                .tasks
                .entry(end.contract.name)
                .or_insert_with(TaskStats::new);
            task.calls += 1;
            match ended {
                EndStatus::Answer => {
                    task.answers += 1;
                    if report.attempts.len() == 1 {
                        task.first_try_answers += 1;
                    }
                }
                EndStatus::Default(_) => task.defaults += 1,
                EndStatus::Escalated(_) => task.escalated += 1,
                EndStatus::Failed(_) => task.failed += 1,
            }
            task.attempts += report.attempts.len() as u64;
            task.attempts_per_call.record(report.attempts.len() as f64);
            task.input_tokens += report.usage.input_tokens;
            task.output_tokens += report.usage.output_tokens;
            match cost {
                Some(c) => {
                    *task.cost_usd.get_or_insert(0.0) += c;
                    task.priced_calls += 1;
                }
                None => task.unpriced_calls += 1,
            }
            for a in &report.attempts {
                if let Some(class) = a.failure {
                    *task.failures.entry(class).or_default() += 1;
                }
                for r in &a.repairs {
                    *task.repairs.entry(r.kind()).or_default() += 1;
                }
            }
            for action in &report.actions {
                let counts = match action.action {
                    ActionKind::Retry => &mut task.retries,
                    ActionKind::Reask => &mut task.reasks,
                    ActionKind::Fallback => &mut task.fallbacks,
                    ActionKind::Escalate => &mut task.escalations,
                    ActionKind::Default | ActionKind::Fail | ActionKind::Proceed => continue,
                };
                *counts.entry(action.class).or_default() += 1;
            }
            for a in &report.attempts {
                record_attempt(&mut state.models, a);
            }
        }
        #[cfg(feature = "otel")]
        if let Some(otel) = &self.shared.otel {
            otel.record(end);
        }
    }
}

fn record_attempt(models: &mut BTreeMap<String, BTreeMap<String, ModelStats>>, a: &Attempt) {
    let by_model = match models.get_mut(a.provider.as_str()) {
        Some(m) => m,
        None => models.entry(a.provider.clone()).or_default(),
    };
    let stats = match by_model.get_mut(a.model.as_str()) {
        Some(s) => s,
        None => by_model
            .entry(a.model.clone())
            .or_insert_with(ModelStats::new),
    };
    stats.attempts += 1;
    stats.duration.record(a.latency.as_secs_f64());
    if a.usage.total() > 0 {
        stats.input_tokens.record(a.usage.input_tokens as f64);
        stats.output_tokens.record(a.usage.output_tokens as f64);
    }
    if let Some(class) = a.failure {
        *stats.errors.entry(class.as_str()).or_default() += 1;
    }
}

impl Observer for Metrics {
    fn on_call_end(&self, call: &CallEnd<'_>) {
        self.record(call);
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // Counts stay usable after a panic elsewhere: a poisoned lock still holds valid numbers.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
