//! `harness audit find`: the records of an audit trail that match filters, as a table or JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::reproduce::line;
use harness_core::audit::{self, Filter, Found, FoundTable, TimeBound};

/// Exit status when no record matches.
const EXIT_NONE: u8 = 1;
/// Exit status when the file cannot be read or a filter is not understood.
const EXIT_UNUSABLE: u8 = 2;

/// Lists the records that match every filter given, oldest first: id, start, task, how it ended,
/// attempts, model, request fingerprint, and whether it can be reproduced exactly. Exits 0 when
/// records match, 1 when none does, 2 when the file cannot be read or a filter is not understood.
#[derive(Debug, Args)]
pub struct FindArgs {
    /// The audit file: JSONL, or a SQLite database written by the SQLite sink.
    pub file: PathBuf,
    /// The task's name (or `module::path::name`).
    #[arg(long)]
    pub task: Option<String>,
    /// Calls that started at or after this: RFC 3339 (`2026-11-02T09:00:00Z`, `2026-11-02`) or an
    /// age (`30d`, `12h`, `15m`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Calls that started before this (same forms as `--since`).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// The SHA-256 (or a prefix of 6+ hex digits) of the request fingerprint, of an attempt's
    /// fingerprint, or of one input's text.
    #[arg(long, value_name = "HASH")]
    pub input_hash: Option<String>,
    /// How the call ended: answer, default, escalated, failed, or a failure class
    /// (invalid_output, timeout, ...).
    #[arg(long, visible_alias = "outcome", value_name = "STATUS")]
    pub status: Option<String>,
    /// At most this many records (the most recent ones).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print the records as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Runs `harness audit find`.
pub fn run(args: &FindArgs) -> ExitCode {
    match find(args) {
        Ok(found) => {
            if args.json {
                line(&serde_json::to_string_pretty(&found).unwrap_or_default());
            } else if found.is_empty() {
                eprintln!("no record matches");
            } else {
                line(&FoundTable(&found));
            }
            if found.is_empty() {
                ExitCode::from(EXIT_NONE)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(message) => {
            eprintln!("harness audit find: {message}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

fn find(args: &FindArgs) -> Result<Vec<Found>, String> {
    let time = |t: &Option<String>| {
        t.as_deref()
            .map(TimeBound::parse)
            .transpose()
            .map_err(|e| e.to_string())
    };
    let mut filter = Filter::default();
    filter.task = args.task.clone();
    filter.since = time(&args.since)?;
    filter.until = time(&args.until)?;
    filter.input_hash = args.input_hash.clone();
    filter.status = args.status.clone();
    filter.check()?;
    let records = audit::read_path(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let mut found: Vec<Found> = audit::find(&records, &filter)
        .into_iter()
        .map(Found::from)
        .collect();
    if let Some(limit) = args.limit {
        found.drain(..found.len().saturating_sub(limit));
    }
    Ok(found)
}
