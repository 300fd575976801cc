//! Failure contracts as plain data.
//!
//! `#[llm_task]` turns its attribute into a [`TaskContract`] constant; the engine reads nothing else.
//! Docs, drills, replay and evaluation read the same value. The exact semantics of every action are
//! written down in `docs/contracts.md`.

pub mod linked;
pub mod notation;
mod plan;
mod render;

use std::fmt;
use std::time::Duration;

use harness_spec::defaults;
use serde::Serialize;

pub use harness_spec::{ActionKind, FailureClass, RepairKind};
pub use notation::{NOTATION_VERSION, notation};
pub use plan::{ContextPlan, Keep, PLAN_COLUMNS, Section, SectionKind, Truncate, known_window};
pub use render::{ContractDoc, render_prompt};

/// Backoff between retries: capped exponential with full jitter by default.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub initial: Duration,
    /// Upper bound on any single delay.
    pub max: Duration,
    /// Growth factor per retry; `1.0` gives a fixed delay.
    pub multiplier: f64,
    /// Full jitter: the actual delay is uniform in `0..=computed`.
    pub jitter: bool,
}

impl Backoff {
    /// The default: 200 ms, doubling, capped at 10 s, full jitter.
    pub const DEFAULT: Backoff = Backoff {
        initial: Duration::from_millis(defaults::BACKOFF_INITIAL_MS),
        max: Duration::from_millis(defaults::BACKOFF_MAX_MS),
        multiplier: defaults::BACKOFF_MULTIPLIER,
        jitter: defaults::BACKOFF_JITTER,
    };

    /// The delay before retry number `retry` (1-based), before jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .multiplier
            .max(1.0)
            .powi(retry.saturating_sub(1).min(63) as i32);
        let secs = self.initial.as_secs_f64() * exp;
        let capped = secs.min(self.max.as_secs_f64());
        Duration::try_from_secs_f64(capped).unwrap_or(self.max)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::DEFAULT
    }
}

/// Where a fallback goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FallbackTarget {
    /// The model name sent to the provider.
    pub model: &'static str,
    /// The provider's registered name; `None` uses the provider the harness routes the model to.
    pub provider: Option<&'static str>,
}

/// One step of a contract chain.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Up to `times` more attempts with the same request, waiting `backoff` between them.
    Retry {
        /// How many more attempts (`retry(2)`: the failed attempt plus at most two more).
        times: u32,
        /// Delay schedule between them.
        backoff: Backoff,
    },
    /// Up to `times` more attempts that show the model its previous answer and what was wrong.
    Reask {
        /// How many more attempts.
        times: u32,
    },
    /// One attempt on another model; the rest of the call continues there.
    Fallback(FallbackTarget),
    /// Hand the call to a human: [`Resolution::Escalated`](crate::Resolution::Escalated).
    Escalate,
    /// Return the task's `default(expr)` value.
    Default,
    /// Return a [`TaskError`](crate::TaskError) of this class.
    Fail,
    /// `context_unavailable` only: fetch from another registered source instead (written
    /// `fallback("name")` in a source's contract).
    FallbackSource {
        /// The name the other source is registered under.
        source: &'static str,
    },
    /// `context_unavailable` only: go on without the source that failed.
    Proceed,
}

impl Action {
    /// The kind, without parameters.
    pub const fn kind(&self) -> ActionKind {
        match self {
            Action::Retry { .. } => ActionKind::Retry,
            Action::Reask { .. } => ActionKind::Reask,
            Action::Fallback(_) | Action::FallbackSource { .. } => ActionKind::Fallback,
            Action::Escalate => ActionKind::Escalate,
            Action::Default => ActionKind::Default,
            Action::Fail => ActionKind::Fail,
            Action::Proceed => ActionKind::Proceed,
        }
    }

    /// How many attempts this step can make at most (for a source's contract: fetches).
    pub const fn max_attempts(&self) -> u32 {
        match self {
            Action::Retry { times, .. } | Action::Reask { times } => *times,
            Action::Fallback(_) | Action::FallbackSource { .. } => 1,
            Action::Escalate | Action::Default | Action::Fail | Action::Proceed => 0,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Retry { times, backoff } => {
                write!(f, "retry({times})")?;
                if *backoff != Backoff::DEFAULT {
                    write!(
                        f,
                        " [backoff {:?}..{:?} ×{}{}]",
                        backoff.initial,
                        backoff.max,
                        backoff.multiplier,
                        if backoff.jitter { ", jitter" } else { "" }
                    )?;
                }
                Ok(())
            }
            Action::Reask { times } => write!(f, "reask({times})"),
            Action::Fallback(t) => match t.provider {
                Some(p) => write!(f, "fallback(\"{}\", provider = \"{p}\")", t.model),
                None => write!(f, "fallback(\"{}\")", t.model),
            },
            Action::Escalate => f.write_str("escalate"),
            Action::Default => f.write_str("default(..)"),
            Action::Fail => f.write_str("fail"),
            Action::FallbackSource { source } => write!(f, "fallback(\"{source}\")"),
            Action::Proceed => f.write_str("proceed"),
        }
    }
}

