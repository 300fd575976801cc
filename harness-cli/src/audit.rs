//! `harness audit`: verify and read audit trails (JSONL or SQLite, told apart by content).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use harness_core::{audit, registry};

/// Exit status of `harness audit verify` when the chain is broken.
pub const EXIT_BROKEN: u8 = 1;
/// Exit status when the file cannot be read.
pub const EXIT_UNREADABLE: u8 = 2;
/// Exit status when every record verifies but the last line is torn (a write cut short).
pub const EXIT_TORN: u8 = 3;

/// Verify and read audit trails.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// `harness audit <command>`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Checks every record's hash and link. Exits 0 when the chain is intact, 1 when a record was
    /// changed, removed, inserted or reordered (and says which, and on what line), 2 when the file
    /// cannot be read, 3 when only the last line is torn (a write cut short by a crash).
    Verify {
        /// The audit file: JSONL, or a SQLite database written by the SQLite sink.
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Time, tokens and cost spent on failures: calls, attempts, wall time, tokens and cost in
    /// failed attempts versus accepted ones, by task and by failure class, the share of each, and
    /// the slowest contracts. A torn tail, lines that are not records, a trail cut at the front,
    /// records of another program (with `--contracts`) and mixed contract versions are counted
    /// and said. Exits 0, or 2 when the file cannot be read.
    Stats {
        /// The audit file: JSONL, or a SQLite database written by the SQLite sink.
        file: PathBuf,
        /// The program's contracts export (JSON, `harness.contracts`): records of tasks it does
        /// not declare are another program's and are left out; versions are compared with it.
        #[arg(long)]
        contracts: Option<PathBuf>,
        /// Print the stats as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints one record, pretty.
    Show {
        /// The audit file.
        file: PathBuf,
        /// The record (call) id.
        #[arg(long)]
        id: String,
    },
    /// Lists the records that match filters (task, time range, input hash, outcome).
    Find(crate::find::FindArgs),
}

/// Runs `harness audit`.
pub fn run(args: AuditArgs) -> ExitCode {
    match args.command {
        AuditCommand::Verify { file, json } => verify(&file, json),
        AuditCommand::Show { file, id } => show(&file, &id),
        AuditCommand::Find(args) => crate::find::run(&args),
        AuditCommand::Stats {
            file,
            contracts,
            json,
        } => stats(&file, contracts.as_deref(), json),
    }
}

fn stats(file: &std::path::Path, contracts: Option<&std::path::Path>, json: bool) -> ExitCode {
    let export = match contracts.map(|p| {
        std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| registry::Export::from_json(&t).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", p.display()))
    }) {
        None => None,
        Some(Ok(e)) => Some(e),
        Some(Err(e)) => {
            eprintln!("harness audit stats: cannot read the contracts export {e}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    match registry::stats::from_path(file, export.as_ref()) {
        Ok(s) => {
            let text = if json {
                format!("{}\n", s.to_json_pretty())
            } else {
                s.to_string()
            };
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("harness audit stats: cannot read {}: {e}", file.display());
            ExitCode::from(EXIT_UNREADABLE)
        }
    }
}

fn verify(file: &std::path::Path, json: bool) -> ExitCode {
    let report = match audit::verify_path(file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("harness audit verify: cannot read {}: {e}", file.display());
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    if json {
        println!("{}", report_json(file, &report));
    } else if report.chain_ok() {
        println!("{}: {report}", file.display());
    } else {
        eprintln!("{}: {report}", file.display());
    }
    if !report.chain_ok() {
        ExitCode::from(EXIT_BROKEN)
    } else if report.torn_tail.is_some() {
        ExitCode::from(EXIT_TORN)
    } else {
        ExitCode::SUCCESS
    }
}

fn report_json(file: &std::path::Path, r: &audit::VerifyReport) -> serde_json::Value {
    let first_break = r.first_break.as_ref().map(|b| {
        let (kind, detail) = match &b.kind {
            audit::BreakKind::Tampered { stored, computed } => (
                "tampered",
                serde_json::json!({"stored": stored, "computed": computed}),
            ),
            audit::BreakKind::Unlinked { expected, found } => (
                "unlinked",
                serde_json::json!({"expected": expected, "found": found}),
            ),
            audit::BreakKind::Malformed { error } => {
                ("malformed", serde_json::json!({ "error": error }))
            }
        };
        serde_json::json!({"line": b.line, "id": b.id, "kind": kind, "detail": detail, "message": b.kind.to_string()})
    });
    serde_json::json!({
        "file": file.display().to_string(),
        "intact": r.is_intact(),
        "chain_ok": r.chain_ok(),
        "records": r.records,
        "verified": r.verified,
        "breaks": r.breaks,
        "first_break": first_break,
        "torn_tail": r.torn_tail.as_ref().map(|t| serde_json::json!({"line": t.line, "bytes": t.bytes})),
        "last_hash": r.last_hash,
    })
}

fn show(file: &std::path::Path, id: &str) -> ExitCode {
    match audit::find_record(file, id) {
        Ok(Some(record)) => {
            match serde_json::to_string_pretty(&record) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("harness audit show: {e}");
                    return ExitCode::from(EXIT_UNREADABLE);
                }
            }
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("harness audit show: no record {id} in {}", file.display());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("harness audit show: cannot read {}: {e}", file.display());
            ExitCode::from(EXIT_UNREADABLE)
        }
    }
}
