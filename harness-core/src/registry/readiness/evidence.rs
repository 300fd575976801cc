//! What the readiness audit reads besides the registry: an audit trail, eval results, drill
//! results, and facts the program declares about itself.

use std::io;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::audit::AuditRecord;
use crate::contract::TaskContract;
use crate::registry::Registry;
use crate::registry::stats::{self, Reading, TaskStats, TrailStats};

/// The `format` of a results file of `harness_core::eval` (one run of one task's dataset; see
/// `docs/eval.md`): read as the eval evidence of its task; a run labelled `baseline` is the
/// baseline.
pub const EVAL_RUN_FORMAT: &str = "harness-eval-results";

/// The `format` of an eval summary file, for evaluations run by other tools (see
/// `docs/readiness.md`): one entry per task with its dataset, metrics and baseline.
pub const EVAL_FORMAT: &str = "harness.eval-results";

/// One task's eval result, as the readiness audit reads it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EvalEntry {
    /// The task evaluated.
    pub task: String,
    /// The contract version evaluated.
    #[serde(default)]
    pub contract_version: Option<String>,
    /// The dataset's name.
    #[serde(default)]
    pub dataset: Option<String>,
    /// How many cases it has.
    #[serde(default)]
    pub cases: Option<u64>,
    /// Where its cases come from: `curated`, `traffic` (recorded calls), `synthetic`.
    #[serde(default)]
    pub source: Option<String>,
    /// Metric name → value.
    #[serde(default)]
    pub metrics: serde_json::Map<String, Value>,
    /// Metric name → the baseline's value.
    #[serde(default)]
    pub baseline: serde_json::Map<String, Value>,
    /// The run's label (`baseline` marks a baseline run).
    #[serde(default)]
    pub label: Option<String>,
}

impl EvalEntry {
    /// The entry of one `harness-eval-results` run: pass rate, its 95% interval and the mean
    /// score as metrics.
    fn of_run(v: &Value) -> Result<EvalEntry, String> {
        let version = v.get("version").and_then(Value::as_u64);
        if version != Some(1) {
            return Err(format!(
                "a `{EVAL_RUN_FORMAT}` file of version {version:?}; this release reads version 1"
            ));
        }
        let run = v.get("run").ok_or("no `run`")?;
        let text = |k: &str| run.get(k).and_then(Value::as_str).map(str::to_owned);
        let overall = v
            .pointer("/summary/overall")
            .ok_or("no `summary.overall`")?;
        let mut metrics = serde_json::Map::new();
        for key in ["pass_rate", "ci95", "mean_score", "n", "unscored"] {
            if let Some(x) = overall.get(key) {
                metrics.insert(key.to_owned(), x.clone());
            }
        }
        Ok(EvalEntry {
            task: text("task").ok_or("no `run.task`")?,
            contract_version: text("contract_version"),
            dataset: text("dataset"),
            cases: run.get("cases").and_then(Value::as_u64),
            source: None,
            metrics,
            baseline: serde_json::Map::new(),
            label: text("label").filter(|l| !l.is_empty()),
        })
    }
}

/// Why evidence could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The file is not of the documented shape.
    #[error("{path} is not {what}: {why}")]
    Shape {
        /// The file.
        path: String,
        /// What it should be.
        what: &'static str,
        /// Why it is not.
        why: String,
    },
}

#[derive(Clone, Debug)]
struct Trail {
    source: String,
    records: Vec<AuditRecord>,
    reading: Reading,
}

/// The evidence for a readiness audit. Every part is optional: what is not given is reported
/// as missing.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    trail: Option<Trail>,
    eval: Vec<EvalEntry>,
    baselines: Vec<EvalEntry>,
    eval_source: Option<String>,
    drills: Vec<Value>,
    declared: Vec<String>,
}

