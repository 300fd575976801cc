//! Failure-mode drills (feature `testing`): what a task does, step by step, when each thing that
//! can go wrong does.
//!
//! [`run`] calls a task once per scenario against chaos servers on 127.0.0.1: once per fault
//! class in [`Fault::ALL`] (that fault on the first request, good answers after it), once with a
//! first answer below the confidence threshold (for outputs with a confidence field), once with
//! the provider down (every request of every provider fails with a 503) and once with a model
//! that never answers validly (every answer drifts from the schema). For each it reports the
//! actions the harness took in order, how the call ended, the attempts, the time taken and the
//! log events the harness emitted.
//!
//! ```no_run
//! # use harness_core::testing::drill::{self, DrillOptions};
//! # async fn demo<T: harness_core::LlmOutput>(contract: &'static harness_core::TaskContract) {
//! let report = drill::run::<T>(contract, vec![("review", "Arrived broken".into())], DrillOptions::new()).await;
//! println!("{report}");
//! # }
//! ```
//!
//! **Time.** Real timeouts make stalls slow, so by default a drill runs a copy of the contract
//! with every duration in it (per-attempt timeout, deadline, backoffs) scaled by the same factor,
//! so that the per-attempt timeout is 250 ms ([`DrillOptions::attempt_timeout`]). The chaos
//! server's slow first byte (2 s) is scaled with it; its stalls outlast the scaled deadline. A
//! `Retry-After: 1` from the server is not scaled: it stays one second, so against a scaled
//! deadline it can skip a retry that the real deadline would allow. [`DrillOptions::real_time`]
//! runs the contract as declared. The report states the factor; its times are the scaled run's.
//!
//! **Logs.** Each scenario runs under its own `tracing` subscriber that captures the events of
//! `harness_core` (at every level); they are not forwarded to the process's subscriber.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing::instrument::WithSubscriber;

use crate::context::{ContextSource, SourceError, source_fn};
use crate::contract::{Action, ActionKind, Backoff, Chain, FailureClass, TaskContract};
use crate::engine::{DefaultFn, Harness, HarnessBuilder, Inputs};
use crate::observe::{CallEnd, Observer};
use crate::outcome::{ErrorKind, Resolution, TaskResult};
use crate::output::parse::ParseLimits;
use crate::output::{Checked, LlmOutput, check_value};
use crate::provider::OpenAiCompatible;
use crate::testing::chaos::example_for;
use crate::testing::fixtures::Capture;
use crate::testing::{ChaosServer, Fault, Reply};

/// The per-attempt timeout drills scale contracts to by default.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);

/// The chaos server's default slow first byte, scaled with the contract.
const SLOW_FIRST_BYTE: Duration = Duration::from_secs(2);

/// How a drill runs.
#[derive(Clone)]
pub struct DrillOptions {
    attempt_timeout: Option<Duration>,
    answer: Option<String>,
    observers: Vec<Arc<dyn Observer>>,
    sources: Vec<(String, Arc<dyn ContextSource>)>,
}

impl fmt::Debug for DrillOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrillOptions")
            .field("attempt_timeout", &self.attempt_timeout)
            .field("answer", &self.answer)
            .field("observers", &self.observers.len())
            .field(
                "sources",
                &self.sources.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            attempt_timeout: Some(DEFAULT_ATTEMPT_TIMEOUT),
            answer: None,
            observers: Vec::new(),
            sources: Vec::new(),
        }
    }
}

impl DrillOptions {
    /// Scaled to a 250 ms per-attempt timeout, with an answer made from the output's schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scales every duration of the contract by one factor so that its per-attempt timeout
    /// becomes `timeout` (never slower than declared).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Runs the contract with its declared durations: stalls take the full timeout.
    pub fn real_time(mut self) -> Self {
        self.attempt_timeout = None;
        self
    }

    /// Adds an observer to the drill's harness, e.g. the one that raises your alerts, so that a
    /// drill shows which scenarios alert.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Registers a context source on the drill's harness, as
    /// [`HarnessBuilder::source`] does. A source the task declares (or falls back to) that is not
    /// given here is a stand-in that answers with no documents.
    pub fn source(mut self, name: impl Into<String>, source: impl ContextSource) -> Self {
        self.sources.push((name.into(), Arc::new(source)));
        self
    }

    /// The model's good answer (JSON text). Without it, one is made from the output's schema,
    /// which may break the output's own rules; the report says so when it does.
    pub fn answer(mut self, json: impl Into<String>) -> Self {
        self.answer = Some(json.into());
        self
    }
}

