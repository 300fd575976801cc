//! Time and cost spent on failures, from an audit trail (readiness question 06, and
//! `harness audit stats FILE`): calls, attempts, wall time, tokens and cost in failed attempts
//! versus accepted ones, by task and by failure class, the share of each, and the slowest
//! contracts.
//!
//! A trail is read as it is: a torn last line, lines that are not records, a chain that does not
//! start at the genesis hash (records cut from the front), records of tasks another program
//! declared (when the program's contracts export is given) and calls made under older versions
//! of a contract are counted and said in [`TrailStats::notes`]; records of another program are
//! left out of every share, and each task's share says which contract versions it mixes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde::Serialize;

use crate::audit::{AuditRecord, GENESIS_HASH, RecordedAttempt, VerifyReport, verify_path};
use crate::outcome::pricing;

use super::export::Export;

mod table;

/// Totals of a set of attempts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Bucket {
    /// Attempts.
    pub attempts: u64,
    /// Their wall time, in milliseconds.
    pub ms: f64,
    /// Prompt tokens billed.
    pub input_tokens: u64,
    /// Completion tokens billed.
    pub output_tokens: u64,
    /// Their cost in USD at the built-in prices, over the attempts whose model has a price.
    pub cost_usd: f64,
    /// Attempts that billed tokens on a model without a known price (left out of `cost_usd`).
    pub unpriced: u64,
}

impl Bucket {
    fn add(&mut self, a: &RecordedAttempt) {
        self.attempts += 1;
        self.ms += a.latency_ms.max(0.0);
        self.input_tokens += a.usage.input_tokens;
        self.output_tokens += a.usage.output_tokens;
        let cost = if a.usage.total() == 0 {
            Some(0.0)
        } else {
            a.response_model
                .as_deref()
                .and_then(|m| pricing::cost(m, a.usage))
                .or_else(|| pricing::cost(&a.model, a.usage))
        };
        match cost {
            Some(c) => self.cost_usd += c,
            None => self.unpriced += 1,
        }
    }

    /// Prompt and completion tokens.
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// `part / (part + rest)`, `None` when both are zero (no share to speak of).
fn share(part: f64, rest: f64) -> Option<f64> {
    let total = part + rest;
    (total > 0.0).then(|| part / total)
}

/// Shares of failed attempts, each `None` when there is nothing to divide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Shares {
    /// Of attempts.
    pub attempts: Option<f64>,
    /// Of attempt wall time.
    pub time: Option<f64>,
    /// Of tokens.
    pub tokens: Option<f64>,
    /// Of cost; `None` also when some attempt has no price (a partial share would mislead).
    pub cost: Option<f64>,
}

/// Calls and attempts of one task, or of the whole trail.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Calls (records).
    pub calls: u64,
    /// Calls by how they ended (`answer`, `default`, `escalated`, `failed`).
    pub ended: BTreeMap<String, u64>,
    /// Wall time of the calls, in milliseconds.
    pub call_ms: f64,
    /// Time inside calls but outside attempts (backoff sleeps, waiting for limits), in
    /// milliseconds: spent because an attempt failed, or waiting to be admitted.
    pub waiting_ms: f64,
    /// Accepted attempts and attempts that failed nothing (no failure class).
    pub ok: Bucket,
    /// Attempts with a failure class.
    pub failed: Bucket,
    /// The share of failed attempts in each measure.
    pub failed_share: Shares,
    /// The share of the calls' wall time spent in failed attempts and waiting after them.
    pub failed_wall_share: Option<f64>,
}

impl Totals {
    fn add(&mut self, r: &AuditRecord) {
        self.calls += 1;
        *self.ended.entry(r.outcome.status.clone()).or_default() += 1;
        self.call_ms += r.latency_ms.max(0.0);
        let mut attempts_ms = 0.0;
        for a in &r.attempts {
            attempts_ms += a.latency_ms.max(0.0);
            if a.failure.is_some() {
                self.failed.add(a);
            } else {
                self.ok.add(a);
            }
        }
        self.waiting_ms += (r.latency_ms - attempts_ms).max(0.0);
    }