/// The contract for one failure class: steps tried in order, `.then(...)` separated.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Chain {
    /// The class this chain answers.
    pub class: FailureClass,
    /// The steps. A chain that does not end in a terminal action ends in an implicit `fail`.
    pub steps: &'static [Action],
}

impl Chain {
    /// Attempts this chain can make at most.
    pub const fn max_attempts(&self) -> u32 {
        let mut i = 0;
        let mut n = 0;
        while i < self.steps.len() {
            n += self.steps[i].max_attempts();
            i += 1;
        }
        n
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(".then(")?;
            }
            write!(f, "{step}")?;
            if i > 0 {
                f.write_str(")")?;
            }
        }
        Ok(())
    }
}

/// A named, reusable set of contracts, declared once with `#[llm_policy]` and used by many tasks
/// with `policy = Name`. A task's own contracts take precedence over its policy's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PolicySet {
    /// The policy's name (the type it was declared on).
    pub name: &'static str,
    /// Its chains, at most one per class.
    pub chains: &'static [Chain],
    /// The `on_low_confidence(below = ...)` threshold, when the policy declares that class.
    pub low_confidence_below: Option<f64>,
}

impl PolicySet {
    /// The chain this policy declares for `class`.
    pub fn chain(&self, class: FailureClass) -> Option<&'static Chain> {
        self.chains.iter().find(|c| c.class == class)
    }
}

/// A named policy type, implemented by `#[llm_policy]`.
pub trait Policy {
    /// The policy as data.
    const POLICY: PolicySet;
    /// Which classes it covers, indexed by [`FailureClass::index`] (for compile-time checks).
    const COVERS: [bool; FailureClass::ALL.len()];
}

/// One input (function argument) of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct InputSpec {
    /// The argument's name, as used in `{placeholders}`.
    pub name: &'static str,
    /// Its Rust type, as written.
    pub rust_type: &'static str,
}

/// What the task returns.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct OutputSpec {
    /// The output type's name.
    pub type_name: &'static str,
    /// Whether the output type has a `#[llm(confidence)]` field.
    pub has_confidence: bool,
    /// The output's JSON schema (draft 2020-12), generated from the type.
    #[serde(skip)]
    pub schema: fn() -> serde_json::Value,
}

impl PartialEq for OutputSpec {
    fn eq(&self, other: &Self) -> bool {
        self.type_name == other.type_name && self.has_confidence == other.has_confidence
    }
}

/// A context source a task declares: `source(kb, budget = 800, limit = 5, timeout = "2s",
/// section = "docs", on_unavailable = ...)`. The source itself is registered on the harness under
/// `name` ([`HarnessBuilder::source`](crate::HarnessBuilder::source)); the engine fetches it before
/// the first attempt (see `docs/context.md`, "Declared sources").
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SourceSpec {
    /// The name it is registered under.
    pub name: &'static str,
    /// The most tokens its documents may take (counted as the documents section sends them).
    pub budget: u32,
    /// The most documents kept, best ranked first.
    pub limit: u32,
    /// How long one fetch may take.
    pub timeout: Duration,
    /// The name of the section its documents are sent under.
    pub section: &'static str,
    /// Its own `context_unavailable` contract; `None` uses the task's `on_context_unavailable`.
    pub on_unavailable: Option<&'static [Action]>,
}

impl SourceSpec {
    /// A source `name` with `budget` tokens, at most 5 documents, a 2 s timeout, sent under a
    /// section of its own name, with no contract of its own.
    pub const fn new(name: &'static str, budget: u32) -> SourceSpec {
        SourceSpec {
            name,
            budget,
            limit: harness_spec::defaults::SOURCE_LIMIT,
            timeout: Duration::from_millis(harness_spec::defaults::SOURCE_TIMEOUT_MS),
            section: name,
            on_unavailable: None,
        }
    }

    /// Keeping at most `limit` documents.
    pub const fn with_limit(mut self, limit: u32) -> SourceSpec {
        self.limit = limit;
        self
    }

    /// With this timeout per fetch.
    pub const fn with_timeout(mut self, timeout: Duration) -> SourceSpec {
        self.timeout = timeout;
        self
    }

    /// Sent under this section name.
    pub const fn with_section(mut self, section: &'static str) -> SourceSpec {
        self.section = section;
        self
    }

    /// With its own `context_unavailable` contract.
    pub const fn with_on_unavailable(mut self, steps: &'static [Action]) -> SourceSpec {
        self.on_unavailable = Some(steps);
        self
    }
}