pub use super::fixtures::LogLine;

/// How one scenario went.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Its name: a fault's name, `low_confidence`, `provider_down` or `model_always_invalid`.
    pub name: String,
    /// What was injected, in words.
    pub injected: String,
    /// The contract steps the harness took, in order (`retry`, `reask`, `fallback(model)`,
    /// `escalate`, `default`, `fail`).
    pub actions: Vec<String>,
    /// How the call ended: `answer, first try`, `default after timeout`, `escalated after
    /// refusal`, `error: Timeout`.
    pub outcome: String,
    /// The failure class that decided the end (`None` for answers).
    pub class: Option<FailureClass>,
    /// The error kind, when the call failed.
    pub error: Option<ErrorKind>,
    /// How the call ended, as observers (audit, metrics, alerts) saw it: `answer`,
    /// `default/timeout`, `escalated/refusal`, `failed/provider_error`.
    pub status: Option<String>,
    /// Provider attempts made.
    pub attempts: usize,
    /// How long the call took (at the drill's time scale).
    pub elapsed: Duration,
    /// The events the harness logged during the call.
    pub logs: Vec<LogLine>,
}

impl Scenario {
    /// How many `harness decision` events were logged.
    pub fn decisions(&self) -> usize {
        self.logs
            .iter()
            .filter(|l| l.message == "harness decision")
            .count()
    }

    /// Whether the call ended in a model answer.
    pub fn answered(&self) -> bool {
        self.outcome.starts_with("answer")
    }
}

/// What a drill found, scenario by scenario. `Display` renders a table.
#[derive(Clone, Debug)]
pub struct DrillReport {
    /// The task's name.
    pub task: &'static str,
    /// The version of the contract drilled (the declared one, before scaling).
    pub contract_version: &'static str,
    /// The factor every duration of the contract was multiplied by (1 for real time).
    pub time_scale: f64,
    /// The per-attempt timeout the drill ran with.
    pub attempt_timeout: Duration,
    /// The deadline the drill ran with.
    pub deadline: Duration,
    /// Warnings about the drill's setup (e.g. a good answer that does not validate).
    pub notes: Vec<String>,
    /// The scenarios, in order.
    pub scenarios: Vec<Scenario>,
}

impl DrillReport {
    /// The scenario called `name`.
    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// The report as JSON, the drill evidence the readiness audit reads
    /// (`harness_core::registry::readiness`, documented in `docs/readiness.md`): format
    /// `harness.drill` version 1, with the task, its contract version and one entry per scenario
    /// (name, what was injected, the failure classes the harness decided on, the actions taken,
    /// how it ended, the deciding class, attempts, milliseconds). Logs are left out.
    pub fn to_json(&self) -> Value {
        let scenarios: Vec<Value> = self
            .scenarios
            .iter()
            .map(|s| {
                let mut handled: Vec<&str> = s
                    .logs
                    .iter()
                    .filter(|l| l.message == "harness decision")
                    .filter_map(|l| l.field("failure_class"))
                    .collect();
                handled.dedup();
                serde_json::json!({
                    "name": s.name,
                    "classes_handled": handled,
                    "injected": s.injected,
                    "actions": s.actions,
                    "outcome": s.outcome,
                    "answered": s.answered(),
                    "class": s.class.map(|c| c.as_str()),
                    "status": s.status,
                    "attempts": s.attempts,
                    "elapsed_ms": s.elapsed.as_secs_f64() * 1000.0,
                })
            })
            .collect();
        serde_json::json!({
            "format": "harness.drill",
            "format_version": 1,
            "task": self.task,
            "contract_version": self.contract_version,
            "time_scale": self.time_scale,
            "notes": self.notes,
            "scenarios": scenarios,
        })
    }
}

