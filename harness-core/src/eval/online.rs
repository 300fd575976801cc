//! Continuous evaluation of live traffic: [`OnlineEval`] scores a seeded sample of calls as they
//! end and emits one OpenTelemetry GenAI `gen_ai.evaluation.result` event per score;
//! [`ModelUpdateDetector`] raises an alarm naming the tasks affected when the model a provider
//! answers with changes under them. Both are [`Observer`]s: register them on the harness.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::observe::names as n;
use crate::observe::{CallEnd, EndStatus, Observer};
use crate::outcome::{AttemptKind, CallReport};

use super::score::{Ending, Observation, Scorer};

/// How a call that observers see ended, in the outcome mix's words.
pub(crate) fn ending_of(status: EndStatus, report: &CallReport) -> Ending {
    match status {
        EndStatus::Answer => {
            let kinds = || report.attempts.iter().map(|a| a.kind);
            if kinds().any(|k| k == AttemptKind::Fallback) {
                Ending::Fallback
            } else if kinds().any(|k| k == AttemptKind::Reask) {
                Ending::Reasked
            } else if kinds().any(|k| k == AttemptKind::Retry) {
                Ending::Retried
            } else if report
                .attempts
                .last()
                .is_some_and(|a| !a.repairs.is_empty())
            {
                Ending::Repaired
            } else {
                Ending::Answer
            }
        }
        EndStatus::Default(_) => Ending::Default,
        EndStatus::Escalated(_) => Ending::Escalated,
        _ => Ending::Failed,
    }
}

/// Online pass counts of one task.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OnlineSnapshot {
    /// Calls seen.
    pub seen: u64,
    /// Calls sampled and scored.
    pub scored: u64,
    /// Scored calls that passed every scorer.
    pub passed: u64,
    /// Per scorer: (scored, passed).
    pub by_scorer: BTreeMap<String, (u64, u64)>,
}

impl OnlineSnapshot {
    /// `passed / scored` (0 when nothing was scored).
    pub fn pass_rate(&self) -> f64 {
        if self.scored == 0 {
            0.0
        } else {
            self.passed as f64 / self.scored as f64
        }
    }
}

/// Scores a sample of live calls with scorers that need no reference (schema-valid, ending,
/// latency and cost limits, your own checks of the value).
pub struct OnlineEval {
    rate: f64,
    scorers: Vec<Arc<dyn Scorer>>,
    state: Mutex<(fastrand::Rng, HashMap<String, OnlineSnapshot>)>,
}

impl fmt::Debug for OnlineEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnlineEval")
            .field("rate", &self.rate)
            .field("scorers", &self.scorers.len())
            .finish_non_exhaustive()
    }
}

impl OnlineEval {
    /// Scores a share `rate` (0 to 1) of calls, sampled with a generator seeded by `seed`.
    pub fn new(rate: f64, seed: u64) -> Self {
        OnlineEval {
            rate: rate.clamp(0.0, 1.0),
            scorers: Vec::new(),
            state: Mutex::new((fastrand::Rng::with_seed(seed), HashMap::new())),
        }
    }

    /// Adds a scorer.
    pub fn scorer(mut self, scorer: Arc<dyn Scorer>) -> Self {
        self.scorers.push(scorer);
        self
    }

    /// The counts of each task so far.
    pub fn snapshot(&self) -> BTreeMap<String, OnlineSnapshot> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Observer for OnlineEval {
    fn on_call_end(&self, call: &CallEnd<'_>) {
        let task = call.contract.name;
        let sampled = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let (rng, tasks) = &mut *s;
            tasks.entry(task.to_owned()).or_default().seen += 1;
            rng.f64() < self.rate
        };
        if !sampled || self.scorers.is_empty() {
            return;
        }
        let obs = Observation {
            id: &call.report.call_id,
            inputs: &serde_json::Value::Null,
            expected: None,
            got: call.value,
            ending: ending_of(call.status, call.report),
            latency: call.report.elapsed,
            usage: call.report.usage,
            cost_usd: call.report.cost_usd,
        };
        let scores: Vec<_> = self.scorers.iter().map(|s| s.score(&obs)).collect();
        for s in &scores {
            tracing::event!(
                target: "harness::eval",
                tracing::Level::INFO,
                { n::GEN_AI_EVALUATION_NAME } = s.name.as_str(),
                { n::GEN_AI_EVALUATION_SCORE_VALUE } = s.value,
                { n::GEN_AI_EVALUATION_SCORE_LABEL } = if s.passed { "pass" } else { "fail" },
                { n::GEN_AI_EVALUATION_EXPLANATION } = s.detail.as_deref().unwrap_or(""),
                { n::HARNESS_CALL_ID } = call.report.call_id.as_str(),
                { n::HARNESS_TASK_NAME } = task,
                "{}",
                n::EVENT_EVALUATION_RESULT
            );
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let snap = s.1.entry(task.to_owned()).or_default();
        snap.scored += 1;
        snap.passed += scores.iter().all(|s| s.passed) as u64;
        for sc in scores {
            let e = snap.by_scorer.entry(sc.name).or_default();
            e.0 += 1;
            e.1 += sc.passed as u64;
        }
    }
}

/// A change of the model that answers: from one name to another, and the tasks that saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelChange {
    /// The provider that answered.
    pub provider: String,
    /// The model name answered before.
    pub from: String,
    /// The model name answered now.
    pub to: String,
    /// The tasks that saw the change, in the order they did.
    pub tasks: Vec<String>,
}