fn read(path: &Path) -> Result<String, EvidenceError> {
    std::fs::read_to_string(path).map_err(|source| EvidenceError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn shape(path: &Path, what: &'static str, why: impl ToString) -> EvidenceError {
    EvidenceError::Shape {
        path: path.display().to_string(),
        what,
        why: why.to_string(),
    }
}

impl Evidence {
    /// No evidence yet.
    pub fn new() -> Evidence {
        Evidence::default()
    }

    /// With the audit trail at `path` (JSONL or SQLite), read as `harness audit stats` reads it.
    pub fn audit_trail(mut self, path: impl AsRef<Path>) -> Result<Evidence, EvidenceError> {
        let path = path.as_ref();
        let (records, reading) = stats::read_trail(path).map_err(|source| EvidenceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.trail = Some(Trail {
            source: path.display().to_string(),
            records,
            reading,
        });
        Ok(self)
    }

    /// With these audit records (already read; `source` names them in the report).
    pub fn audit_records(mut self, source: &str, records: Vec<AuditRecord>) -> Evidence {
        let reading = Reading {
            lines: records.len() as u64,
            ..Reading::default()
        };
        self.trail = Some(Trail {
            source: source.to_owned(),
            records,
            reading,
        });
        self
    }

    /// With the eval results file at `path`: a `harness-eval-results` run file written by
    /// `harness_core::eval` (a run labelled `baseline` is the baseline of its task), or a
    /// `harness.eval-results` summary (see `docs/readiness.md`). Call it once per file.
    pub fn eval_results(mut self, path: impl AsRef<Path>) -> Result<Evidence, EvidenceError> {
        let path = path.as_ref();
        let what = "an eval results file (`harness-eval-results` or `harness.eval-results`)";
        let v: Value = serde_json::from_str(&read(path)?).map_err(|e| shape(path, what, e))?;
        let entries: Vec<EvalEntry> = match v.get("format").and_then(Value::as_str) {
            Some(EVAL_RUN_FORMAT) => vec![EvalEntry::of_run(&v).map_err(|e| shape(path, what, e))?],
            Some(EVAL_FORMAT) => {
                let list = v.get("results").cloned().unwrap_or(Value::Null);
                serde_json::from_value(list).map_err(|e| shape(path, what, e))?
            }
            other => return Err(shape(path, what, format!("its format is {other:?}"))),
        };
        for e in entries {
            if e.label.as_deref() == Some("baseline") {
                self.baselines.push(e);
            } else {
                self.eval.push(e);
            }
        }
        self.eval_source = Some(path.display().to_string());
        Ok(self)
    }

    /// With one drill's results (`DrillReport::to_json()`, format `harness.drill`).
    pub fn drill(mut self, report: Value) -> Evidence {
        self.drills.push(report);
        self
    }

    /// With the drill results in the file at `path`: one `harness.drill` document, or a list.
    pub fn drill_results(mut self, path: impl AsRef<Path>) -> Result<Evidence, EvidenceError> {
        let path = path.as_ref();
        let what = "drill results (`harness.drill`)";
        let v: Value = serde_json::from_str(&read(path)?).map_err(|e| shape(path, what, e))?;
        let docs = match v {
            Value::Array(list) => list,
            other => vec![other],
        };
        for d in &docs {
            if d.get("format").and_then(Value::as_str) != Some("harness.drill") {
                return Err(shape(
                    path,
                    what,
                    "a document without `format: harness.drill`",
                ));
            }
        }
        self.drills.extend(docs);
        Ok(self)
    }

    /// With a fact the program states about itself that no file shows (`drift_alarm`,
    /// `model_change_alarm`, `online_scorer`, `traffic_regression_suite`): reported as
    /// declared, not verified.
    pub fn declare(mut self, fact: impl Into<String>) -> Evidence {
        self.declared.push(fact.into());
        self
    }

    pub(super) fn declares(&self, fact: &str) -> bool {
        self.declared.iter().any(|d| d == fact)
    }

    pub(super) fn has_trail(&self) -> bool {
        self.trail.is_some()
    }

    pub(super) fn has_eval(&self) -> bool {
        self.eval_source.is_some()
    }

    /// The eval entry of `task` (the last one given), with the metrics of its baseline run when
    /// it names none itself.
    pub(super) fn eval_for(&self, task: &str) -> Option<EvalEntry> {
        let mut entry = self.eval.iter().rev().find(|e| e.task == task)?.clone();
        if entry.baseline.is_empty() {
            if let Some(b) = self.baselines.iter().rev().find(|b| b.task == task) {
                entry.baseline = b.metrics.clone();
            }
        }
        Some(entry)
    }

    /// The drill documents of `task`.
    pub(super) fn drills_for(&self, task: &str) -> Vec<&Value> {
        self.drills
            .iter()
            .filter(|d| d.get("task").and_then(Value::as_str) == Some(task))
            .collect()
    }

    /// The records of this task (a task is named uniquely in a program), and the other modules
    /// its records name: the same task compiled into another binary of the program (the
    /// quickstart and the contracts example share `examples/support/tasks.rs`), or another
    /// program's task of the same name, which the registry cannot tell apart.
    pub(super) fn records_for(&self, c: &TaskContract) -> (Vec<&AuditRecord>, Vec<String>) {
        let Some(t) = &self.trail else {
            return (Vec::new(), Vec::new());
        };
        let mine: Vec<&AuditRecord> = t.records.iter().filter(|r| r.task == c.name).collect();
        let mut modules: Vec<String> = mine
            .iter()
            .filter(|r| r.module != c.module)
            .map(|r| r.module.clone())
            .collect();
        modules.sort_unstable();
        modules.dedup();
        (mine, modules)
    }

    pub(super) fn task_stats(
        &self,
        c: &TaskContract,
        records: &[&AuditRecord],
    ) -> Option<TaskStats> {
        (!records.is_empty()).then(|| stats::task_stats(c.name, records, None))
    }

    /// What the evidence itself lacks, for the report's notes.
    pub(super) fn notes(&self, registry: &Registry) -> Vec<String> {
        let mut notes = Vec::new();
        match &self.trail {
            None => notes.push(
                "no audit trail given: 01, 02, 04 and 06 lack their main evidence".to_owned(),
            ),
            Some(t) => {
                let export = registry.export("");
                let s: TrailStats =
                    stats::compute(&t.source, &t.records, t.reading.clone(), Some(&export));
                notes.push(format!(
                    "audit trail {}: {} record(s) of this program's tasks",
                    t.source, s.reading.records
                ));
                notes.extend(
                    s.notes
                        .into_iter()
                        .filter(|n| !n.starts_with("no contracts export")),
                );
            }
        }
        if !self.has_eval() {
            notes.push("no eval results given: 03 lacks its main evidence".to_owned());
        }
        if self.drills.is_empty() {
            notes.push("no drill results given: 02 cannot say the contract was tested".to_owned());
        }
        notes
    }
}