impl fmt::Display for DrillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Failure drill for `{}`: per-attempt timeout {:?}, deadline {:?}{}",
            self.task,
            self.attempt_timeout,
            self.deadline,
            if self.time_scale < 1.0 {
                format!(" (the contract's durations × {:.4})", self.time_scale)
            } else {
                String::new()
            }
        )?;
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        let rows: Vec<[String; 6]> = self
            .scenarios
            .iter()
            .map(|s| {
                let mut did = s.actions.join(" → ");
                if s.answered() {
                    did = if did.is_empty() {
                        "answer".into()
                    } else {
                        format!("{did} → answer")
                    };
                }
                [
                    s.name.clone(),
                    did,
                    s.outcome.clone(),
                    s.attempts.to_string(),
                    format!("{:.0?}", s.elapsed),
                    format!(
                        "{} ({} decision{})",
                        s.logs.len(),
                        s.decisions(),
                        if s.decisions() == 1 { "" } else { "s" }
                    ),
                ]
            })
            .collect();
        let head = [
            "scenario",
            "what the harness did",
            "outcome",
            "attempts",
            "took",
            "logs",
        ];
        let mut widths = head.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: [&str; 6]| -> fmt::Result {
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                let sep = if i == 0 { "" } else { " | " };
                let pad = w - c.chars().count();
                if i == 3 || i == 4 {
                    write!(f, "{sep}{}{c}", " ".repeat(pad))?;
                } else if i == 5 {
                    write!(f, "{sep}{c}")?;
                } else {
                    write!(f, "{sep}{c}{}", " ".repeat(pad))?;
                }
            }
            writeln!(f)
        };
        line(f, head)?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(f, "{}", rule.join("-+-"))?;
        for r in &rows {
            line(
                f,
                [&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]].map(String::as_str),
            )?;
        }
        Ok(())
    }
}

/// Drills `contract` for output `T` with `inputs`. A `default(...)` step ends in a `Config` error
/// without a value; use [`run_with_defaults`] to pass the task's defaults.
pub async fn run<T: LlmOutput>(
    contract: &'static TaskContract,
    inputs: Inputs,
    options: DrillOptions,
) -> DrillReport {
    drill::<T>(contract, inputs, options, None).await
}

/// [`run`], with the task's `default(...)` values.
pub async fn run_with_defaults<T: LlmOutput>(
    contract: &'static TaskContract,
    inputs: Inputs,
    options: DrillOptions,
    defaults: DefaultFn<'_, T>,
) -> DrillReport {
    drill::<T>(contract, inputs, options, Some(defaults)).await
}

/// One scenario's setup: what the primary server does first, and what every server does after.
struct Setup {
    name: String,
    injected: String,
    first: Option<Reply>,
    always: Option<Reply>,
    /// The declared source that fails on every fetch ("retrieval down").
    source_down: Option<&'static str>,
}

async fn drill<T: LlmOutput>(
    contract: &'static TaskContract,
    inputs: Inputs,
    options: DrillOptions,
    defaults: Option<DefaultFn<'_, T>>,
) -> DrillReport {
    let scale = match options.attempt_timeout {
        Some(t) if !contract.timeout.is_zero() => {
            (t.as_secs_f64() / contract.timeout.as_secs_f64()).min(1.0)
        }
        _ => 1.0,
    };
    let scaled: &'static TaskContract = if scale < 1.0 {
        // `Harness::run` takes a `&'static` contract: the scaled copy is leaked, a few hundred
        // bytes per drill.
        Box::leak(Box::new(scale_contract(contract, scale)))
    } else {
        contract
    };
    let threshold = scaled.confidence_threshold();
    let mut notes = Vec::new();
    let good = good_answer::<T>(scaled, options.answer.as_deref(), threshold);
    match check_value::<T>(&good, threshold, &ParseLimits::default()) {
        Checked::Valid { .. } => {}
        Checked::LowConfidence { .. } => notes.push(format!(
            "the good answer's confidence is below the threshold: {good}"
        )),
        Checked::Invalid { errors, .. } => notes.push(format!(
            "the good answer does not validate, pass one with DrillOptions::answer: {good}\n{errors}"
        )),
    }

    let mut setups: Vec<Setup> = Fault::ALL
        .iter()
        .map(|f| Setup {
            name: f.name().to_owned(),
            injected: format!("{f} on the first request"),
            first: Some(Reply::fault(*f)),
            always: None,
            source_down: None,
        })
        .collect();
    if let Some(t) = threshold {
        match low_confidence_answer::<T>(&good, t / 2.0) {
            Some(low) => setups.push(Setup {
                name: "low_confidence".into(),
                injected: format!("a first answer with confidence {}", t / 2.0),
                first: Some(Reply::json_content(low)),
                always: None,
                source_down: None,
            }),
            None => notes.push(
                "no low_confidence scenario: the confidence field was not found at the top level of the answer".into(),
            ),
        }
    }
    setups.push(Setup {
        name: "provider_down".into(),
        injected: "http_503 on every request, every provider".into(),
        first: None,
        always: Some(Reply::fault(Fault::Http503)),
        source_down: None,
    });
    setups.push(Setup {
        name: "model_always_invalid".into(),
        injected: "schema_drift on every answer, every provider".into(),
        first: None,
        always: Some(Reply::fault(Fault::SchemaDrift)),
        source_down: None,
    });
    for s in contract.sources {
        setups.push(Setup {
            name: format!("source_down:{}", s.name),
            injected: format!("source `{}` fails on every fetch", s.name),
            first: None,
            always: None,
            source_down: Some(s.name),
        });
    }

    let mut scenarios = Vec::with_capacity(setups.len());
    for setup in setups {
        scenarios
            .push(scenario::<T>(scaled, scale, &inputs, &good, setup, &options, defaults).await);
    }
    DrillReport {
        task: contract.name,
        contract_version: contract.version,
        time_scale: scale,
        attempt_timeout: scaled.timeout,
        deadline: scaled.effective_deadline(),
        notes,
        scenarios,
    }
}

