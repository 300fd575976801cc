//! Runs a few harnessed tasks against a real model and prints each typed result and how it was
//! obtained.
//!
//! By default it talks to the local SmolLM2-135M that `scripts/local-model.sh` starts on
//! 127.0.0.1:8089. Set `OPENAI_BASE_URL` (and `OPENAI_API_KEY`, `HARNESS_MODEL`) to use any
//! OpenAI-compatible endpoint instead.
//!
//! ```sh
//! scripts/local-model.sh && cargo run --example quickstart
//! ```

use std::process::ExitCode;
use std::time::Instant;

use harness_core::HarnessBuilder;
use harness_core::audit::{self, JsonlSink};
use harness_core::prelude::*;

#[path = "support/tasks.rs"]
mod tasks;

use tasks::{classify, triage};

fn report<T: std::fmt::Debug>(
    what: &str,
    result: &TaskResult<T>,
    took: std::time::Duration,
) -> bool {
    match result {
        Ok(outcome) => {
            let r = &outcome.report;
            println!("{what}");
            match &outcome.resolution {
                Resolution::Answer(v) => println!("  → {v:?}"),
                Resolution::Default { value, class } => {
                    println!("  → default {value:?} (after {class})")
                }
                Resolution::Escalated(e) => println!("  → for a human: {e}"),
                // `Resolution` is non-exhaustive: later releases may add ways to end.
                _ => println!("  → {}", outcome.summary()),
            }
            println!(
                "  how: {}; {} attempt(s), {} tokens in / {} out, {:.1}s",
                outcome.summary(),
                r.attempts.len(),
                r.usage.input_tokens,
                r.usage.output_tokens,
                took.as_secs_f64()
            );
            outcome.is_answer()
        }
        Err(e) => {
            println!(
                "{what}\n  → error {:?}: {}",
                e.kind(),
                e.message().replace('\n', "\n      ")
            );
            println!(
                "  {} attempt(s), {} tokens, {:.1}s",
                e.attempts().len(),
                e.usage().total(),
                took.as_secs_f64()
            );
            false
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // Every call is written to a hash-chained audit trail; `harness audit verify` checks it. It
    // goes under the system temp dir, not `./target/`: the build directory may be anywhere
    // (`CARGO_TARGET_DIR`), or not exist where the example is run.
    let audit_dir = std::env::temp_dir().join("harness-quickstart");
    let audit_path = audit_dir.join("audit.jsonl");
    if let Err(e) = std::fs::create_dir_all(&audit_dir) {
        eprintln!("cannot create {}: {e}", audit_dir.display());
        return ExitCode::FAILURE;
    }
    println!("audit trail: {}\n", audit_path.display());
    let audit_path = audit_path.as_path();
    let sink = match JsonlSink::open(audit_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot open {}: {e}", audit_path.display());
            return ExitCode::FAILURE;
        }
    };
    let harness = match HarnessBuilder::from_env().and_then(|b| b.observer(sink).build()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", classify::CONTRACT.doc());

    let reviews = [
        "Arrived broken and support never answered my emails. Never again.",
        "Great quality, fast delivery, would buy again!",
        "It's fine. Does what it says.",
    ];
    let mut answers = 0;
    for review in reviews {
        let t = Instant::now();
        let result = classify::with(&harness, review).await;
        answers += report(&format!("classify({review:?})"), &result, t.elapsed()) as usize;
    }
    let emails = [
        "I was charged twice for order #1234 this month, please refund one of the payments.",
        "My parcel has been stuck in transit for two weeks. Where is it?",
    ];
    for email in emails {
        let t = Instant::now();
        let result = triage::with(&harness, email).await;
        answers += report(&format!("triage({email:?})"), &result, t.elapsed()) as usize;
    }
    match audit::verify_jsonl(audit_path) {
        Ok(report) => println!(
            "\naudit trail {}: {report}\n(check it again with `harness audit verify {}`)",
            audit_path.display(),
            audit_path.display()
        ),
        Err(e) => eprintln!("cannot verify {}: {e}", audit_path.display()),
    }
    if answers == 0 {
        eprintln!(
            "no task got a model answer: is the model server running? (scripts/local-model.sh)"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
