//! The same measurements, through OpenTelemetry instruments (feature `otel`).
//!
//! The per-attempt histograms (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`,
//! `harness.task.attempts`) are recorded as calls end: a histogram cannot be rebuilt from totals.
//! Every counter and the pass rate are observable: the SDK reads them from the in-memory counts
//! when it collects, on its export thread, so they cost the caller's thread nothing beyond the
//! in-memory update [`Metrics::record`](super::Metrics::record) makes anyway.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{
    AsyncInstrument, Histogram, Meter, ObservableCounter, ObservableGauge,
};

use super::{State, TaskStats, lock};
use crate::contract::FailureClass;
use crate::observe::CallEnd;
use crate::observe::names as n;

/// The instruments, created once per [`Metrics`](super::Metrics).
pub(super) struct Instruments {
    duration: Histogram<f64>,
    tokens: Histogram<u64>,
    attempts: Histogram<u64>,
    /// Kept alive: the SDK calls their callbacks while they exist.
    _observed: Vec<ObservableCounter<u64>>,
    _cost: ObservableCounter<f64>,
    _pass_rate: ObservableGauge<f64>,
}

impl std::fmt::Debug for Instruments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instruments").finish_non_exhaustive()
    }
}

/// What a counter reads from one task's counts: `(value, extra attribute)` pairs.
type Read = fn(&TaskStats) -> Vec<(u64, Option<KeyValue>)>;

fn by_class(counts: &BTreeMap<FailureClass, u64>) -> Vec<(u64, Option<KeyValue>)> {
    counts
        .iter()
        .map(|(class, count)| {
            let class = KeyValue::new(n::HARNESS_FAILURE_CLASS, class.as_str());
            (*count, Some(class))
        })
        .collect()
}

fn status(value: u64, name: &'static str) -> (u64, Option<KeyValue>) {
    (value, Some(KeyValue::new(n::HARNESS_STATUS, name)))
}

fn token(value: u64, kind: &'static str) -> (u64, Option<KeyValue>) {
    (value, Some(KeyValue::new(n::GEN_AI_TOKEN_TYPE, kind)))
}

/// The counters: name, unit, description, and how each reads a task's counts.
const COUNTERS: [(&str, &str, &str, Read); 9] = [
    (
        n::HARNESS_TASK_CALLS,
        "{call}",
        "Finished task calls, by how they ended.",
        |t| {
            vec![
                status(t.answers, n::STATUS_ANSWER),
                status(t.defaults, n::STATUS_DEFAULT),
                status(t.escalated, n::STATUS_ESCALATED),
                status(t.failed, n::STATUS_FAILED),
            ]
        },
    ),
    (
        n::HARNESS_TASK_RETRIES,
        "{retry}",
        "Retries, by the failure that caused them.",
        |t| by_class(&t.retries),
    ),
    (
        n::HARNESS_TASK_REASKS,
        "{reask}",
        "Reasks, by the failure that caused them.",
        |t| by_class(&t.reasks),
    ),
    (
        n::HARNESS_TASK_FALLBACKS,
        "{fallback}",
        "Fallbacks, by the failure that caused them.",
        |t| by_class(&t.fallbacks),
    ),
    (
        n::HARNESS_TASK_ESCALATIONS,
        "{escalation}",
        "Escalations, by the failure that caused them.",
        |t| by_class(&t.escalations),
    ),
    (
        n::HARNESS_TASK_FAILURES,
        "{attempt}",
        "Failed attempts, by failure class.",
        |t| by_class(&t.failures),
    ),
    (
        n::HARNESS_TASK_TOKENS,
        n::UNIT_TOKENS,
        "Tokens billed, by task.",
        |t| {
            vec![
                token(t.input_tokens, n::TOKEN_TYPE_INPUT),
                token(t.output_tokens, n::TOKEN_TYPE_OUTPUT),
            ]
        },
    ),
    (
        n::HARNESS_TASK_REPAIRS,
        "{repair}",
        "The lenient parser's repairs, by kind (its stable name).",
        |t| {
            t.repairs
                .iter()
                .map(|(kind, count)| (*count, Some(KeyValue::new(n::HARNESS_REPAIR, kind.name()))))
                .collect()
        },
    ),
    (
        n::HARNESS_TASK_UNPRICED_CALLS,
        "{call}",
        "Calls whose cost is unknown: a model without a price. They add nothing to harness.task.cost.",
        |t| vec![(t.unpriced_calls, None)],
    ),
];