/// The providers a contract's calls can reach: the primary and every named fallback provider.
fn provider_names(contract: &TaskContract) -> Vec<&'static str> {
    let mut names = vec![contract.provider.unwrap_or("drill")];
    for class in contract.applicable_classes() {
        for step in contract.steps(class) {
            if let Action::Fallback(t) = step {
                if let Some(p) = t.provider {
                    if !names.contains(&p) {
                        names.push(p);
                    }
                }
            }
        }
    }
    names
}

async fn scenario<T: LlmOutput>(
    contract: &'static TaskContract,
    scale: f64,
    inputs: &Inputs,
    good: &str,
    setup: Setup,
    options: &DrillOptions,
    defaults: Option<DefaultFn<'_, T>>,
) -> Scenario {
    let mut out = Scenario {
        name: setup.name.clone(),
        injected: setup.injected.clone(),
        actions: Vec::new(),
        outcome: String::new(),
        class: None,
        error: None,
        status: None,
        attempts: 0,
        elapsed: Duration::ZERO,
        logs: Vec::new(),
    };
    let (mut builder, servers) = match chaos_providers(contract, scale, good, &setup).await {
        Ok(started) => started,
        Err(e) => {
            out.outcome = format!("setup failed: {e}");
            return out;
        }
    };
    let seen = Arc::new(SeenStatus::default());
    builder = builder.observer(seen.clone());
    for o in &options.observers {
        builder = builder.observer(o.clone());
    }
    builder = with_sources(builder, contract, options, setup.source_down);
    let harness = match builder.default_model("drill-model").seed(0).build() {
        Ok(h) => h,
        Err(e) => {
            out.outcome = format!("setup failed: {e}");
            return out;
        }
    };

    // Only the engine's own events.
    let capture = Capture::targets("harness_core");
    let dispatch = tracing::Dispatch::new(capture.clone());
    let started = tokio::time::Instant::now();
    let result: TaskResult<T> = harness
        .run::<T>(contract, inputs.clone(), None, defaults)
        .with_subscriber(dispatch)
        .await;
    out.elapsed = started.elapsed();
    out.status = lock(&seen.0).take();
    out.logs = capture.take_events();
    drop(servers);

    describe(&mut out, &result);
    out
}

/// The drill's sources: the given ones, a stand-in with no documents for every other source the
/// contract names, and in a "retrieval down" scenario a source that always fails in place of
/// the one turned off.
fn with_sources(
    mut builder: HarnessBuilder,
    contract: &TaskContract,
    options: &DrillOptions,
    down: Option<&'static str>,
) -> HarnessBuilder {
    let mut names: Vec<&str> = Vec::new();
    for s in contract.sources {
        names.push(s.name);
        for step in contract.source_steps(s) {
            if let Action::FallbackSource { source } = step {
                names.push(source);
            }
        }
    }
    for name in names {
        builder = builder.source(name, source_fn(|_| async { Ok(Vec::new()) }));
    }
    for (name, source) in &options.sources {
        builder = builder.source(name.clone(), source.clone());
    }
    if let Some(name) = down {
        builder = builder.source(
            name,
            source_fn(|_| async { Err(SourceError::new("turned off by the drill")) }),
        );
    }
    builder
}

