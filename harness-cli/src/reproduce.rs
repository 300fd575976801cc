//! `harness reproduce`: rebuild a recorded call's requests, re-run it, compare field by field.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use harness_core::audit::reproduce::{self, EXIT_CANNOT, Mode, Reproduction};
use harness_core::audit::{self, AuditRecord};

/// The variable naming the audit file when `--audit` is not given.
const AUDIT_VAR: &str = "HARNESS_AUDIT";

/// Reproduces one recorded call: rebuilds every attempt's exact request from the record, checks
/// it against the recorded fingerprint, re-runs the call offline from the recorded responses (or
/// live with `--live`) through the contract as the record holds it (its schema, and the steps
/// the contract took: retry, reask, fallback), and prints a table of every field: recorded,
/// reproduced, same?
///
/// Exits 0 when the output is identical, 1 when anything differs, 2 when the record cannot be
/// reproduced (not found, changed after it was written, messages not recorded in full, written by
/// a newer harness), with the reason.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// The audit file (JSONL, or a SQLite database written by the SQLite sink); default:
    /// `$HARNESS_AUDIT`.
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// The record (call) id (`harness audit find` lists them).
    #[arg(long)]
    pub id: String,
    /// Send the rebuilt requests (to the recorded model) through the harness from the
    /// environment (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`; the local model
    /// otherwise) instead of answering them from the record.
    #[arg(long)]
    pub live: bool,
    /// With `--live`: an OpenAI-compatible endpoint instead of `OPENAI_BASE_URL`.
    #[arg(long, value_name = "URL", requires = "live")]
    pub base_url: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `harness reproduce`.
pub fn run(args: &ReproduceArgs) -> ExitCode {
    match reproduce(args) {
        Ok(report) => {
            if args.json {
                let mut value = serde_json::to_value(&report).unwrap_or_default();
                value["identical"] = report.is_identical().into();
                value["exit"] = report.exit_code().into();
                line(&serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                line(&report);
            }
            ExitCode::from(report.exit_code())
        }
        Err(reason) => {
            if args.json {
                let value =
                    serde_json::json!({"id": args.id, "exit": EXIT_CANNOT, "error": reason});
                line(&serde_json::to_string_pretty(&value).unwrap_or_default());
            }
            eprintln!("harness reproduce: cannot reproduce: {reason}");
            ExitCode::from(EXIT_CANNOT)
        }
    }
}

fn reproduce(args: &ReproduceArgs) -> Result<Reproduction, String> {
    let file = match &args.audit {
        Some(f) => f.clone(),
        None => std::env::var_os(AUDIT_VAR)
            .map(PathBuf::from)
            .ok_or_else(|| format!("no audit file: give --audit FILE or set {AUDIT_VAR}"))?,
    };
    let record = load(&file, &args.id)?;
    let harness = if args.live {
        Some(crate::replay::harness(args.base_url.as_deref()).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mode = harness.as_ref().map_or(Mode::Offline, Mode::Live);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime
        .block_on(reproduce::reproduce(&record, mode))
        .map_err(|e| e.to_string())
}

/// The record `id` of `file`, or why it cannot be had: unreadable, not there, or cut short.
fn load(file: &Path, id: &str) -> Result<AuditRecord, String> {
    let shown = file.display();
    let records = audit::read_path(file).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if let Some(record) = records.into_iter().find(|r| r.id == id) {
        return Ok(record);
    }
    let torn = audit::verify_path(file).ok().and_then(|r| r.torn_tail);
    Err(match torn {
        Some(t) => format!(
            "no complete record {id} in {shown}: its last line (line {}, {} bytes) is cut short, a write that did not finish; if the record was there it cannot be read",
            t.line, t.bytes
        ),
        None => format!("no record {id} in {shown} (`harness audit find {shown}` lists them)"),
    })
}

/// Prints `text` and a newline on stdout; a closed pipe (`| head`) is not worth a panic.
pub(crate) fn line(text: &dyn std::fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
