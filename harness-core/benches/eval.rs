//! What evaluation costs: scoring and statistics for 10,000 cases (target ≤ 100 ms: the scorers,
//! the summary with its intervals, percentiles and confusion matrix, and the comparison with its
//! exact McNemar test and a 1,000-resample paired bootstrap), and the runner's own overhead per
//! case against the scripted provider, next to a bare loop calling the task the same number of
//! times (target ≤ 20 µs per case more than the loop).
//!
//! `cargo bench -p harness-core --features testing --bench eval`

use divan::{Bencher, black_box};
use harness_core::Harness;
use harness_core::contract::{Action, FailureClass, InputSpec, TaskContract};
use harness_core::eval::{
    self, CaseResult, Dataset, Ending, EvalTask, GateConfig, Observation, RunInfo, RunResults,
    Runner, Scorer, score,
};
use harness_core::outcome::TaskResult;
use harness_core::provider::scripted::{Scripted, Step};
use harness_core::testing::fixtures::{self, ContractBuilder, Label, chain};
use serde_json::{Value, json};

fn main() {
    divan::main();
}

static CLASSIFY: TaskContract = ContractBuilder::new("classify", fixtures::output::<Label>())
    .prompt("Review: {review}")
    .inputs(&[InputSpec {
        name: "review",
        rust_type: "&str",
    }])
    .chains(&[chain(FailureClass::InvalidOutput, &[Action::Fail])])
    .build();

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Review {
    review: String,
}

struct Classify;

impl EvalTask for Classify {
    type Input = Review;
    type Output = Label;
    fn contract() -> &'static TaskContract {
        &CLASSIFY
    }
    async fn call(&self, h: &Harness, i: &Review) -> TaskResult<Label> {
        h.run::<Label>(&CLASSIFY, vec![("review", i.review.clone())], None, None)
            .await
    }
}

const LABELS: [&str; 3] = ["positive", "neutral", "negative"];
const N: usize = 10_000;

fn rows(wrong: impl Fn(usize) -> bool) -> Vec<(Value, Value, Value)> {
    (0..N)
        .map(|i| {
            let e = LABELS[i % 3];
            let g = if wrong(i) { LABELS[(i + 1) % 3] } else { e };
            (
                json!({"review": format!("review {i}")}),
                json!({"label": e}),
                json!({"label": g}),
            )
        })
        .collect()
}

fn info() -> RunInfo {
    RunInfo {
        task: "classify".into(),
        dataset: "reviews".into(),
        cases: N,
        repeats: 1,
        enum_fields: [("label".to_owned(), LABELS.map(str::to_owned).to_vec())].into(),
        ..RunInfo::default()
    }
}

/// Scores every row and builds the results with their summary.
fn score_all(rows: &[(Value, Value, Value)], scorer: &dyn Scorer) -> RunResults {
    let cases = rows
        .iter()
        .enumerate()
        .map(|(i, (inputs, expected, got))| {
            let obs = Observation {
                id: "c",
                inputs,
                expected: Some(expected),
                got: Some(got),
                ending: Ending::Answer,
                latency: std::time::Duration::from_millis(100 + (i % 400) as u64),
                usage: Default::default(),
                cost_usd: None,
            };
            let s = scorer.score(&obs);
            let ok = s.passed;
            CaseResult {
                id: format!("c{i:05}"),
                repeat: 0,
                tags: vec![],
                inputs: inputs.clone(),
                expected: Some(expected.clone()),
                got: Some(got.clone()),
                ending: Ending::Answer,
                class: None,
                passed: ok,
                score: s.value,
                scores: vec![s],
                fields: [(
                    "label".to_owned(),
                    eval::FieldResult {
                        expected: expected["label"].clone(),
                        got: Some(got["label"].clone()),
                        ok,
                    },
                )]
                .into(),
                latency_ms: 100.0 + (i % 400) as f64,
                attempts: 1,
                input_tokens: 40,
                output_tokens: 12,
                cost_usd: None,
                model_answered: None,
                error: None,
                unscored: false,
            }
        })
        .collect();
    RunResults::new(info(), cases)
}

