//! `harness`: the command line of the harness.
//!
//! One module per subcommand, each with its clap `Args` and a `run` returning the exit code:
//! `0` done, `1` could not run (unreadable input, unusable schema), `2` the input was rejected.
#![deny(missing_docs)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod parse;

/// Tools for harness outputs.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Parse(parse::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Parse(args) => parse::run(&args),
    }
}
