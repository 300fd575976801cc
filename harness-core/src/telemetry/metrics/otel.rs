//! The same measurements, through OpenTelemetry instruments (feature `otel`).

use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge};

use super::{State, lock};
use crate::contract::ActionKind;
use crate::observe::names as n;
use crate::observe::status_name;
use crate::observe::{CallEnd, EndStatus};

/// The instruments, created once per [`Metrics`](super::Metrics).
pub(super) struct Instruments {
    duration: Histogram<f64>,
    tokens: Histogram<u64>,
    calls: Counter<u64>,
    attempts: Histogram<u64>,
    retries: Counter<u64>,
    reasks: Counter<u64>,
    fallbacks: Counter<u64>,
    escalations: Counter<u64>,
    failures: Counter<u64>,
    task_tokens: Counter<u64>,
    cost: Counter<f64>,
    unpriced: Counter<u64>,
    _pass_rate: ObservableGauge<f64>,
}

impl std::fmt::Debug for Instruments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instruments").finish_non_exhaustive()
    }
}

impl Instruments {
    pub(super) fn new(meter: &Meter, state: Arc<Mutex<State>>) -> Self {
        let counter = |name: &'static str, unit: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build()
        };
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
            calls: counter(
                n::HARNESS_TASK_CALLS,
                "{call}",
                "Finished task calls, by how they ended.",
            ),
            attempts: meter
                .u64_histogram(n::HARNESS_TASK_ATTEMPTS)
                .with_unit(n::UNIT_ATTEMPTS)
                .with_description("Provider attempts per task call.")
                .with_boundaries(n::ATTEMPT_BUCKETS.to_vec())
                .build(),
            retries: counter(
                n::HARNESS_TASK_RETRIES,
                "{retry}",
                "Retries, by the failure that caused them.",
            ),
            reasks: counter(
                n::HARNESS_TASK_REASKS,
                "{reask}",
                "Reasks, by the failure that caused them.",
            ),
            fallbacks: counter(
                n::HARNESS_TASK_FALLBACKS,
                "{fallback}",
                "Fallbacks, by the failure that caused them.",
            ),
            escalations: counter(
                n::HARNESS_TASK_ESCALATIONS,
                "{escalation}",
                "Escalations, by the failure that caused them.",
            ),
            failures: counter(
                n::HARNESS_TASK_FAILURES,
                "{attempt}",
                "Failed attempts, by failure class.",
            ),
            task_tokens: counter(
                n::HARNESS_TASK_TOKENS,
                n::UNIT_TOKENS,
                "Tokens billed, by task.",
            ),
            cost: meter
                .f64_counter(n::HARNESS_TASK_COST)
                .with_unit(n::UNIT_USD)
                .with_description("Cost in US dollars of calls whose prices are known.")
                .build(),
            unpriced: counter(
                n::HARNESS_TASK_UNPRICED_CALLS,
                "{call}",
                "Calls whose cost is unknown: a model without a price. They add nothing to harness.task.cost.",
            ),
            _pass_rate: meter
                .f64_observable_gauge(n::HARNESS_TASK_PASS_RATE)
                .with_unit("1")
                .with_description("Share of a task's calls that ended in a model answer.")
                .with_callback(move |observer| {
                    let state = lock(&state);
                    for (task, stats) in &state.tasks {
                        if let Some(rate) = stats.pass_rate() {
                            observer.observe(rate, &[KeyValue::new(n::HARNESS_TASK_NAME, *task)]);
                        }
                    }
                })
                .build(),
        }
    }

    pub(super) fn record(&self, end: &CallEnd<'_>, ended: EndStatus, cost: Option<f64>) {
        let report = end.report;
        let task = KeyValue::new(n::HARNESS_TASK_NAME, end.contract.name);
        for a in &report.attempts {
            let mut attrs = Vec::with_capacity(6);
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
                self.failures.add(
                    1,
                    &[
                        task.clone(),
                        KeyValue::new(n::HARNESS_FAILURE_CLASS, class.as_str()),
                    ],
                );
            }
            self.duration.record(a.latency.as_secs_f64(), &attrs);
        }
        self.calls.add(
            1,
            &[
                task.clone(),
                KeyValue::new(n::HARNESS_STATUS, status_name(ended)),
            ],
        );
        self.attempts
            .record(report.attempts.len() as u64, std::slice::from_ref(&task));
        for action in &report.actions {
            let counter = match action.action {
                ActionKind::Retry => &self.retries,
                ActionKind::Reask => &self.reasks,
                ActionKind::Fallback => &self.fallbacks,
                ActionKind::Escalate => &self.escalations,
                ActionKind::Default | ActionKind::Fail => continue,
            };
            counter.add(
                1,
                &[
                    task.clone(),
                    KeyValue::new(n::HARNESS_FAILURE_CLASS, action.class.as_str()),
                ],
            );
        }
        if report.usage.total() > 0 {
            self.task_tokens.add(
                report.usage.input_tokens,
                &[
                    task.clone(),
                    KeyValue::new(n::GEN_AI_TOKEN_TYPE, n::TOKEN_TYPE_INPUT),
                ],
            );
            self.task_tokens.add(
                report.usage.output_tokens,
                &[
                    task.clone(),
                    KeyValue::new(n::GEN_AI_TOKEN_TYPE, n::TOKEN_TYPE_OUTPUT),
                ],
            );
        }
        // An unknown cost is not 0: it adds nothing to the cost counter, and is counted apart.
        match cost {
            Some(c) => self.cost.add(c, std::slice::from_ref(&task)),
            None => self.unpriced.add(1, std::slice::from_ref(&task)),
        }
    }
}
