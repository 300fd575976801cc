//! Reproducing a recorded call: rebuild every attempt's exact request from its audit record,
//! check each against the recorded fingerprint, re-run the call — offline from the recorded
//! responses or live against a provider — and compare the outputs field by field.
//!
//! Two entry points, one report ([`Reproduction`]):
//!
//! - [`reproduce`]: the record is the contract. Needs nothing but the record, so the `harness`
//!   binary uses it (`harness reproduce --audit FILE --id ID [--live]`). Answers are checked with
//!   the lenient parser and the JSON schema the record carries; the task's `#[llm]` rules and
//!   confidence threshold, which live in its code, are taken from the record for answers
//!   identical to the recorded ones; after a failure the next step is the one the contract took
//!   then.
//! - [`reproduce_task`]: the task's own contract and output type, from a program that links
//!   them: the call runs through the engine again (validation with every rule, reask, fallback,
//!   defaults), so a changed prompt, schema or chain shows up.
//!
//! ```no_run
//! # async fn demo(contract: &'static harness_core::TaskContract) -> Result<(), Box<dyn std::error::Error>> {
//! use harness_core::audit::{self, reproduce::{Mode, reproduce}};
//! let record = audit::find_record("audit.jsonl", "call-42")?.ok_or("no such record")?;
//! let report = reproduce(&record, Mode::Offline).await?;
//! println!("{report}");
//! assert!(report.is_identical());
//! # Ok(()) }
//! ```

mod driver;
mod rebuild;
mod table;
mod typed;

use std::fmt;

use serde::Serialize;
use serde_json::Value;

pub use rebuild::{RequestCheck, rebuild_requests};
pub use table::{Row, write_table};
pub use typed::{Defaults, reproduce_task};

use super::record::{AuditRecord, MessagePolicy, RECORD_VERSION};
use super::replay_provider::ReplayProvider;
use crate::engine::Harness;

/// Exit status of a reproduction whose output is identical.
pub const EXIT_IDENTICAL: u8 = 0;
/// Exit status of a reproduction whose output (or a rebuilt request) differs.
pub const EXIT_DIFFERS: u8 = 1;
/// Exit status of a record that cannot be reproduced.
pub const EXIT_CANNOT: u8 = 2;

/// Where a reproduction's answers come from.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Mode<'a> {
    /// The responses recorded then, served by request ([`ReplayProvider`]): no network.
    Offline,
    /// The providers of this harness (the recorded model, routed as the harness routes it).
    Live(&'a Harness),
}

impl Mode<'_> {
    /// `offline` or `live`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Offline => "offline",
            Mode::Live(_) => "live",
        }
    }
}

/// Why a record cannot be reproduced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReproduceError {
    /// The messages were hashed or redacted: the record proves what was sent without keeping it.
    #[error(
        "record {id} cannot be reproduced exactly: its messages were recorded as `{policy:?}` (MessagePolicy), which keeps their hashes and lengths but not their text; only records written with MessagePolicy::Full can be sent again"
    )]
    NotRecordedInFull {
        /// The record.
        id: String,
        /// How its messages were kept.
        policy: MessagePolicy,
    },
    /// The record was written by a newer harness (record layout `v`).
    #[error(
        "record {id} has layout version {found}; this harness reads up to {RECORD_VERSION}: reproduce it with the harness that wrote it"
    )]
    NewerLayout {
        /// The record.
        id: String,
        /// Its `v`.
        found: u32,
    },
    /// The record's hash does not match its content: it was changed after it was written.
    #[error(
        "record {id} was changed after it was written: its stored hash {stored} does not match its content ({computed}); run `harness audit verify` on the file"
    )]
    Tampered {
        /// The record.
        id: String,
        /// The hash it carries.
        stored: String,
        /// The hash of its content.
        computed: String,
    },
    /// The record does not hold what a rebuild needs.
    #[error("record {id} cannot be reproduced: {reason}")]
    Malformed {
        /// The record.
        id: String,
        /// What is missing or inconsistent.
        reason: String,
    },
}

/// One attempt of a run, recorded or reproduced.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RunAttempt {
    /// 1-based number.
    pub n: u32,
    /// `first`, `retry`, `reask` or `fallback`.
    pub kind: String,
    /// The model asked.
    pub model: String,
    /// The fingerprint of the request sent.
    pub fingerprint: String,
    /// `accepted`, or the failure class.
    pub verdict: String,
}

/// A call's path and output: the recorded one, or the reproduced one.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Run {
    /// Every attempt.
    pub attempts: Vec<RunAttempt>,
    /// `answer`, `default`, `escalated`, `failed`, or `unknown` (the record does not say what
    /// the contract does next).
    pub status: String,
    /// The failure class or error kind behind a non-answer.
    pub class: Option<String>,
    /// The output value.
    pub value: Option<Value>,
}

impl Run {
    fn ended(mut self, status: &str, class: Option<String>, value: Option<Value>) -> Run {
        self.status = status.to_owned();
        self.class = class;
        self.value = value;
        self
    }

    /// The path and output a record holds.
    pub fn of_record(record: &AuditRecord) -> Run {
        Run {
            attempts: record
                .attempts
                .iter()
                .map(|a| RunAttempt {
                    n: a.n,
                    kind: a.kind.clone(),
                    model: a.model.clone(),
                    fingerprint: a.fingerprint.clone(),
                    verdict: a.failure.map_or("accepted", |c| c.as_str()).to_owned(),
                })
                .collect(),
            status: record.outcome.status.clone(),
            class: record.outcome.class.clone(),
            value: record.outcome.value.clone(),
        }
    }
}

