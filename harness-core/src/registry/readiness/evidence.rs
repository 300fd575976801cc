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

/// The `format` of an eval results file this release reads (see `docs/readiness.md`).
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

    /// With the eval results file at `path` (format `harness.eval-results` version 1, see
    /// `docs/readiness.md`).
    pub fn eval_results(mut self, path: impl AsRef<Path>) -> Result<Evidence, EvidenceError> {
        let path = path.as_ref();
        let what = "an eval results file (`harness.eval-results`)";
        let v: Value = serde_json::from_str(&read(path)?).map_err(|e| shape(path, what, e))?;
        let list = match &v {
            Value::Array(_) => v.clone(),
            Value::Object(o) => match o.get("format").and_then(Value::as_str) {
                Some(EVAL_FORMAT) => o.get("results").cloned().unwrap_or(Value::Null),
                other => {
                    return Err(shape(path, what, format!("its format is {other:?}")));
                }
            },
            _ => return Err(shape(path, what, "neither an object nor a list")),
        };
        let entries: Vec<EvalEntry> =
            serde_json::from_value(list).map_err(|e| shape(path, what, e))?;
        self.eval.extend(entries);
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

    /// The eval entry of `task` (the last one given).
    pub(super) fn eval_for(&self, task: &str) -> Option<&EvalEntry> {
        self.eval.iter().rev().find(|e| e.task == task)
    }

    /// The drill documents of `task`.
    pub(super) fn drills_for(&self, task: &str) -> Vec<&Value> {
        self.drills
            .iter()
            .filter(|d| d.get("task").and_then(Value::as_str) == Some(task))
            .collect()
    }

    /// The records of this task (same name and module), and how many more carry its name from
    /// another module.
    pub(super) fn records_for(&self, c: &TaskContract) -> (Vec<&AuditRecord>, usize) {
        let Some(t) = &self.trail else {
            return (Vec::new(), 0);
        };
        let named = t.records.iter().filter(|r| r.task == c.name);
        let (mine, other): (Vec<&AuditRecord>, Vec<&AuditRecord>) =
            named.partition(|r| r.module == c.module);
        (mine, other.len())
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
