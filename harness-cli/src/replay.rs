//! `harness replay`: send a recorded call's exact request again and diff the answers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use harness_core::Harness;
use harness_core::audit;

/// Re-runs one recorded call (same messages, model, parameters and seed) against a live model and
/// shows what changed in its answer, by JSON path. Exits 0 when the output is the same, 1 when it
/// differs, 2 when the call cannot be replayed.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The audit file (JSONL, or a SQLite database written by the SQLite sink).
    #[arg(long)]
    pub audit: PathBuf,
    /// The record (call) id.
    #[arg(long)]
    pub id: String,
    /// An OpenAI-compatible endpoint to send the request to (default: `OPENAI_BASE_URL`).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `harness replay`.
pub fn run(args: ReplayArgs) -> ExitCode {
    let record = match audit::find_record(&args.audit, &args.id) {
        Ok(Some(r)) => r,
        Ok(None) => {
            eprintln!(
                "harness replay: no record {} in {}",
                args.id,
                args.audit.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("harness replay: cannot read {}: {e}", args.audit.display());
            return ExitCode::from(2);
        }
    };
    let harness = match harness(args.base_url.as_deref()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("harness replay: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("harness replay: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(audit::replay_with(&record, &harness)) {
        Ok(result) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&result).unwrap_or_default()
                );
            } else {
                println!("{result}");
            }
            if result.is_same() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("harness replay: {e}");
            ExitCode::from(2)
        }
    }
}

/// The harness from the environment, pointed at `base_url` when given.
pub(crate) fn harness(base_url: Option<&str>) -> Result<Harness, harness_core::ConfigError> {
    let mut vars: std::collections::HashMap<String, String> = harness_core::engine::VARIABLES
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| (name.to_string(), v)))
        .collect();
    if let Some(url) = base_url {
        vars.insert("OPENAI_BASE_URL".into(), url.to_owned());
    }
    harness_core::engine::from_vars(&vars)
}