    fn finish(&mut self) {
        let (f, o) = (&self.failed, &self.ok);
        self.failed_share = Shares {
            attempts: share(f.attempts as f64, o.attempts as f64),
            time: share(f.ms, o.ms),
            tokens: share(f.tokens() as f64, o.tokens() as f64),
            cost: if f.unpriced + o.unpriced == 0 {
                share(f.cost_usd, o.cost_usd)
            } else {
                None
            },
        };
        self.failed_wall_share = (self.call_ms > 0.0)
            .then(|| ((self.failed.ms + self.waiting_ms) / self.call_ms).min(1.0));
    }
}

/// Failed attempts of one failure class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassStats {
    /// The class.
    pub class: String,
    /// Its attempts.
    pub bucket: Bucket,
    /// Its share of all failed attempts' time.
    pub time_share_of_failures: Option<f64>,
    /// Its share of all attempts' time.
    pub time_share: Option<f64>,
    /// Its share of all tokens.
    pub token_share: Option<f64>,
}

/// One task's calls.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskStats {
    /// The task's name.
    pub task: String,
    /// The modules its records name (more than one: two programs, or a renamed module).
    pub modules: Vec<String>,
    /// Calls per contract version, in order of first appearance.
    pub versions: Vec<(String, u64)>,
    /// The version in the contracts export, when one was given.
    pub current_version: Option<String>,
    /// Calls made under a version other than `current_version`.
    pub other_version_calls: u64,
    /// Its totals.
    pub totals: Totals,
    /// Its failed attempts by class, most time first.
    pub by_class: Vec<ClassStats>,
    /// Median call wall time, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile call wall time, in milliseconds.
    pub p95_ms: f64,
    /// Slowest call, in milliseconds.
    pub max_ms: f64,
}

/// How much of the trail could be read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reading {
    /// Complete lines (or rows) read.
    pub lines: u64,
    /// Records counted.
    pub records: u64,
    /// Line numbers of complete lines that are not records (at most the first 20).
    pub unreadable_lines: Vec<u64>,
    /// How many complete lines are not records.
    pub unreadable: u64,
    /// Whether the last line is torn (a write cut short): not counted.
    pub torn_tail: bool,
    /// Whether the first record links to a record that is not in the file: the trail was cut at
    /// the front (rotated, or copied in part).
    pub starts_mid_chain: bool,
    /// Whether the hash chain verifies (`None` when it could not be checked).
    pub chain_ok: Option<bool>,
    /// Records of tasks the contracts export does not declare (another program), left out.
    pub foreign: u64,
    /// Their task names.
    pub foreign_tasks: Vec<String>,
}

/// Everything `harness audit stats` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrailStats {
    /// Always `harness.audit-stats`.
    pub format: String,
    /// `1`.
    pub format_version: u32,
    /// The trail read.
    pub source: String,
    /// How much of it could be read.
    pub reading: Reading,
    /// The whole trail (without records of another program).
    pub totals: Totals,
    /// Failed attempts by class over the whole trail, most time first.
    pub by_class: Vec<ClassStats>,
    /// Each task, by name.
    pub tasks: Vec<TaskStats>,
    /// Tasks by mean call wall time, slowest first (at most 5).
    pub slowest: Vec<(String, f64)>,
    /// What the numbers do not show, in words (truncation, another program, mixed versions).
    pub notes: Vec<String>,
}

/// Reads a JSONL trail line by line, keeping what parses and counting what does not.
fn read_lines(path: &Path, reading: &mut Reading) -> io::Result<Vec<AuditRecord>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut records = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            reading.torn_tail = !buf.iter().all(u8::is_ascii_whitespace);
            break;
        }
        reading.lines += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<AuditRecord>(&buf) {
            Ok(r) => records.push(r),
            Err(_) => {
                reading.unreadable += 1;
                if reading.unreadable_lines.len() < 20 {
                    reading.unreadable_lines.push(reading.lines);
                }
            }
        }
    }
    Ok(records)
}

fn is_sqlite(path: &Path) -> io::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let n = File::open(path)?.read(&mut head)?;
    Ok(n == 16 && &head == b"SQLite format 3\0")
}

