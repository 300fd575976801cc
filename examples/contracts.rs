//! The registry of the quickstart's tasks, published, and the readiness audit of the program.
//!
//! ```sh
//! cargo run --example contracts -- --format json          # every contract, versioned JSON
//! cargo run --example contracts -- --format md            # one Markdown page
//! cargo run --example contracts -- diff OLD.json NEW.json # what changed between two exports
//! cargo run --example contracts -- serve [--secs N]        # a flaky server for the quickstart itself
//! cargo run --example contracts -- simulate --audit FILE  # the quickstart's calls against a flaky server
//! cargo run --example contracts -- drill --out FILE       # the drills of both tasks, as JSON
//! cargo run --example contracts -- readiness --audit FILE [--drill FILE] [--eval FILE]...
//!     [--declare drift_alarm|online_scorer|model_change_alarm|traffic_regression_suite]...
//!     [--threshold 0.6] [--json]
//! ```
//!
//! `readiness` exits 1 when a task scores under the threshold (default 0.5), for CI; every
//! command exits 2 when its input cannot be read. `docs/readiness.md` explains the questions,
//! the evidence and its formats. A program publishes its contracts the same
//! way: `registry::program()?.export("name")`, then `to_json_pretty()` or `to_markdown()`.

#[path = "support/tasks.rs"]
mod tasks;

#[path = "support/flaky.rs"]
mod flaky;

use std::path::PathBuf;
use std::process::ExitCode;

use harness_core::registry::readiness::{Evidence, Readiness};
use harness_core::registry::{self, Export, Registry};
use harness_core::testing::drill::{self, DrillOptions};
use tasks::{Sentiment, Triage, classify, triage};

const USAGE: &str = "usage: contracts --format json|md | diff OLD NEW | serve [--secs N] | simulate --audit FILE | drill --out FILE | readiness --audit FILE [--drill FILE] [--eval FILE]... [--declare FACT]... [--threshold N] [--json]";

/// The value after `flag`, if given.
fn flag(args: &[String], name: &str) -> Option<String> {
    flags(args, name).into_iter().next()
}

/// Every value after `flag`.
fn flags(args: &[String], name: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].clone())
        .collect()
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("contracts: {message}");
    ExitCode::from(2)
}

fn registry() -> Result<Registry, ExitCode> {
    registry::program().map_err(fail)
}

fn export(format: &str) -> ExitCode {
    let reg = match registry() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let export = reg.export("quickstart");
    match format {
        "json" => println!("{}", export.to_json_pretty()),
        "md" => print!("{}", export.to_markdown()),
        other => return fail(format!("unknown format `{other}`: json or md\n{USAGE}")),
    }
    ExitCode::SUCCESS
}

fn diff(old: &str, new: &str) -> ExitCode {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read {p}: {e}"))
            .and_then(|t| Export::from_json(&t).map_err(|e| format!("{p}: {e}")))
    };
    match (read(old), read(new)) {
        (Ok(a), Ok(b)) => {
            print!("{}", a.diff(&b));
            ExitCode::SUCCESS
        }
        (Err(e), _) | (_, Err(e)) => fail(e),
    }
}

async fn simulate(audit: PathBuf) -> ExitCode {
    match flaky::run(&audit, 4, 0.35, 7).await {
        Ok(run) => {
            println!(
                "{} calls ({} answered) against a flaky server, {} requests; audit trail {}",
                run.calls,
                run.answers,
                run.requests,
                audit.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Serves the flaky server for `secs` seconds, for
/// `OPENAI_BASE_URL=<url> cargo run --example quickstart`.
async fn serve(secs: u64) -> ExitCode {
    match flaky::server(0.35, 7).await {
        Ok(server) => {
            println!("{}", server.base_url());
            eprintln!(
                "a flaky server (5xx, 429s and schema-breaking answers at 35%) for {secs}s: run\n  OPENAI_BASE_URL={} cargo run --example quickstart",
                server.base_url()
            );
            tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

async fn drills(out: PathBuf) -> ExitCode {
    let review = vec![(
        "review",
        "Arrived broken, support never answered.".to_owned(),
    )];
    let a = drill::run::<Sentiment>(&classify::CONTRACT, review, DrillOptions::new()).await;
    let email = vec![("email", "I was charged twice for order #1234.".to_owned())];
    let b = match triage::defaults() {
        Some(d) => {
            drill::run_with_defaults::<Triage>(&triage::CONTRACT, email, DrillOptions::new(), d)
                .await
        }
        None => drill::run::<Triage>(&triage::CONTRACT, email, DrillOptions::new()).await,
    };
    let json = serde_json::Value::Array(vec![a.to_json(), b.to_json()]);
    match std::fs::write(&out, format!("{json:#}\n")) {
        Ok(()) => {
            println!(
                "drill results of `classify` and `triage`: {}",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot write {}: {e}", out.display())),
    }
}

fn evidence(args: &[String]) -> Result<Evidence, String> {
    let mut ev = Evidence::new();
    if let Some(a) = flag(args, "--audit") {
        ev = ev.audit_trail(a).map_err(|e| e.to_string())?;
    }
    if let Some(d) = flag(args, "--drill") {
        ev = ev.drill_results(d).map_err(|e| e.to_string())?;
    }
    for e in flags(args, "--eval") {
        ev = ev.eval_results(e).map_err(|e| e.to_string())?;
    }
    for fact in flags(args, "--declare") {
        ev = ev.declare(fact);
    }
    Ok(ev)
}

fn readiness(args: &[String]) -> ExitCode {
    let reg = match registry() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let threshold = match flag(args, "--threshold").map(|t| t.parse::<f64>()) {
        None => 0.5,
        Some(Ok(t)) if (0.0..=1.0).contains(&t) => t,
        Some(_) => return fail("--threshold takes a number from 0 to 1"),
    };
    let ev = match evidence(args) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let report = Readiness::assess(&reg, &ev);
    if args.iter().any(|a| a == "--json") {
        println!("{}", report.to_json_pretty());
    } else {
        print!("{report}");
    }
    let passes = report.passes(threshold);
    eprintln!(
        "threshold {:.0}%: {}",
        threshold * 100.0,
        if passes {
            "pass"
        } else {
            "FAIL (a task scores below it)"
        }
    );
    if passes {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--format") => match args.get(1) {
            Some(f) => export(f),
            None => fail(USAGE),
        },
        Some("diff") => match (args.get(1), args.get(2)) {
            (Some(a), Some(b)) => diff(a, b),
            _ => fail(USAGE),
        },
        Some("serve") => match flag(&args, "--secs").map(|s| s.parse::<u64>()) {
            None => serve(600).await,
            Some(Ok(secs)) => serve(secs).await,
            Some(Err(_)) => fail("--secs takes a whole number of seconds"),
        },
        Some("simulate") => match flag(&args, "--audit") {
            Some(a) => simulate(a.into()).await,
            None => fail(USAGE),
        },
        Some("drill") => match flag(&args, "--out") {
            Some(o) => drills(o.into()).await,
            None => fail(USAGE),
        },
        Some("readiness") => readiness(&args[1..]),
        _ => fail(USAGE),
    }
}