impl fmt::Display for ModelChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "model update on `{}`: answers now come from `{}` (was `{}`); tasks affected: {}. \
             Re-run their evaluations; pin them to the old model to roll back \
             (HarnessBuilder::pin_model, HARNESS_PIN_MODELS)",
            self.provider,
            self.to,
            self.from,
            self.tasks.join(", ")
        )
    }
}

type Hook = dyn Fn(&ModelChange) + Send + Sync;

/// Watches the model each provider answers with, per task: the first answered model a task sees
/// (or the one you [`expect`](ModelUpdateDetector::expect)) is its reference; an answer from
/// another one raises an alarm once per change, naming every task that sees that same change.
pub struct ModelUpdateDetector {
    state: Mutex<DetectorState>,
    hook: Option<Box<Hook>>,
}

#[derive(Default)]
struct DetectorState {
    /// (task, provider) → the reference model.
    seen: HashMap<(String, String), String>,
    changes: Vec<ModelChange>,
}

impl fmt::Debug for ModelUpdateDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelUpdateDetector")
            .field("changes", &self.changes())
            .finish_non_exhaustive()
    }
}

impl Default for ModelUpdateDetector {
    fn default() -> Self {
        ModelUpdateDetector::new()
    }
}

impl ModelUpdateDetector {
    /// A detector with no reference yet and no hook (alarms are logged as warnings and kept).
    pub fn new() -> Self {
        ModelUpdateDetector {
            state: Mutex::new(DetectorState::default()),
            hook: None,
        }
    }

    /// Calls `hook` on each new alarm and each new task added to one.
    pub fn on_change(mut self, hook: impl Fn(&ModelChange) + Send + Sync + 'static) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// The model `task` is known to answer with on `provider` (from the last evaluation).
    pub fn expect(self, task: &str, provider: &str, model: &str) -> Self {
        self.lock()
            .seen
            .insert((task.to_owned(), provider.to_owned()), model.to_owned());
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DetectorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The alarms so far.
    pub fn changes(&self) -> Vec<ModelChange> {
        self.lock().changes.clone()
    }
}

impl Observer for ModelUpdateDetector {
    fn on_call_end(&self, call: &CallEnd<'_>) {
        let Some(attempt) = call
            .report
            .attempts
            .iter()
            .rev()
            .find(|a| a.response_model.is_some())
        else {
            return;
        };
        let Some(model) = attempt.response_model.as_deref() else {
            return;
        };
        let task = call.contract.name.to_owned();
        let key = (task.clone(), attempt.provider.clone());
        let mut s = self.lock();
        let from = match s.seen.get(&key) {
            None => {
                s.seen.insert(key, model.to_owned());
                return;
            }
            Some(m) if m == model => return,
            Some(m) => m.clone(),
        };
        s.seen.insert(key, model.to_owned());
        let provider = attempt.provider.clone();
        let idx = match s
            .changes
            .iter()
            .position(|c| c.provider == provider && c.from == from && c.to == model)
        {
            Some(i) => {
                s.changes[i].tasks.push(task);
                i
            }
            None => {
                s.changes.push(ModelChange {
                    provider,
                    from,
                    to: model.to_owned(),
                    tasks: vec![task],
                });
                s.changes.len() - 1
            }
        };
        let change = s.changes[idx].clone();
        drop(s);
        tracing::warn!(target: "harness::eval", "{change}");
        if let Some(hook) = &self.hook {
            hook(&change);
        }
    }
}