/// Request parameters a task fixes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Params {
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Maximum output tokens.
    pub max_tokens: Option<u32>,
    /// Sampling seed, for reproducible replays where the provider honours it.
    pub seed: Option<u64>,
}

/// Everything `#[llm_task]` declares about a task, as data.
///
/// Fields are read directly; new ones will come, so a contract is built with
/// [`TaskContract::new`] and the `with_*` setters, all `const`:
///
/// ```
/// use std::time::Duration;
/// use harness_core::contract::{Action, Chain, FailureClass, OutputSpec, TaskContract};
///
/// fn schema() -> serde_json::Value {
///     serde_json::json!({"type": "string"})
/// }
///
/// static SUMMARY: TaskContract = TaskContract::new(
///     "summarize",
///     module_path!(),
///     OutputSpec { type_name: "String", has_confidence: false, schema },
/// )
/// .with_model("gpt-4o-mini")
/// .with_prompt("Summarize: {text}")
/// .with_timeout(Duration::from_secs(10))
/// .with_chains(&[Chain { class: FailureClass::Timeout, steps: &[Action::Fail] }]);
///
/// assert_eq!(SUMMARY.model, Some("gpt-4o-mini"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TaskContract {
    /// The task's name (the function's name).
    pub name: &'static str,
    /// `module::path` of the task.
    pub module: &'static str,
    /// The first paragraph of the function's doc comment.
    pub description: &'static str,
    /// A hash of the contract, the prompt and the signature: changes whenever any of them does.
    pub version: &'static str,
    /// The model asked for; `None` uses the harness's default model.
    pub model: Option<&'static str>,
    /// The provider asked for by name; `None` routes by model.
    pub provider: Option<&'static str>,
    /// The system message.
    pub system: Option<&'static str>,
    /// The prompt template with `{input}` placeholders; `None` when the body builds the context.
    pub prompt: Option<&'static str>,
    /// The task's inputs.
    pub inputs: &'static [InputSpec],
    /// The output type.
    pub output: OutputSpec,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Total deadline shared by every attempt of one call; `None` derives it (see `docs/contracts.md`).
    pub deadline: Option<Duration>,
    /// The task's own chains, at most one per class.
    pub chains: &'static [Chain],
    /// A named policy filling the classes the task does not declare itself.
    pub policy: Option<&'static PolicySet>,
    /// The `on_low_confidence(below = ...)` threshold declared by the task itself.
    pub low_confidence_below: Option<f64>,
    /// Repair kinds the lenient parser may not make for this task
    /// (`#[llm_task(..., repairs(deny = ["closed_truncated"]))]`); added to the harness's own
    /// [`ParseLimits::deny`](crate::output::parse::ParseLimits::deny).
    pub denied_repairs: &'static [RepairKind],
    /// Request parameters.
    pub params: Params,
    /// The context sources it declares, fetched before the first attempt.
    pub sources: &'static [SourceSpec],
    /// The context plan it names (`#[llm_task(plan = PLAN, ...)]`): shown in its docs, exported
    /// with it, and named (name and version) in its audit records. Its body assembles with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<&'static ContextPlan>,
}

impl TaskContract {
    /// A contract named `name` in `module` producing `output`, with nothing else declared: the
    /// harness's default model, no system message or prompt, no inputs, the default per-attempt
    /// timeout, a derived deadline, and no chains (every failure ends the call as an error).
    pub const fn new(name: &'static str, module: &'static str, output: OutputSpec) -> Self {
        TaskContract {
            name,
            module,
            description: "",
            version: "",
            model: None,
            provider: None,
            system: None,
            prompt: None,
            inputs: &[],
            output,
            timeout: Duration::from_millis(harness_spec::defaults::TIMEOUT_MS),
            deadline: None,
            chains: &[],
            policy: None,
            low_confidence_below: None,
            denied_repairs: &[],
            params: Params {
                temperature: None,
                max_tokens: None,
                seed: None,
            },
            sources: &[],
            plan: None,
        }
    }

    /// With this description (the first paragraph of the task's doc comment).
    pub const fn with_description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// With this version hash.
    pub const fn with_version(mut self, version: &'static str) -> Self {
        self.version = version;
        self
    }

    /// Asking for this model.
    pub const fn with_model(mut self, model: &'static str) -> Self {
        self.model = Some(model);
        self
    }

    /// Sent to the provider registered under this name.
    pub const fn with_provider(mut self, provider: &'static str) -> Self {
        self.provider = Some(provider);
        self
    }

    /// With this system message.
    pub const fn with_system(mut self, system: &'static str) -> Self {
        self.system = Some(system);
        self
    }

