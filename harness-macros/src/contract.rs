//! The failure contracts of a task or policy, indexed by class, and their canonical rendering (the
//! form docs and the version hash use). The grammar (`attr::chain`) builds them; the task and
//! policy models (`ast`) hold them.

use harness_spec::{ActionKind, FailureClass, defaults};
use proc_macro2::Span;
use syn::{Expr, Ident};

use crate::util::format_ms;

/// Backoff parameters of `retry(n, ...)` as written; the runtime's `Backoff::DEFAULT` fills the
/// ones left out (generated code says `..Backoff::DEFAULT`).
#[derive(Clone, Default)]
pub struct Backoff {
    pub initial_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub multiplier: Option<f64>,
    pub jitter: Option<bool>,
}

impl Backoff {
    /// The first delay in force, the default filled in.
    pub fn initial_or_default(&self) -> u64 {
        self.initial_ms.unwrap_or(defaults::BACKOFF_INITIAL_MS)
    }

    /// The longest delay in force, the default filled in.
    pub fn max_or_default(&self) -> u64 {
        self.max_ms.unwrap_or(defaults::BACKOFF_MAX_MS)
    }
}

/// One step of a chain.
#[derive(Clone)]
pub enum Step {
    Retry {
        times: u32,
        backoff: Backoff,
    },
    Reask {
        times: u32,
    },
    Fallback {
        model: String,
        provider: Option<String>,
    },
    Escalate,
    Default(Box<Expr>),
    Fail,
    /// `context_unavailable` only: go on without the source.
    Proceed,
}

impl Step {
    pub fn kind(&self) -> ActionKind {
        match self {
            Step::Retry { .. } => ActionKind::Retry,
            Step::Reask { .. } => ActionKind::Reask,
            Step::Fallback { .. } => ActionKind::Fallback,
            Step::Escalate => ActionKind::Escalate,
            Step::Default(_) => ActionKind::Default,
            Step::Fail => ActionKind::Fail,
            Step::Proceed => ActionKind::Proceed,
        }
    }

    /// The step as written in the canonical form (docs and the version hash).
    pub fn render(&self) -> String {
        match self {
            Step::Retry { times, backoff } => format!("retry({times}{})", render_backoff(backoff)),
            Step::Reask { times } => format!("reask({times})"),
            Step::Fallback { model, provider } => match provider {
                Some(p) => format!("fallback({model:?}, provider = {p:?})"),
                None => format!("fallback({model:?})"),
            },
            Step::Escalate => "escalate".into(),
            Step::Default(e) => format!("default({})", quote::quote!(#e)),
            Step::Fail => "fail".into(),
            Step::Proceed => "proceed".into(),
        }
    }
}

/// `, initial = "500ms", max = ...` for the parameters that were written.
fn render_backoff(b: &Backoff) -> String {
    let mut s = String::new();
    if let Some(v) = b.initial_ms {
        s += &format!(", initial = \"{}\"", format_ms(v));
    }
    if let Some(v) = b.max_ms {
        s += &format!(", max = \"{}\"", format_ms(v));
    }
    if let Some(v) = b.multiplier {
        s += &format!(", multiplier = {v:?}");
    }
    if let Some(v) = b.jitter {
        s += &format!(", jitter = {v}");
    }
    s
}

/// A step with the span of its action name.
#[derive(Clone)]
pub struct SpannedStep {
    pub step: Step,
    pub span: Span,
}

/// `on_x[(below = ..)] = chain`.
#[derive(Clone)]
pub struct Contract {
    pub class: FailureClass,
    /// The `on_x` key, where errors about the whole contract point.
    pub key: Ident,
    pub below: Option<f64>,
    pub steps: Vec<SpannedStep>,
}

/// Steps as written: `retry(2).then(fail)`.
pub fn render_steps(steps: &[SpannedStep]) -> String {
    let mut s = String::new();
    for (i, st) in steps.iter().enumerate() {
        if i == 0 {
            s += &st.step.render();
        } else {
            s += &format!(".then({})", st.step.render());
        }
    }
    s
}

impl Contract {
    /// The chain as written: `retry(2).then(fail)`.
    pub fn render_chain(&self) -> String {
        render_steps(&self.steps)
    }

    /// The `default(expr)` value of this chain, if it has one.
    pub fn default_value(&self) -> Option<&Expr> {
        self.steps.iter().find_map(|s| match &s.step {
            Step::Default(e) => Some(&**e),
            _ => None,
        })
    }
}

/// `source(kb, budget = 800, ...)`: a declared context source, as written.
#[derive(Clone)]
pub struct Source {
    /// Its name (where "no contract for it" points).
    pub name: Ident,
    pub budget: u32,
    pub limit: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub section: Option<String>,
    /// `on_unavailable = chain`, its own contract.
    pub on_unavailable: Option<Vec<SpannedStep>>,
}

impl Source {
    /// The canonical form (docs and the version hash): every option, defaults filled in.
    pub fn render(&self) -> String {
        let mut s = format!(
            "source({}, budget = {}, limit = {}, timeout = \"{}\", section = {:?}",
            self.name,
            self.budget,
            self.limit.unwrap_or(defaults::SOURCE_LIMIT),
            format_ms(self.timeout_ms.unwrap_or(defaults::SOURCE_TIMEOUT_MS)),
            self.section
                .clone()
                .unwrap_or_else(|| self.name.to_string()),
        );
        if let Some(steps) = &self.on_unavailable {
            s += &format!(", on_unavailable = {}", render_steps(steps));
        }
        s + ")"
    }
}

/// At most one contract per class, indexed by class.
#[derive(Clone, Default)]
pub struct Contracts {
    by_class: [Option<Contract>; FailureClass::ALL.len()],
}

impl Contracts {
    pub fn get(&self, class: FailureClass) -> Option<&Contract> {
        self.by_class[class.index()].as_ref()
    }

    /// Adds `contract`; `false` (and nothing changes) when its class already has one.
    pub fn insert(&mut self, contract: Contract) -> bool {
        let slot = &mut self.by_class[contract.class.index()];
        if slot.is_some() {
            return false;
        }
        *slot = Some(contract);
        true
    }

    /// The contracts in class order.
    pub fn iter(&self) -> impl Iterator<Item = &Contract> {
        self.by_class.iter().flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The `on_low_confidence(below = ..)` threshold.
    pub fn threshold(&self) -> Option<f64> {
        self.get(FailureClass::LowConfidence).and_then(|c| c.below)
    }

    /// Which classes have a contract, indexed by class.
    pub fn covers(&self) -> [bool; FailureClass::ALL.len()] {
        self.by_class.each_ref().map(Option::is_some)
    }
}