/// What a reproduction found.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Reproduction {
    /// The record reproduced.
    pub id: String,
    /// Its task.
    pub task: String,
    /// `offline` or `live`.
    pub mode: &'static str,
    /// Where the contract came from: `record` ([`reproduce`]) or `linked` ([`reproduce_task`]).
    pub contract: &'static str,
    /// The contract version the record was written under.
    pub recorded_version: String,
    /// The linked contract's version ([`reproduce_task`] only).
    pub linked_version: Option<String>,
    /// Every attempt's request rebuilt from the record, against its recorded fingerprint.
    pub requests: Vec<RequestCheck>,
    /// The recorded path and output.
    pub recorded: Run,
    /// The reproduced path and output.
    pub reproduced: Run,
    /// The comparison, field by field.
    pub rows: Vec<Row>,
    /// What the reader should know: checks that could not be made, versions that differ.
    pub notes: Vec<String>,
}

impl Reproduction {
    fn new(
        record: &AuditRecord,
        mode: &Mode<'_>,
        requests: Vec<RequestCheck>,
        reproduced: Run,
        notes: Vec<String>,
    ) -> Reproduction {
        let recorded = Run::of_record(record);
        let rows = table::rows(&requests, &recorded, &reproduced);
        Reproduction {
            id: record.id.clone(),
            task: record.task.clone(),
            mode: mode.as_str(),
            contract: "record",
            recorded_version: record.contract_version.clone(),
            linked_version: None,
            requests,
            recorded,
            reproduced,
            rows,
            notes,
        }
    }

    /// Whether every rebuilt request matched its fingerprint and every field is the same.
    pub fn is_identical(&self) -> bool {
        self.rows.iter().all(|r| r.same)
    }

    /// [`EXIT_IDENTICAL`] or [`EXIT_DIFFERS`].
    pub fn exit_code(&self) -> u8 {
        if self.is_identical() {
            EXIT_IDENTICAL
        } else {
            EXIT_DIFFERS
        }
    }

    /// Whether the linked contract's version differs from the recorded one.
    pub fn version_differs(&self) -> bool {
        self.linked_version
            .as_deref()
            .is_some_and(|v| v != self.recorded_version)
    }
}

impl fmt::Display for Reproduction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "record {} (task {}), reproduced {}",
            self.id, self.task, self.mode
        )?;
        match (&self.linked_version, self.contract) {
            (Some(v), _) if self.version_differs() => writeln!(
                f,
                "contract: the record was written under version {}; this program's contract is version {v}",
                self.recorded_version
            )?,
            (Some(v), _) => writeln!(f, "contract: linked, version {v} (same as recorded)")?,
            (None, _) => writeln!(
                f,
                "contract: from the record (version {}): schema and steps as recorded; rules and thresholds in the task's code are not linked",
                self.recorded_version
            )?,
        }
        let exact = self.requests.iter().filter(|r| r.matches()).count();
        writeln!(
            f,
            "requests: {exact} of {} rebuilt byte for byte from the record",
            self.requests.len()
        )?;
        writeln!(f)?;
        table::write_rows(f, &self.rows)?;
        if !self.notes.is_empty() {
            writeln!(f)?;
        }
        for note in &self.notes {
            write!(f, "\nnote: {note}")?;
        }
        write!(
            f,
            "\n{}",
            if self.is_identical() {
                "identical".to_owned()
            } else {
                format!(
                    "DIFFERS: {} of {} rows",
                    self.rows.iter().filter(|r| !r.same).count(),
                    self.rows.len()
                )
            }
        )
    }
}

/// Checks that `record` can be trusted and read by this harness.
pub fn check_record(record: &AuditRecord) -> Result<(), ReproduceError> {
    if record.v > RECORD_VERSION {
        return Err(ReproduceError::NewerLayout {
            id: record.id.clone(),
            found: record.v,
        });
    }
    if !record.hash.is_empty() && !record.hash_is_valid() {
        let mut copy = record.clone();
        copy.hash = String::new();
        let value = serde_json::to_value(&copy).unwrap_or(Value::Null);
        let computed = super::hash_hex(&super::canonical_json(&value));
        return Err(ReproduceError::Tampered {
            id: record.id.clone(),
            stored: record.hash.clone(),
            computed,
        });
    }
    Ok(())
}

/// Reproduces `record` with the record as the contract (see the [module](self) docs): rebuilds
/// and checks every attempt's request, re-runs the call (`mode`), and compares.
pub async fn reproduce(
    record: &AuditRecord,
    mode: Mode<'_>,
) -> Result<Reproduction, ReproduceError> {
    check_record(record)?;
    let rebuilt = rebuild_requests(record)?;
    let first = rebuild::first_request(record)?;
    let answers = match mode {
        Mode::Offline => driver::Answers::Recorded(ReplayProvider::from_records([record.clone()])),
        Mode::Live(harness) => driver::Answers::Live(harness),
    };
    let mut notes = Vec::new();
    let run = driver::drive(record, first, &answers, &mut notes).await?;
    let checks = rebuilt.into_iter().map(|(_, c)| c).collect();
    Ok(Reproduction::new(record, &mode, checks, run, notes))
}