/// One chaos server per provider the contract names, the first playing `setup`'s script, and a
/// harness builder with an OpenAI-compatible provider for each.
async fn chaos_providers(
    contract: &'static TaskContract,
    scale: f64,
    good: &str,
    setup: &Setup,
) -> Result<(HarnessBuilder, Vec<ChaosServer>), String> {
    let stall = contract.effective_deadline() * 2 + Duration::from_secs(1);
    let slow = SLOW_FIRST_BYTE.mul_f64(scale);
    let mut servers = Vec::new();
    let mut builder = Harness::builder();
    for (i, name) in provider_names(contract).into_iter().enumerate() {
        let answer = good.to_owned();
        let mut b = ChaosServer::builder()
            .answer(move |_| answer.clone())
            .stall_for(stall)
            .slow_first_byte(slow);
        if i == 0 {
            b = b.script(setup.first.clone());
        }
        if let Some(r) = &setup.always {
            b = b.default_reply(r.clone());
        }
        let server = b.start().await.map_err(|e| e.to_string())?;
        let provider = OpenAiCompatible::builder(server.base_url())
            .build()
            .map_err(|e| e.to_string())?;
        builder = builder.provider(name, provider);
        servers.push(server);
    }
    Ok((builder, servers))
}

/// Fills in how the call went: attempts, actions, and how it ended.
fn describe<T>(out: &mut Scenario, result: &TaskResult<T>) {
    let report = match &result {
        Ok(o) => &o.report,
        Err(e) => e.report(),
    };
    out.attempts = report.attempts.len();
    out.actions = report
        .actions
        .iter()
        .map(|a| match a.action {
            ActionKind::Fallback => format!("fallback({})", a.detail),
            k => k.as_str().to_owned(),
        })
        .collect();
    let last_class = report.actions.last().map(|a| a.class);
    let last_action = report.actions.last().map(|a| a.action);
    match &result {
        Ok(o) => {
            out.outcome = match &o.resolution {
                Resolution::Answer(_) => format!("answer, {}", o.provenance),
                _ => o.summary(),
            };
            out.class = match &o.resolution {
                Resolution::Answer(_) => None,
                Resolution::Default { class, .. } => Some(*class),
                Resolution::Escalated(e) => Some(e.class),
            };
        }
        Err(e) => {
            out.error = Some(e.kind());
            out.class = last_class;
            out.outcome = match (e.kind(), last_action, last_class) {
                (ErrorKind::Config, Some(ActionKind::Default), Some(c)) => {
                    format!("default after {c} (no value given to the drill)")
                }
                (kind, _, _) => format!("error: {kind:?}"),
            };
        }
    }
}

/// A copy of `c` with every duration multiplied by `s`.
fn scale_contract(c: &TaskContract, s: f64) -> TaskContract {
    let scale_backoff = |b: &Backoff| Backoff {
        initial: b.initial.mul_f64(s),
        max: b.max.mul_f64(s),
        ..*b
    };
    let chains: Vec<Chain> = c
        .applicable_classes()
        .filter_map(|class| c.chain(class))
        .map(|chain| {
            let steps: Vec<Action> = chain
                .steps
                .iter()
                .map(|step| match step {
                    Action::Retry { times, backoff } => Action::Retry {
                        times: *times,
                        backoff: scale_backoff(backoff),
                    },
                    other => *other,
                })
                .collect();
            Chain {
                class: chain.class,
                steps: Box::leak(steps.into_boxed_slice()),
            }
        })
        .collect();
    TaskContract {
        timeout: c.timeout.mul_f64(s),
        deadline: c.deadline.map(|d| d.mul_f64(s)),
        chains: Box::leak(chains.into_boxed_slice()),
        policy: None,
        low_confidence_below: c.confidence_threshold(),
        ..*c
    }
}

/// The model's good answer: the given one, else an instance of the schema with a confident
/// confidence field.
fn good_answer<T: LlmOutput>(
    c: &TaskContract,
    given: Option<&str>,
    threshold: Option<f64>,
) -> String {
    if let Some(a) = given {
        return a.to_owned();
    }
    let example = example_for(&c.output_schema()).to_string();
    match threshold {
        Some(t) => low_confidence_answer::<T>(&example, (1.0 + t) / 2.0).unwrap_or(example),
        None => example,
    }
}

/// `good` with its confidence field set to `confidence`: the top-level number field that
/// [`LlmOutput::confidence`] reads.
fn low_confidence_answer<T: LlmOutput>(good: &str, confidence: f64) -> Option<String> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(good) else {
        return None;
    };
    map.iter()
        .filter(|(_, v)| v.is_number())
        .find_map(|(k, _)| {
            let mut m = map.clone();
            m.insert(k.clone(), Value::from(confidence));
            let v = Value::Object(m);
            let t: T = serde_json::from_value(v.clone()).ok()?;
            (t.confidence() == Some(confidence)).then(|| v.to_string())
        })
}