/// Reports `read`'s values for every task, leaving out zeros (as a counter nothing was added to
/// has no series).
fn observe_counts(state: &Mutex<State>, read: Read, observer: &dyn AsyncInstrument<u64>) {
    let state = lock(state);
    for (task, stats) in &state.tasks {
        for (value, extra) in read(stats) {
            if value == 0 {
                continue;
            }
            let task = KeyValue::new(n::HARNESS_TASK_NAME, *task);
            match extra {
                Some(kv) => observer.observe(value, &[task, kv]),
                None => observer.observe(value, &[task]),
            }
        }
    }
}

impl Instruments {
    pub(super) fn new(meter: &Meter, state: Arc<Mutex<State>>) -> Self {
        let observed = COUNTERS
            .iter()
            .map(|&(name, unit, description, read)| {
                let state = state.clone();
                meter
                    .u64_observable_counter(name)
                    .with_unit(unit)
                    .with_description(description)
                    .with_callback(move |observer| observe_counts(&state, read, observer))
                    .build()
            })
            .collect();
        let costs = state.clone();
        let rates = state;
        Instruments {
            duration: meter
                .f64_histogram(n::GEN_AI_CLIENT_OPERATION_DURATION)
                .with_unit(n::UNIT_SECONDS)
                .with_description("GenAI operation duration.")
                .with_boundaries(n::DURATION_BUCKETS.to_vec())
                .build(),
            tokens: meter
                .u64_histogram(n::GEN_AI_CLIENT_TOKEN_USAGE)
                .with_unit(n::UNIT_TOKENS)
                .with_description("Number of input and output tokens used.")
                .with_boundaries(n::TOKEN_BUCKETS.to_vec())
                .build(),
            attempts: meter
                .u64_histogram(n::HARNESS_TASK_ATTEMPTS)
                .with_unit(n::UNIT_ATTEMPTS)
                .with_description("Provider attempts per task call.")
                .with_boundaries(n::ATTEMPT_BUCKETS.to_vec())
                .build(),
            _observed: observed,
            _cost: meter
                .f64_observable_counter(n::HARNESS_TASK_COST)
                .with_unit(n::UNIT_USD)
                .with_description("Cost in US dollars of calls whose prices are known.")
                .with_callback(move |observer| {
                    // An unknown cost is not 0: a task none of whose calls is priced has no series.
                    let state = lock(&costs);
                    for (task, stats) in &state.tasks {
                        if let Some(cost) = stats.cost_usd {
                            observer.observe(cost, &[KeyValue::new(n::HARNESS_TASK_NAME, *task)]);
                        }
                    }
                })
                .build(),
            _pass_rate: meter
                .f64_observable_gauge(n::HARNESS_TASK_PASS_RATE)
                .with_unit("1")
                .with_description("Share of a task's calls that ended in a model answer.")
                .with_callback(move |observer| {
                    let state = lock(&rates);
                    for (task, stats) in &state.tasks {
                        if let Some(rate) = stats.pass_rate() {
                            observer.observe(rate, &[KeyValue::new(n::HARNESS_TASK_NAME, *task)]);
                        }
                    }
                })
                .build(),
        }
    }

    /// Records the histograms of one finished call (the counters are read from the in-memory
    /// counts when the SDK collects).
    pub(super) fn record(&self, end: &CallEnd<'_>) {
        let report = end.report;
        for a in &report.attempts {
            let mut attrs = Vec::with_capacity(5);
            attrs.push(KeyValue::new(n::GEN_AI_OPERATION_NAME, n::OPERATION_CHAT));
            attrs.push(KeyValue::new(n::GEN_AI_PROVIDER_NAME, a.provider.clone()));
            attrs.push(KeyValue::new(n::GEN_AI_REQUEST_MODEL, a.model.clone()));
            if let Some(m) = &a.response_model {
                attrs.push(KeyValue::new(n::GEN_AI_RESPONSE_MODEL, m.clone()));
            }
            if a.usage.total() > 0 {
                attrs.push(KeyValue::new(n::GEN_AI_TOKEN_TYPE, n::TOKEN_TYPE_INPUT));
                self.tokens.record(a.usage.input_tokens, &attrs);
                attrs.pop();
                attrs.push(KeyValue::new(n::GEN_AI_TOKEN_TYPE, n::TOKEN_TYPE_OUTPUT));
                self.tokens.record(a.usage.output_tokens, &attrs);
                attrs.pop();
            }
            if let Some(class) = a.failure {
                attrs.push(KeyValue::new(n::ERROR_TYPE, class.as_str()));
            }
            self.duration.record(a.latency.as_secs_f64(), &attrs);
        }
        self.attempts.record(
            report.attempts.len() as u64,
            &[KeyValue::new(n::HARNESS_TASK_NAME, end.contract.name)],
        );
    }
}