    /// With this prompt template (`{input}` placeholders name [`inputs`](Self::with_inputs)).
    pub const fn with_prompt(mut self, prompt: &'static str) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// With these inputs.
    pub const fn with_inputs(mut self, inputs: &'static [InputSpec]) -> Self {
        self.inputs = inputs;
        self
    }

    /// With this per-attempt timeout.
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// With this total deadline for a call.
    pub const fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// With these chains, at most one per class.
    pub const fn with_chains(mut self, chains: &'static [Chain]) -> Self {
        self.chains = chains;
        self
    }

    /// With this named policy for the classes the task does not declare.
    pub const fn with_policy(mut self, policy: &'static PolicySet) -> Self {
        self.policy = Some(policy);
        self
    }

    /// With this low-confidence threshold of its own.
    pub const fn with_low_confidence_below(mut self, below: f64) -> Self {
        self.low_confidence_below = Some(below);
        self
    }

    /// Denying these repair kinds to the lenient parser.
    pub const fn with_denied_repairs(mut self, kinds: &'static [RepairKind]) -> Self {
        self.denied_repairs = kinds;
        self
    }

    /// With these request parameters.
    pub const fn with_params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    /// With these context sources.
    pub const fn with_sources(mut self, sources: &'static [SourceSpec]) -> Self {
        self.sources = sources;
        self
    }

    /// With this context plan.
    pub const fn with_plan(mut self, plan: &'static ContextPlan) -> Self {
        self.plan = Some(plan);
        self
    }

    /// The `context_unavailable` steps for `source`: its own, else the task's (or its policy's).
    pub fn source_steps(&self, source: &SourceSpec) -> &'static [Action] {
        source
            .on_unavailable
            .unwrap_or_else(|| self.steps(FailureClass::ContextUnavailable))
    }

    /// The chain that answers `class`: the task's own, else its policy's.
    pub fn chain(&self, class: FailureClass) -> Option<&'static Chain> {
        self.chains
            .iter()
            .find(|c| c.class == class)
            .or_else(|| self.policy.and_then(|p| p.chain(class)))
    }

    /// The steps for `class`, empty when nothing is declared (which behaves as `fail`).
    pub fn steps(&self, class: FailureClass) -> &'static [Action] {
        self.chain(class).map(|c| c.steps).unwrap_or(&[])
    }

    /// The low-confidence threshold in force, if the output has a confidence field.
    pub fn confidence_threshold(&self) -> Option<f64> {
        if !self.output.has_confidence {
            return None;
        }
        self.low_confidence_below
            .or_else(|| self.policy.and_then(|p| p.low_confidence_below))
    }

    /// The classes that can occur for this task (low confidence only with a confidence field,
    /// context unavailable only with a declared source).
    pub fn applicable_classes(&self) -> impl Iterator<Item = FailureClass> + '_ {
        FailureClass::ALL.into_iter().filter(|c| match c {
            FailureClass::LowConfidence => self.output.has_confidence,
            FailureClass::ContextUnavailable => !self.sources.is_empty(),
            _ => true,
        })
    }

    /// The classes whose chains make provider attempts (every applicable class but
    /// `context_unavailable`, whose chain fetches sources).
    fn attempt_classes(&self) -> impl Iterator<Item = FailureClass> + '_ {
        self.applicable_classes().filter(|c| !c.is_context())
    }

    /// The most provider attempts one call can make: the first plus every step's allowance.
    pub fn max_attempts(&self) -> u32 {
        1 + self
            .attempt_classes()
            .filter_map(|c| self.chain(c))
            .map(|c| c.max_attempts())
            .sum::<u32>()
    }

    /// The deadline one call shares: the declared one, or `timeout × max_attempts()` plus the
    /// longest total backoff the retry steps can sleep.
    pub fn effective_deadline(&self) -> Duration {
        if let Some(d) = self.deadline {
            return d;
        }
        let attempts = self.timeout.saturating_mul(self.max_attempts());
        let sleeps: Duration = self
            .attempt_classes()
            .filter_map(|c| self.chain(c))
            .flat_map(|c| c.steps.iter())
            .map(|s| match s {
                Action::Retry { times, backoff } => (1..=*times).map(|r| backoff.delay(r)).sum(),
                _ => Duration::ZERO,
            })
            .sum();
        attempts.saturating_add(sleeps)
    }

    /// The output's JSON schema.
    pub fn output_schema(&self) -> serde_json::Value {
        (self.output.schema)()
    }

    /// The contract as a JSON document (for docs, registries and audit).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("output_schema".into(), self.output_schema());
            obj.insert(
                "effective_deadline_ms".into(),
                (self.effective_deadline().as_millis() as u64).into(),
            );
            obj.insert("max_attempts".into(), self.max_attempts().into());
        }
        v
    }

    /// A renderer for the Markdown "Contract" section (inputs, schema summary, failure table).
    pub fn doc(&self) -> ContractDoc<'_> {
        ContractDoc(self)
    }
}
