//! `harness`: the command line of the harness.
//!
//! One module per subcommand, each with its clap `Args` and a `run` returning the exit code:
//! `0` done, `1` could not run (unreadable input, unusable schema), `2` the input was rejected;
//! `harness eval compare` follows CI's convention instead: `0` no regression, `1` regression,
//! `2` cannot run.
#![deny(missing_docs)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod eval;
mod find;
mod parse;
mod replay;
mod reproduce;
mod review;

/// Tools for harness outputs.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reads a model output on stdin and prints the repaired JSON, or why it is rejected.
    Parse(parse::Args),
    /// Checks and reads audit trails.
    Audit(audit::AuditArgs),
    /// Re-runs a recorded call and shows how the new output differs.
    Replay(replay::ReplayArgs),
    /// Compares evaluation results (exit codes: 0 no regression, 1 regression, 2 cannot run).
    Eval(eval::EvalArgs),
    /// Rebuilds a recorded call's requests, re-runs it and compares the outputs field by field.
    ///
    /// Exits 0 when the output is identical, 1 when it differs, 2 when the record cannot be
    /// reproduced (with the reason). See docs/reproduce.md.
    Reproduce(reproduce::ReproduceArgs),
    /// The review queue: list, show, approve or reject the calls and escalations waiting for a
    /// person (exit codes: 0 done, 1 no such item, 2 cannot read the queue, 3 already decided
    /// the other way or expired).
    Review(review::ReviewArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Parse(args) => parse::run(&args),
        Command::Audit(args) => audit::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Reproduce(args) => reproduce::run(&args),
        Command::Review(args) => review::run(args),
    }
}