/// Remembers how the drill's call ended, as observers see it.
#[derive(Default)]
struct SeenStatus(Mutex<Option<String>>);

impl Observer for SeenStatus {
    fn on_call_end(&self, call: &CallEnd<'_>) {
        let (status, class) = call.status.parts();
        let rendered = match class {
            Some(class) => format!("{status}/{class}"),
            None => status.to_owned(),
        };
        *lock(&self.0) = Some(rendered);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{FallbackTarget, InputSpec, OutputSpec, Params, PolicySet};
    use crate::output::{FieldPath, ValidationErrors};

    // `label` and `count` are there to be skipped by the confidence search, never read.
    #[allow(dead_code)]
    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    struct Scored {
        label: String,
        score: f64,
        count: u32,
    }

    impl LlmOutput for Scored {
        const TYPE_NAME: &'static str = "Scored";
        const HAS_CONFIDENCE: bool = true;
        fn validate(&self, _: &FieldPath, _: &mut ValidationErrors) {}
        fn confidence(&self) -> Option<f64> {
            Some(self.score)
        }
    }

    const SLOW: Backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(8),
        multiplier: 2.0,
        jitter: true,
    };

    static POLICY: PolicySet = PolicySet {
        name: "Standard",
        chains: &[Chain {
            class: FailureClass::RateLimited,
            steps: &[Action::Retry {
                times: 3,
                backoff: SLOW,
            }],
        }],
        low_confidence_below: Some(0.6),
    };

    static CONTRACT: TaskContract = TaskContract {
        name: "score",
        module: "tests",
        description: "",
        version: "t",
        model: None,
        provider: Some("main"),
        system: None,
        prompt: Some("{x}"),
        inputs: &[InputSpec {
            name: "x",
            rust_type: "&str",
        }],
        output: OutputSpec {
            type_name: "Scored",
            has_confidence: true,
            schema: <Scored as LlmOutput>::output_schema,
        },
        timeout: Duration::from_secs(20),
        deadline: Some(Duration::from_secs(60)),
        chains: &[Chain {
            class: FailureClass::ProviderError,
            steps: &[
                Action::Retry {
                    times: 1,
                    backoff: SLOW,
                },
                Action::Fallback(FallbackTarget {
                    model: "b",
                    provider: Some("backup"),
                }),
                Action::Fallback(FallbackTarget {
                    model: "c",
                    provider: None,
                }),
            ],
        }],
        policy: Some(&POLICY),
        low_confidence_below: None,
        denied_repairs: &[],
        params: Params {
            temperature: None,
            max_tokens: None,
            seed: None,
        },
        sources: &[],
        plan: None,
    };

    #[test]
    fn scaling_multiplies_every_duration_and_keeps_the_policy_chains() {
        let c = scale_contract(&CONTRACT, 0.01);
        assert_eq!(c.timeout, Duration::from_millis(200));
        assert_eq!(c.deadline, Some(Duration::from_millis(600)));
        assert_eq!(c.confidence_threshold(), Some(0.6));
        assert!(c.policy.is_none());
        let rate = c.steps(FailureClass::RateLimited);
        assert_eq!(
            rate,
            &[Action::Retry {
                times: 3,
                backoff: Backoff {
                    initial: Duration::from_millis(10),
                    max: Duration::from_millis(80),
                    ..SLOW
                }
            }]
        );
        assert_eq!(c.max_attempts(), CONTRACT.max_attempts());
        assert_eq!(c.steps(FailureClass::ProviderError).len(), 3);
    }

    #[test]
    fn every_named_provider_gets_a_server() {
        assert_eq!(provider_names(&CONTRACT), ["main", "backup"]);
    }

    #[test]
    fn the_confidence_field_is_found_by_what_confidence_reads() {
        let good = r#"{"count":3,"label":"x","score":0.9}"#;
        let low = low_confidence_answer::<Scored>(good, 0.25).unwrap();
        let v: Value = serde_json::from_str(&low).unwrap();
        assert_eq!(v["score"], 0.25);
        assert_eq!(v["count"], 3);
        assert_eq!(low_confidence_answer::<Scored>("[1]", 0.25), None);
        // Without a given answer, the schema's example gets a confidence above the threshold.
        let made = good_answer::<Scored>(&CONTRACT, None, Some(0.6));
        let v: Value = serde_json::from_str(&made).unwrap();
        assert_eq!(v["score"], 0.8);
    }
}
