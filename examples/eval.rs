//! Evaluates the quickstart's `classify` task on a dataset, scored on the label, and gates it
//! against a baseline.
//!
//! ```sh
//! scripts/local-model.sh
//! cargo run --example eval -- --dataset examples/data/reviews.jsonl --out /tmp/base.json
//! cargo run --example eval -- --dataset examples/data/reviews.jsonl --out /tmp/new.json \
//!     --baseline /tmp/base.json --report /tmp/eval.html
//! ```
//!
//! Dataset lines: `{"id": "r001", "inputs": {"review": "..."}, "expected": {"label": "Positive"}}`.
//! Also: `--markdown FILE` (a summary for a pull request), `--limit N` (the first N cases),
//! `--concurrency N`, `--repeats N`, `--label TEXT`, `--min-effect POINTS`.
//!
//! Exit codes: 0 no regression (or no baseline), 1 regression, 2 cannot run. A run killed midway
//! resumes when started again with the same `--out`.

use std::path::PathBuf;
use std::process::ExitCode;

use harness_core::HarnessBuilder;
use harness_core::eval::{
    self, Dataset, EXIT_CANNOT_RUN, EvalTask, GateConfig, RunResults, Runner, score,
};
use harness_core::prelude::*;

#[path = "support/tasks.rs"]
mod tasks;

use tasks::{Sentiment, classify};

/// The input of `classify`, as the dataset writes it.
#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Review {
    /// The customer review.
    review: String,
}

/// `classify` as evaluation sees it.
struct Classify;

impl EvalTask for Classify {
    type Input = Review;
    type Output = Sentiment;
    fn contract() -> &'static TaskContract {
        &classify::CONTRACT
    }
    async fn call(&self, harness: &Harness, input: &Review) -> TaskResult<Sentiment> {
        classify::with(harness, &input.review).await
    }
}

#[derive(Default)]
struct Args {
    dataset: Option<PathBuf>,
    out: Option<PathBuf>,
    baseline: Option<PathBuf>,
    report: Option<PathBuf>,
    markdown: Option<PathBuf>,
    limit: Option<usize>,
    concurrency: usize,
    repeats: u32,
    label: String,
    min_effect: f64,
}

const USAGE: &str = "usage: eval --dataset FILE --out RESULTS.json [--baseline RESULTS.json] \
[--report FILE.html] [--markdown FILE.md] [--limit N] [--concurrency N] [--repeats N] \
[--label TEXT] [--min-effect POINTS]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        concurrency: 2,
        repeats: 1,
        min_effect: 5.0,
        ..Args::default()
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--dataset" => a.dataset = Some(value()?.into()),
            "--out" => a.out = Some(value()?.into()),
            "--baseline" => a.baseline = Some(value()?.into()),
            "--report" => a.report = Some(value()?.into()),
            "--markdown" => a.markdown = Some(value()?.into()),
            "--label" => a.label = value()?,
            "--limit" => a.limit = Some(number(value()?)? as usize),
            "--concurrency" => a.concurrency = number(value()?)? as usize,
            "--repeats" => a.repeats = number(value()?)? as u32,
            "--min-effect" => a.min_effect = number(value()?)?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if a.dataset.is_none() || a.out.is_none() {
        return Err(format!("--dataset and --out are required\n{USAGE}"));
    }
    Ok(a)
}

fn cannot(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("eval: {message}");
    ExitCode::from(EXIT_CANNOT_RUN)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => return cannot(e),
    };
    let (Some(dataset_path), Some(out)) = (&args.dataset, &args.out) else {
        return cannot(USAGE);
    };
    let mut dataset = match Dataset::load::<Classify>(dataset_path) {
        Ok(d) => d,
        Err(e) => return cannot(e),
    };
    if let Some(n) = args.limit {
        dataset.cases.truncate(n);
    }
    // Read the baseline first: a missing baseline is found before the model is called.
    let baseline = match args.baseline.as_ref().map(RunResults::read).transpose() {
        Ok(b) => b,
        Err(e) => return cannot(e),
    };
    let harness = match HarnessBuilder::from_env().and_then(|b| b.build()) {
        Ok(h) => h,
        Err(e) => return cannot(e),
    };
    println!(
        "evaluating `{}` on {} ({} cases) → {}",
        classify::CONTRACT.name,
        dataset_path.display(),
        dataset.cases.len(),
        out.display()
    );
    let runner = Runner::new()
        .scorer(score::fields(&["label"]))
        .concurrency(args.concurrency)
        .repeats(args.repeats)
        .label(args.label.clone())
        .out(out);
    let results = match runner.run(&harness, &Classify, &dataset).await {
        Ok(r) => r,
        Err(e) => return cannot(e),
    };
    print_summary(&results);
    finish(&args, baseline.as_ref(), &results)
}

fn print_summary(r: &RunResults) {
    let o = &r.summary.overall;
    println!(
        "pass rate {:.1}% (95% CI {:.1}–{:.1}%), {} of {} cases; label accuracy {:.1}%",
        o.pass_rate * 100.0,
        o.ci95[0] * 100.0,
        o.ci95[1] * 100.0,
        o.passed,
        o.n,
        o.fields.get("label").map_or(0.0, |f| f.accuracy * 100.0)
    );
    println!(
        "latency p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms; tokens {} in / {} out",
        o.latency_ms.p50, o.latency_ms.p95, o.latency_ms.p99, o.input_tokens, o.output_tokens
    );
    let mix: Vec<String> = o.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("outcomes: {}", mix.join(", "));
}

fn finish(args: &Args, baseline: Option<&RunResults>, results: &RunResults) -> ExitCode {
    let config = GateConfig {
        min_effect_points: args.min_effect,
        ..GateConfig::default()
    };
    let cmp = match baseline
        .map(|b| eval::compare(b, results, config))
        .transpose()
    {
        Ok(c) => c,
        Err(e) => return cannot(e),
    };
    if let Some(c) = &cmp {
        println!("{}", c.verdict);
        println!("{}", c.power);
        for f in &c.flipped {
            let what = if f.regressed {
                "pass → fail"
            } else {
                "fail → pass"
            };
            println!("  {} {what}: {}", f.id, f.why.as_deref().unwrap_or(""));
        }
    }
    let runs: Vec<&RunResults> = baseline.into_iter().chain([results]).collect();
    if let Some(path) = &args.report {
        if let Err(e) = std::fs::write(path, eval::report::html(&runs, cmp.as_ref())) {
            return cannot(format!("{}: {e}", path.display()));
        }
        println!("report: {}", path.display());
    }
    if let Some(path) = &args.markdown
        && let Err(e) = std::fs::write(path, eval::report::markdown(results, cmp.as_ref()))
    {
        return cannot(format!("{}: {e}", path.display()));
    }
    ExitCode::from(cmp.map_or(eval::EXIT_OK, |c| c.exit_code()))
}
