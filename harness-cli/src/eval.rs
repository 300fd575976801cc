//! `harness eval compare BASE.json NEW.json`: the baseline comparison from two results files
//! (written by `eval::Runner`), as a CI gate. Exits 0 when there is no regression, 1 when there
//! is one (a drop both significant and at least the minimum effect), 2 when the comparison cannot
//! be made (an unreadable file, another task or dataset, no case in common).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use harness_core::eval::{self, Comparison, EXIT_CANNOT_RUN, GateConfig, RunResults};

/// Evaluation results.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub command: EvalCommand,
}

/// `harness eval <command>`.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Compares a new run against a baseline: cases paired by id, exact McNemar test, paired
    /// bootstrap, the flipped cases. Exits 0 (no regression), 1 (regression) or 2 (cannot run).
    Compare(CompareArgs),
}

/// `harness eval compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline's results file.
    pub base: PathBuf,
    /// The new run's results file.
    pub new: PathBuf,
    /// The smallest drop, in points, that fails the gate.
    #[arg(long, default_value_t = 5.0)]
    pub min_effect: f64,
    /// The significance level.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// The drop the power statement is about, in points.
    #[arg(long, default_value_t = 15.0)]
    pub power_drop: f64,
    /// Also write the HTML report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Also write the Markdown summary here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Print the comparison as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `harness eval`.
pub fn run(args: EvalArgs) -> ExitCode {
    match args.command {
        EvalCommand::Compare(c) => compare(&c),
    }
}

fn cannot(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("harness eval compare: {message}");
    ExitCode::from(EXIT_CANNOT_RUN)
}

fn compare(args: &CompareArgs) -> ExitCode {
    let valid = args.alpha > 0.0 && args.alpha < 1.0 && args.min_effect >= 0.0;
    if !valid {
        return cannot("--alpha must be between 0 and 1 and --min-effect at least 0");
    }
    let (base, new) = match (RunResults::read(&args.base), RunResults::read(&args.new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => return cannot(e),
    };
    let config = GateConfig {
        alpha: args.alpha,
        min_effect_points: args.min_effect,
        power_drop_points: args.power_drop,
        ..GateConfig::default()
    };
    let cmp = match eval::compare(&base, &new, config) {
        Ok(c) => c,
        Err(e) => return cannot(e),
    };
    if let Some(path) = &args.report {
        let html = eval::report::html(&[&base, &new], Some(&cmp));
        if let Err(e) = write(path, &html) {
            return cannot(e);
        }
    }
    if let Some(path) = &args.markdown
        && let Err(e) = write(path, &eval::report::markdown(&new, Some(&cmp)))
    {
        return cannot(e);
    }
    if args.json {
        match serde_json::to_string_pretty(&cmp) {
            Ok(s) => println!("{s}"),
            Err(e) => return cannot(e),
        }
    } else {
        print_text(&cmp);
    }
    ExitCode::from(cmp.exit_code())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

fn print_text(c: &Comparison) {
    println!("{}", c.verdict);
    println!(
        "task {}, dataset {}: {} paired cases; pass rate {:.1}% → {:.1}% ({:+.1} points); \
         {} regressions, {} improvements; exact McNemar p = {:.4}",
        c.task,
        c.dataset,
        c.paired,
        c.base_pass_rate * 100.0,
        c.new_pass_rate * 100.0,
        c.delta_points,
        c.regressions,
        c.improvements,
        c.mcnemar_p
    );
    if let Some(b) = &c.score_bootstrap {
        println!(
            "mean score change {:+.3} (95% paired bootstrap {:+.3} to {:+.3})",
            b.mean, b.low, b.high
        );
    }
    println!("{}", c.power);
    if c.dataset_changed {
        println!("note: the dataset changed between the runs; cases are paired by id");
    }
    if !c.only_base.is_empty() || !c.only_new.is_empty() {
        println!(
            "unpaired: {} case(s) only in the baseline, {} only in the new run",
            c.only_base.len(),
            c.only_new.len()
        );
    }
    for f in &c.flipped {
        let what = if f.regressed {
            "pass → fail"
        } else {
            "fail → pass"
        };
        let got = f
            .new_got
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "no answer".into());
        println!(
            "  {} {what}: got {got}{}",
            f.id,
            f.why
                .as_deref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default()
        );
    }
}
