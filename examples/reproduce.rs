//! Reproduces a recorded call of the quickstart's tasks through their own contracts: the program
//! links the tasks, so every check (`#[llm]` rules, confidence thresholds), every chain and every
//! default is the task's own, as `harness reproduce` (which links no task) cannot be.
//!
//! ```sh
//! cargo run --example quickstart            # writes $TMPDIR/harness-quickstart/audit.jsonl
//! harness audit find $TMPDIR/harness-quickstart/audit.jsonl --since 30d
//! cargo run --example reproduce -- --audit $TMPDIR/harness-quickstart/audit.jsonl --id ID [--live]
//! ```
//!
//! Offline, the recorded responses answer; with `--live`, the process-wide harness from the
//! environment (`OPENAI_BASE_URL` etc., the local model otherwise). Exits 0 when the output is
//! identical, 1 when it differs, 2 when the record cannot be reproduced.

use std::process::ExitCode;

use harness_core::Harness;
use harness_core::audit::reproduce::{Mode, reproduce_task};
use harness_core::audit::{self, reproduce};

#[path = "support/tasks.rs"]
mod tasks;

use tasks::{Sentiment, Triage, classify, triage};

const USAGE: &str = "usage: reproduce --audit FILE --id ID [--live]";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let (Some(file), Some(id)) = (value("--audit"), value("--id")) else {
        eprintln!("{USAGE}");
        return ExitCode::from(reproduce::EXIT_CANNOT);
    };
    let record = match audit::find_record(file, id) {
        Ok(Some(r)) => r,
        Ok(None) => return cannot(format!("no record {id} in {file}")),
        Err(e) => return cannot(format!("cannot read {file}: {e}")),
    };
    let global;
    let mode = if args.iter().any(|a| a == "--live") {
        match Harness::global() {
            Ok(h) => {
                global = h;
                Mode::Live(global)
            }
            Err(e) => return cannot(e.to_string()),
        }
    } else {
        Mode::Offline
    };
    // The record names its task: dispatch to the linked one.
    let report = match record.task.as_str() {
        "classify" => {
            reproduce_task::<Sentiment>(&record, &classify::CONTRACT, mode, classify::defaults())
                .await
        }
        "triage" => {
            reproduce_task::<Triage>(&record, &triage::CONTRACT, mode, triage::defaults()).await
        }
        other => return cannot(format!("this program does not link a task `{other}`")),
    };
    match report {
        Ok(report) => {
            println!("{report}");
            ExitCode::from(report.exit_code())
        }
        Err(e) => cannot(e.to_string()),
    }
}

fn cannot(reason: String) -> ExitCode {
    eprintln!("cannot reproduce: {reason}");
    ExitCode::from(reproduce::EXIT_CANNOT)
}