/// Reads an audit store (JSONL or SQLite): the records that can be read, and how the reading
/// went (lines that are not records, a torn tail, the chain's state).
pub fn read_trail(path: &Path) -> io::Result<(Vec<AuditRecord>, Reading)> {
    let mut reading = Reading::default();
    let records = if is_sqlite(path)? {
        let records = crate::audit::read_path(path)?;
        reading.lines = records.len() as u64;
        records
    } else {
        read_lines(path, &mut reading)?
    };
    let verify: Option<VerifyReport> = verify_path(path).ok();
    reading.chain_ok = verify.as_ref().map(VerifyReport::chain_ok);
    reading.starts_mid_chain = records
        .first()
        .is_some_and(|r| !r.prev_hash.is_empty() && r.prev_hash != GENESIS_HASH);
    Ok((records, reading))
}

/// Reads an audit store (JSONL or SQLite) and computes its stats; `contracts`, the program's
/// export, tells records of another program apart and names each task's current version.
pub fn from_path(path: &Path, contracts: Option<&Export>) -> io::Result<TrailStats> {
    let (records, reading) = read_trail(path)?;
    Ok(compute(
        &path.display().to_string(),
        &records,
        reading,
        contracts,
    ))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn classes(records: &[&AuditRecord], totals: &Totals) -> Vec<ClassStats> {
    let mut by: BTreeMap<String, Bucket> = BTreeMap::new();
    for r in records {
        for a in &r.attempts {
            if let Some(c) = a.failure {
                by.entry(c.to_string()).or_default().add(a);
            }
        }
    }
    let all_ms = totals.failed.ms + totals.ok.ms;
    let all_tokens = (totals.failed.tokens() + totals.ok.tokens()) as f64;
    let mut out: Vec<ClassStats> = by
        .into_iter()
        .map(|(class, bucket)| ClassStats {
            time_share_of_failures: share(bucket.ms, totals.failed.ms - bucket.ms),
            time_share: share(bucket.ms, all_ms - bucket.ms),
            token_share: share(bucket.tokens() as f64, all_tokens - bucket.tokens() as f64),
            class,
            bucket,
        })
        .collect();
    out.sort_by(|a, b| b.bucket.ms.total_cmp(&a.bucket.ms));
    out
}

/// The stats of one task's records.
pub(crate) fn task_stats(
    name: &str,
    records: &[&AuditRecord],
    contracts: Option<&Export>,
) -> TaskStats {
    let mut totals = Totals::default();
    let mut modules: Vec<String> = Vec::new();
    let mut versions: Vec<(String, u64)> = Vec::new();
    let mut wall: Vec<f64> = Vec::new();
    for r in records {
        totals.add(r);
        if !modules.contains(&r.module) {
            modules.push(r.module.clone());
        }
        match versions.iter_mut().find(|(v, _)| *v == r.contract_version) {
            Some((_, n)) => *n += 1,
            None => versions.push((r.contract_version.clone(), 1)),
        }
        wall.push(r.latency_ms.max(0.0));
    }
    totals.finish();
    wall.sort_by(f64::total_cmp);
    let current_version = contracts
        .and_then(|c| c.task(name))
        .map(|t| t.version.clone());
    let other_version_calls = match &current_version {
        Some(cur) => versions
            .iter()
            .filter(|(v, _)| v != cur)
            .map(|(_, n)| n)
            .sum(),
        None => 0,
    };
    TaskStats {
        task: name.to_owned(),
        modules,
        versions,
        current_version,
        other_version_calls,
        by_class: classes(records, &totals),
        totals,
        p50_ms: percentile(&wall, 0.5),
        p95_ms: percentile(&wall, 0.95),
        max_ms: wall.last().copied().unwrap_or(0.0),
    }
}

/// The stats of `records` (already read; `reading` says how).
pub fn compute(
    source: &str,
    records: &[AuditRecord],
    mut reading: Reading,
    contracts: Option<&Export>,
) -> TrailStats {
    let declared = |r: &AuditRecord| contracts.is_none_or(|c| c.task(&r.task).is_some());
    let mut by_task: BTreeMap<&str, Vec<&AuditRecord>> = BTreeMap::new();
    let mut kept: Vec<&AuditRecord> = Vec::new();
    for r in records {
        if declared(r) {
            by_task.entry(r.task.as_str()).or_default().push(r);
            kept.push(r);
        } else {
            reading.foreign += 1;
            if !reading.foreign_tasks.contains(&r.task) {
                reading.foreign_tasks.push(r.task.clone());
            }
        }
    }
    reading.records = kept.len() as u64;
    let mut totals = Totals::default();
    for r in &kept {
        totals.add(r);
    }
    totals.finish();
    let tasks: Vec<TaskStats> = by_task
        .iter()
        .map(|(name, rs)| task_stats(name, rs, contracts))
        .collect();
    let mut slowest: Vec<(String, f64)> = tasks
        .iter()
        .filter(|t| t.totals.calls > 0)
        .map(|t| (t.task.clone(), t.totals.call_ms / t.totals.calls as f64))
        .collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    slowest.truncate(5);
    let mut stats = TrailStats {
        format: "harness.audit-stats".to_owned(),
        format_version: 1,
        source: source.to_owned(),
        by_class: classes(&kept, &totals),
        totals,
        tasks,
        slowest,
        notes: Vec::new(),
        reading,
    };
    stats.notes = notes(&stats, contracts.is_some());
    stats
}

fn notes(s: &TrailStats, with_contracts: bool) -> Vec<String> {
    let r = &s.reading;
    let mut notes = Vec::new();
    if r.records == 0 {
        notes.push("no record counted: every share is empty".to_owned());
    }
    if r.torn_tail {
        notes.push("the last line is torn (a write cut short): it is not counted".to_owned());
    }
    if r.unreadable > 0 {
        notes.push(format!(
            "{} complete line(s) are not audit records (lines {:?}{}): not counted",
            r.unreadable,
            r.unreadable_lines,
            if r.unreadable > r.unreadable_lines.len() as u64 {
                ", ..."
            } else {
                ""
            }
        ));
    }
    if r.starts_mid_chain {
        notes.push("the first record links to one that is not in the file: the trail was cut at the front, so calls before it are missing".to_owned());
    }
    if r.chain_ok == Some(false) {
        notes.push("the hash chain does not verify (`harness audit verify` says where): records were changed, removed, inserted or reordered".to_owned());
    }
    if r.foreign > 0 {
        notes.push(format!(
            "{} record(s) of tasks this program does not declare ({}): another program's, left out of every number",
            r.foreign,
            r.foreign_tasks.join(", ")
        ));
    }
    if !with_contracts {
        notes.push("no contracts export given (`--contracts`): records of another program cannot be told apart, and versions are not compared with the current ones".to_owned());
    }
    for t in &s.tasks {
        if t.modules.len() > 1 {
            notes.push(format!(
                "task `{}` is recorded from {} modules ({}): two programs or a moved task share its numbers",
                t.task,
                t.modules.len(),
                t.modules.join(", ")
            ));
        }
        if t.versions.len() > 1 || t.other_version_calls > 0 {
            let list: Vec<String> = t
                .versions
                .iter()
                .map(|(v, n)| format!("{v}: {n}"))
                .collect();
            notes.push(format!(
                "task `{}` mixes {} contract version(s) ({}){}: its shares cover all of them",
                t.task,
                t.versions.len(),
                list.join(", "),
                match &t.current_version {
                    Some(cur) => format!(
                        ", {} call(s) not on the current `{cur}`",
                        t.other_version_calls
                    ),
                    None => String::new(),
                }
            ));
        }
    }
    if s.totals.failed.unpriced + s.totals.ok.unpriced > 0 {
        notes.push(format!(
            "{} attempt(s) billed tokens on a model without a built-in price: costs leave them out and the cost share is not given",
            s.totals.failed.unpriced + s.totals.ok.unpriced
        ));
    }
    notes
}

impl TrailStats {
    /// The stats as pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The task called `name`.
    pub fn task(&self, name: &str) -> Option<&TaskStats> {
        self.tasks.iter().find(|t| t.task == name)
    }
}
