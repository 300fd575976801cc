//! The readiness audit: the six questions of `docs/readiness.md`, answered per task from the
//! registry, an audit trail, eval results and drill results, each with the evidence found and
//! what is missing, a score per task, a summary per program, and a pass/fail under a threshold
//! for CI.
//!
//! 01 reproducible · 02 schema mismatch specified, tested and enforced · 03 a quality metric and
//! where it lives · 04 model update detection and rollback · 05 scope, rate and permission limits
//! for every tool · 06 time and cost spent on failures.
//!
//! ```no_run
//! use harness_core::registry::{self, readiness::{Evidence, Readiness}};
//! let registry = registry::program().expect("a registry");
//! let evidence = Evidence::new().audit_trail("audit.jsonl").expect("a readable trail");
//! let report = Readiness::assess(&registry, &evidence);
//! print!("{report}");
//! std::process::exit(if report.passes(0.6) { 0 } else { 1 });
//! ```

mod evidence;
mod questions;

use std::fmt;

use serde::Serialize;

use crate::contract::TaskContract;

pub use evidence::{EVAL_FORMAT, EvalEntry, Evidence, EvidenceError};

use super::Registry;

/// The six questions, numbered as the report prints them.
pub const QUESTIONS: [(&str, &str); 6] = [
    ("01", "Is every call reproducible?"),
    ("02", "Is a schema mismatch specified, tested and enforced?"),
    ("03", "Is there a quality metric, and where does it live?"),
    (
        "04",
        "Would a model update be detected, and can it be rolled back?",
    ),
    (
        "05",
        "Does every tool have scope, rate and permission limits?",
    ),
    ("06", "Is the time and cost spent on failures known?"),
];

/// One question answered for one task.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Answer {
    /// `01` to `06`.
    pub number: &'static str,
    /// The question.
    pub question: &'static str,
    /// Evidence found, in words.
    pub found: Vec<String>,
    /// What is missing, in words (each one a thing to do).
    pub missing: Vec<String>,
    /// Checks made (each one a `found` or a `missing` line; `found` also holds plain evidence
    /// that is not a check).
    pub checks: u32,
    /// Checks passed.
    pub passed: u32,
    /// `passed / checks`, from 0 to 1; `None` when the question does not apply to the task (a
    /// task without tools, for 05).
    pub score: Option<f64>,
}

impl Answer {
    fn new(number: usize) -> Answer {
        let (n, q) = QUESTIONS[number - 1];
        Answer {
            number: n,
            question: q,
            found: Vec::new(),
            missing: Vec::new(),
            checks: 0,
            passed: 0,
            score: None,
        }
    }

    /// Adds evidence that is not a check (it does not move the score).
    fn note(&mut self, found: impl Into<String>) {
        self.found.push(found.into());
    }

    /// Adds a failed check.
    fn lack(&mut self, missing: impl Into<String>) {
        self.check(false, "", missing);
    }

    /// Records a check: `ok` adds `found` to the evidence, else `missing` to what is missing.
    fn check(&mut self, ok: bool, found: impl Into<String>, missing: impl Into<String>) -> bool {
        self.checks += 1;
        if ok {
            self.passed += 1;
            self.found.push(found.into());
        } else {
            self.missing.push(missing.into());
        }
        ok
    }

    /// The score from the checks made: passed / made.
    fn scored(mut self) -> Answer {
        self.score = (self.checks > 0).then(|| f64::from(self.passed) / f64::from(self.checks));
        self
    }
}

/// The six answers for one task.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskReadiness {
    /// The task's name.
    pub task: String,
    /// Its contract version.
    pub version: String,
    /// The answers, 01 to 06.
    pub answers: Vec<Answer>,
    /// The mean score of the answers that apply, from 0 to 1.
    pub score: f64,
}

/// The audit of a program.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Readiness {
    /// Always `harness.readiness`.
    pub format: String,
    /// `1`.
    pub format_version: u32,
    /// Each task, by name.
    pub tasks: Vec<TaskReadiness>,
    /// The mean of the task scores (0 when there is no task).
    pub score: f64,
    /// The lowest task score (0 when there is no task).
    pub lowest: f64,
    /// What the evidence itself lacked (unreadable parts, another program's records).
    pub notes: Vec<String>,
}

fn assess_task(c: &TaskContract, ev: &Evidence) -> TaskReadiness {
    let answers = vec![
        questions::reproducible(c, ev),
        questions::schema(c, ev),
        questions::quality(c, ev),
        questions::model_updates(c, ev),
        questions::tool_limits(c, ev),
        questions::failure_cost(c, ev),
    ];
    let scores: Vec<f64> = answers.iter().filter_map(|a| a.score).collect();
    let score = if scores.is_empty() {
        0.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    };
    TaskReadiness {
        task: c.name.to_owned(),
        version: c.version.to_owned(),
        answers,
        score,
    }
}

impl Readiness {
    /// Answers the six questions for every task of `registry` from `evidence`.
    pub fn assess(registry: &Registry, evidence: &Evidence) -> Readiness {
        let tasks: Vec<TaskReadiness> = registry
            .tasks()
            .iter()
            .map(|c| assess_task(c, evidence))
            .collect();
        let score = if tasks.is_empty() {
            0.0
        } else {
            tasks.iter().map(|t| t.score).sum::<f64>() / tasks.len() as f64
        };
        let lowest = tasks
            .iter()
            .map(|t| t.score)
            .min_by(f64::total_cmp)
            .unwrap_or(0.0);
        Readiness {
            format: "harness.readiness".to_owned(),
            format_version: 1,
            tasks,
            score,
            lowest,
            notes: evidence.notes(registry),
        }
    }

    /// Whether every task scores at least `threshold` (0 to 1), and there is a task at all.
    pub fn passes(&self, threshold: f64) -> bool {
        !self.tasks.is_empty() && self.lowest >= threshold
    }

    /// The report as pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tasks {
            writeln!(
                f,
                "Task `{}` (version {}): readiness {}",
                t.task,
                t.version,
                pct(t.score)
            )?;
            for a in &t.answers {
                let score = a.score.map_or_else(|| "n/a".to_owned(), pct);
                writeln!(f, "  {} {} [{score}]", a.number, a.question)?;
                for e in &a.found {
                    writeln!(f, "       found:   {e}")?;
                }
                for m in &a.missing {
                    writeln!(f, "       missing: {m}")?;
                }
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "Program: {} task(s), mean readiness {}, lowest {}",
            self.tasks.len(),
            pct(self.score),
            pct(self.lowest)
        )?;
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}