/// 10,000 cases: score both runs, summarize both, compare (McNemar + 1,000-resample bootstrap).
#[divan::bench(sample_count = 10)]
fn scoring_and_statistics_10k(bencher: Bencher) {
    let base_rows = rows(|i| i % 10 == 0);
    let new_rows = rows(|i| i % 10 == 0 || i % 7 == 1);
    let scorer = score::fields(&["label"]);
    bencher.bench_local(|| {
        let base = score_all(&base_rows, &*scorer);
        let new = score_all(&new_rows, &*scorer);
        black_box(eval::compare(&base, &new, GateConfig::default()).unwrap())
    });
}

/// The parts: scoring 10,000 rows (with building their results), one summary, one comparison.
#[divan::bench(sample_count = 10)]
fn part_score_10k(bencher: Bencher) {
    let rows = rows(|i| i % 10 == 0);
    let scorer = score::fields(&["label"]);
    bencher.bench_local(|| black_box(score_all(&rows, &*scorer)));
}

/// The summary of 10,000 case results.
#[divan::bench(sample_count = 10)]
fn part_summary_10k(bencher: Bencher) {
    let r = score_all(&rows(|i| i % 10 == 0), &*score::fields(&["label"]));
    bencher.bench_local(|| black_box(eval::Summary::of(&r.run, &r.cases)));
}

/// The comparison of two runs of 10,000 cases.
#[divan::bench(sample_count = 10)]
fn part_compare_10k(bencher: Bencher) {
    let scorer = score::fields(&["label"]);
    let base = score_all(&rows(|i| i % 10 == 0), &*scorer);
    let new = score_all(&rows(|i| i % 10 == 0 || i % 7 == 1), &*scorer);
    bencher.bench_local(|| black_box(eval::compare(&base, &new, GateConfig::default()).unwrap()));
}

const CASES: usize = 200;

fn harness() -> Harness {
    let provider =
        Scripted::new().then_always(Step::Respond(Scripted::response(r#"{"label":"positive"}"#)));
    Harness::builder()
        .provider("scripted", provider)
        .build()
        .unwrap()
}

fn dataset() -> Dataset<Review> {
    let text: String = (0..CASES)
        .map(|i| {
            json!({"id": format!("c{i}"), "inputs": {"review": format!("review {i}")}, "expected": {"label": "positive"}})
                .to_string()
                + "\n"
        })
        .collect();
    Dataset::from_jsonl::<Classify>("bench", "bench.jsonl", &text).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The baseline: the task called once per case in a plain loop (200 cases per iteration).
#[divan::bench(sample_count = 20)]
fn bare_loop_200_cases(bencher: Bencher) {
    let (rt, h, d) = (runtime(), harness(), dataset());
    bencher.bench_local(|| {
        rt.block_on(async {
            for case in &d.cases {
                black_box(Classify.call(&h, &case.input).await.unwrap());
            }
        })
    });
}

/// The runner over the same 200 cases, scored on the label, results kept in memory.
#[divan::bench(sample_count = 20)]
fn runner_200_cases(bencher: Bencher) {
    let (rt, h, d) = (runtime(), harness(), dataset());
    let runner = Runner::new()
        .concurrency(1)
        .progress(false)
        .scorer(score::fields(&["label"]));
    bencher.bench_local(|| black_box(rt.block_on(runner.run(&h, &Classify, &d)).unwrap()));
}

/// The runner writing each result to its partial file as it comes (and the results at the end).
#[divan::bench(sample_count = 20)]
fn runner_200_cases_to_file(bencher: Bencher) {
    let (rt, h, d) = (runtime(), harness(), dataset());
    let out = fixtures::temp_path("bench-results.json");
    let runner = Runner::new()
        .concurrency(1)
        .progress(false)
        .scorer(score::fields(&["label"]))
        .out(&out);
    bencher.bench_local(|| black_box(rt.block_on(runner.run(&h, &Classify, &d)).unwrap()));
}
