//! Evaluation end to end: datasets checked against the task's types, the runner against a real
//! HTTP server on 127.0.0.1, the gate (a 15-point drop fails it and lists the flipped cases; a
//! rerun and a 3% reshuffle pass), resume after a kill, datasets from an audit trail evaluated on
//! the replay provider, judges, online scoring, the model-update detector and model pinning, and
//! the HTML report opened in real headless Chromium.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use harness_core::audit::{self, JsonlSink, ReplayProvider};
use harness_core::contract::{Action, FailureClass, InputSpec, TaskContract};
use harness_core::eval::judge::{LlmJudge, Pairwise, Winner};
use harness_core::eval::{
    self, Case, Comparison, Dataset, EvalTask, GateConfig, ModelUpdateDetector, OnlineEval,
    RunResults, Runner, score,
};
use harness_core::provider::OpenAiCompatible;
use harness_core::testing::fixtures::{self, ContractBuilder, FnProvider, NO_WAIT, chain};
use harness_core::testing::{ChaosServer, RecordedRequest};
use harness_core::{ChatRequest, Harness, LlmOutput, TaskResult};
use serde_json::json;

/// Overall sentiment.
#[derive(Debug, LlmOutput)]
enum Mood {
    Positive,
    Neutral,
    Negative,
}

/// The classifier's answer.
#[derive(Debug, LlmOutput)]
struct Verdict {
    /// The label.
    label: Mood,
}

static CLASSIFY: TaskContract = ContractBuilder::new("classify", fixtures::output::<Verdict>())
    .version("eval-test-v1")
    .prompt("Review: {review}")
    .inputs(&[InputSpec {
        name: "review",
        rust_type: "&str",
    }])
    .chains(&[
        chain(FailureClass::Timeout, &[Action::Fail]),
        chain(FailureClass::RateLimited, &[Action::Fail]),
        chain(
            FailureClass::ProviderError,
            &[fixtures::retry(1, NO_WAIT), Action::Fail],
        ),
        chain(FailureClass::InvalidOutput, &[Action::Fail]),
        chain(FailureClass::Refusal, &[Action::Escalate]),
    ])
    .build();

#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Review {
    review: String,
}

struct Classify;

impl EvalTask for Classify {
    type Input = Review;
    type Output = Verdict;
    fn contract() -> &'static TaskContract {
        &CLASSIFY
    }
    async fn call(&self, harness: &Harness, input: &Review) -> TaskResult<Verdict> {
        harness
            .run::<Verdict>(
                &CLASSIFY,
                vec![("review", input.review.clone())],
                None,
                None,
            )
            .await
    }
}

const LABELS: [&str; 3] = ["Positive", "Neutral", "Negative"];
const CASES: usize = 200;

fn truth(i: usize) -> &'static str {
    LABELS[i % 3]
}

fn dataset_text() -> String {
    (0..CASES)
        .map(|i| {
            json!({
                "id": format!("c{i:04}"),
                "inputs": {"review": format!("review number {i}")},
                "expected": {"label": truth(i)},
                "tags": [if i % 2 == 0 { "even" } else { "odd" }],
            })
            .to_string()
                + "\n"
        })
        .collect()
}

fn dataset() -> Dataset<Review> {
    Dataset::from_jsonl::<Classify>("reviews", "reviews.jsonl", &dataset_text()).unwrap()
}

/// Which cases the model gets wrong, by scenario.
#[derive(Clone, Copy)]
enum Model {
    /// 90%: every tenth case wrong.
    Base,
    /// 75%: 30 more cases wrong (a 15-point drop).
    Worse,
    /// 3 cases that were wrong are right, 3 that were right are wrong (3% reshuffled).
    Reshuffled,
    /// 6 more cases wrong (a significant 3-point drop, below the minimum effect).
    Slightly,
}

fn wrong(model: Model, i: usize) -> bool {
    let base = i % 10 == 0;
    match model {
        Model::Base => base,
        Model::Worse => base || i % 10 == 1 || i % 20 == 2,
        Model::Reshuffled => (base && ![0, 10, 20].contains(&i)) || [1, 11, 21].contains(&i),
        Model::Slightly => base || [1, 11, 21, 31, 41, 51].contains(&i),
    }
}

fn case_number(req: &RecordedRequest) -> usize {
    req.message_texts()
        .iter()
        .find_map(|t| t.strip_prefix("Review: review number "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

async fn server(model: Model) -> ChaosServer {
    ChaosServer::builder()
        .answer(move |req| {
            let i = case_number(req);
            let label = if wrong(model, i) {
                LABELS[(i + 1) % 3]
            } else {
                truth(i)
            };
            json!({ "label": label }).to_string()
        })
        .start()
        .await
        .expect("the chaos server starts")
}

async fn run(model: Model, label: &str) -> RunResults {
    let server = server(model).await;
    let provider = OpenAiCompatible::builder(server.base_url())
        .build()
        .unwrap();
    let harness = Harness::builder()
        .provider("openai", provider)
        .build()
        .unwrap();
    let results = Runner::new()
        .concurrency(8)
        .progress(false)
        .label(label)
        .scorer(score::fields(&["label"]))
        .run(&harness, &Classify, &dataset())
        .await
        .expect("the run completes");
    assert_eq!(server.request_count(), CASES, "one request per case");
    results
}

fn ids(c: &Comparison, regressed: bool) -> Vec<String> {
    c.flipped
        .iter()
        .filter(|f| f.regressed == regressed)
        .map(|f| f.id.clone())
        .collect()
}

fn expected_ids(filter: impl Fn(usize) -> bool) -> Vec<String> {
    (0..CASES)
        .filter(|i| filter(*i))
        .map(|i| format!("c{i:04}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_fails_a_15_point_drop_and_passes_a_rerun_and_a_reshuffle() {
    let base = run(Model::Base, "baseline").await;
    let o = &base.summary.overall;
    assert_eq!((o.n, o.passed), (200, 180));
    assert!(o.ci95[0] < 0.9 && o.ci95[1] > 0.9, "{:?}", o.ci95);
    assert_eq!(o.fields["label"].correct, 180);
    let confusion = &o.confusion["label"];
    assert_eq!(confusion.labels, LABELS);
    let diagonal: u64 = (0..3).map(|k| confusion.counts[k][k]).sum();
    assert_eq!(diagonal, 180);
    assert_eq!(o.outcomes["answer"], 200);
    assert_eq!(base.summary.by_tag["even"].n, 100);

    let worse = run(Model::Worse, "worse").await;
    let cmp = eval::compare(&base, &worse, GateConfig::default()).unwrap();
    assert_eq!(cmp.exit_code(), eval::EXIT_REGRESSION, "{}", cmp.verdict);
    assert!(
        (cmp.delta_points + 15.0).abs() < 1e-9,
        "{}",
        cmp.delta_points
    );
    assert_eq!((cmp.regressions, cmp.improvements), (30, 0));
    assert_eq!(
        ids(&cmp, true),
        expected_ids(|i| !wrong(Model::Base, i) && wrong(Model::Worse, i))
    );
    let flip = &cmp.flipped[0];
    assert_eq!(
        flip.inputs,
        json!({"review": format!("review number {}", 1)})
    );
    assert!(
        flip.why.as_deref().unwrap().contains("label: expected"),
        "{flip:?}"
    );
    assert!(cmp.mcnemar_p < 1e-6, "{}", cmp.mcnemar_p);
    assert!(
        cmp.power
            .to_string()
            .starts_with("200 cases detect a 15-point drop with 80% power at α = 0.05: yes"),
        "{}",
        cmp.power
    );
    let md = eval::report::markdown(&worse, Some(&cmp));
    assert!(
        md.contains("❌") && md.contains("`c0001` | pass → fail"),
        "{md}"
    );

    let rerun = run(Model::Base, "rerun").await;
    let cmp = eval::compare(&base, &rerun, GateConfig::default()).unwrap();
    assert_eq!(cmp.exit_code(), eval::EXIT_OK, "{}", cmp.verdict);
    assert!(cmp.flipped.is_empty());

    let reshuffled = run(Model::Reshuffled, "reshuffled").await;
    let cmp = eval::compare(&base, &reshuffled, GateConfig::default()).unwrap();
    assert_eq!(cmp.exit_code(), eval::EXIT_OK, "{}", cmp.verdict);
    assert_eq!((cmp.regressions, cmp.improvements), (3, 3));

    let slightly = run(Model::Slightly, "slightly").await;
    let cmp = eval::compare(&base, &slightly, GateConfig::default()).unwrap();
    assert!(cmp.mcnemar_p < 0.05, "significant: {}", cmp.mcnemar_p);
    assert_eq!(cmp.exit_code(), eval::EXIT_OK, "{}", cmp.verdict);
    assert!(
        cmp.verdict.contains("below the minimum effect"),
        "{}",
        cmp.verdict
    );
    // With no minimum effect, the same significant drop fails the gate.
    let strict = GateConfig {
        min_effect_points: 0.0,
        ..GateConfig::default()
    };
    assert_eq!(
        eval::compare(&base, &slightly, strict).unwrap().exit_code(),
        1
    );

    // Another task's or dataset's baseline is refused, by name.
    let mut other = base.clone();
    other.run.dataset = "tickets".into();
    let e = eval::compare(&other, &worse, GateConfig::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the baseline ran dataset `tickets`, the new run dataset `reviews`"
    );

    // The results file round-trips, versioned.
    let path = fixtures::temp_path("worse.json");
    worse.write(&path).unwrap();
    assert_eq!(RunResults::read(&path).unwrap(), worse);
    let mut text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    text["version"] = json!(99);
    std::fs::write(&path, text.to_string()).unwrap();
    let e = RunResults::read(&path).unwrap_err().to_string();
    assert!(
        e.contains("`version` is 99, this release reads version 1"),
        "{e}"
    );

    let cmp = eval::compare(&base, &worse, GateConfig::default()).unwrap();
    chromium_renders(&eval::report::html(&[&base, &worse], Some(&cmp)), &cmp);
}

/// Opens the report in headless Chromium: the script at its end counts the plots the browser
/// laid out (width > 0), and the flipped cases are in the rendered DOM. Chromium is required
/// when `CI` is set (.ci/run installs it); elsewhere a machine without it skips, saying so.
fn chromium_renders(html: &str, cmp: &Comparison) {
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "no external resource"
    );
    assert!(
        !html.contains("<link") && !html.contains("src="),
        "self-contained"
    );
    let path = fixtures::temp_path("report.html");
    std::fs::write(&path, html).unwrap();
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok()
        })
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs chromium: .ci/run installs it"
        );
        eprintln!("skipped: no chromium on this machine (apt-get install chromium)");
        return;
    };
    let dir = path.parent().unwrap();
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1200,4000",
    ];
    let profile = format!("--user-data-dir={}", dir.join("profile").display());
    let url = format!("file://{}", path.display());
    let out = std::process::Command::new(browser)
        .args(common)
        .arg(&profile)
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(&url)
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains(r#"data-plots="3""#),
        "pass rate, latency and one confusion matrix laid out; stderr: {}\n{dom:.2000}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in &cmp.flipped {
        assert!(
            dom.contains(&format!(r#"data-id="{}""#, f.id)),
            "{} shown",
            f.id
        );
    }
    assert!(dom.contains("regression: the pass rate dropped 15.0 points"));
    let shot = dir.join("report.png");
    let out = std::process::Command::new(browser)
        .args(common)
        .arg(&profile)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("chromium runs");
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn a_case_that_does_not_fit_the_task_names_file_line_and_field() {
    let text = [
        r#"{"id": "a", "inputs": {"review": "fine"}, "expected": {"label": "Neutral"}}"#,
        r#"{"id": "b", "inputs": {"review": 3}, "expected": {"label": "Neutral"}}"#,
        r#"{"id": "c", "inputs": {"review": "ok"}, "expected": {"label": "Postive"}}"#,
        r#"{"id": "d", "inputs": {"review": "ok"#,
        r#"{"id": "e", "inputs": {"review": "ok"}, "expect": {"label": "Positive"}}"#,
        "",
        r#"{"id": "a", "inputs": {"text": "ok"}, "expected": {"mood": "Positive"}}"#,
        r#"{"id": "g", "inputs": {"review": "ok"}, "assert": [{"type": "regex", "field": "label", "pattern": "("}]}"#,
    ]
    .join("\n");
    let e = Dataset::<Review>::from_jsonl::<Classify>("reviews", "data/reviews.jsonl", &text)
        .unwrap_err();
    let shown = e.to_string();
    let lines: Vec<&str> = shown.lines().skip(1).map(str::trim).collect();
    assert!(lines[0].starts_with("data/reviews.jsonl:4: "), "{shown}");
    assert!(
        lines[1].starts_with("data/reviews.jsonl:5: expect: unknown field `expect`"),
        "{shown}"
    );
    assert!(lines[2].contains("invalid pattern"), "{shown}");
    // Lines that parse are then checked against the types; errors come in line order per stage.
    let text = [
        r#"{"id": "a", "inputs": {"review": "fine"}, "expected": {"label": "Neutral"}}"#,
        r#"{"id": "b", "inputs": {"review": 3}, "expected": {"label": "Neutral"}}"#,
        r#"{"id": "c", "inputs": {"review": "ok"}, "expected": {"label": "Postive"}}"#,
        r#"{"id": "a", "inputs": {"text": "ok"}, "expected": {"mood": "Positive"}}"#,
    ]
    .join("\n");
    let e =
        Dataset::<Review>::from_jsonl::<Classify>("reviews", "reviews.jsonl", &text).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("reviews.jsonl:2: inputs.review: "),
        "{shown}"
    );
    assert!(
        shown.contains("reviews.jsonl:3: expected.label: "),
        "{shown}"
    );
    assert!(
        shown.contains("reviews.jsonl:4: id: `a` is used twice"),
        "{shown}"
    );
    assert!(shown.contains("reviews.jsonl:4: inputs"), "{shown}");
    assert!(shown.contains("reviews.jsonl:4: expected"), "{shown}");
    assert!(!shown.contains(":1:"), "line 1 is fine: {shown}");
}

#[cfg(feature = "yaml")]
#[test]
fn yaml_datasets_load_and_name_the_line_of_a_bad_case() {
    let path = fixtures::temp_path("reviews.yaml");
    std::fs::write(
        &path,
        "- id: y1\n  inputs:\n    review: great\n  expected:\n    label: Positive\n  tags: [yaml]\n\
         - id: y2\n  inputs:\n    review: bad\n  expected:\n    label: Negative\n",
    )
    .unwrap();
    let d = Dataset::<Review>::load::<Classify>(&path).unwrap();
    assert_eq!(d.name, "reviews");
    assert_eq!(d.cases.len(), 2);
    assert_eq!(d.cases[1].source.as_ref().unwrap().1, 7);
    std::fs::write(
        &path,
        "- id: y1\n  inputs:\n    review: great\n- id: y2\n  inputs:\n    review: [1]\n",
    )
    .unwrap();
    let e = Dataset::<Review>::load::<Classify>(&path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("reviews.yaml:4: inputs.review: "), "{e}");
}

fn counting_harness(calls: Arc<AtomicUsize>) -> Harness {
    let provider = FnProvider::new(move |req: &ChatRequest, _| {
        calls.fetch_add(1, Ordering::SeqCst);
        let text = fixtures::last_user(req);
        let i: usize = text
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok(json!({ "label": truth(i) }).to_string())
    });
    Harness::builder().provider("fn", provider).build().unwrap()
}

#[tokio::test]
async fn a_killed_run_resumes_from_its_partial_file() {
    let out = fixtures::temp_path("results.json");
    let partial = Runner::partial_path(&out);
    let data = Dataset::from_jsonl::<Classify>(
        "reviews",
        "reviews.jsonl",
        &dataset_text()
            .lines()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let runner = Runner::new()
        .progress(false)
        .concurrency(3)
        .scorer(score::fields(&["label"]))
        .out(&out);
    let full = runner
        .run(&counting_harness(calls.clone()), &Classify, &data)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 20);
    assert!(!partial.exists(), "the partial file is removed at the end");

    // What a run killed after 7 cases leaves: the header, 7 rows, and a torn 8th line.
    let header = serde_json::to_string(&full.run).unwrap();
    let mut text = header + "\n";
    for row in &full.cases[..7] {
        text += &(serde_json::to_string(row).unwrap() + "\n");
    }
    text += r#"{"id": "c0007", "repe"#;
    std::fs::write(&partial, text).unwrap();
    std::fs::remove_file(&out).unwrap();
    calls.store(0, Ordering::SeqCst);
    let resumed = runner
        .run(&counting_harness(calls.clone()), &Classify, &data)
        .await
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        13,
        "only the cases not done are run"
    );
    assert_eq!(resumed.cases.len(), 20);
    assert_eq!(
        resumed.cases.iter().map(|c| &c.id).collect::<Vec<_>>(),
        full.cases.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    assert_eq!(RunResults::read(&out).unwrap().summary.overall.passed, 20);

    // A partial file of another dataset is not silently mixed in.
    let mut other = full.run.clone();
    other.dataset_sha256 = "0".repeat(64);
    std::fs::write(&partial, serde_json::to_string(&other).unwrap() + "\n").unwrap();
    let e = runner
        .run(&counting_harness(calls), &Classify, &data)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("(the dataset differs): remove it"),
        "{e}"
    );
}

#[tokio::test]
async fn real_traffic_becomes_a_regression_suite_replayed_deterministically() {
    let path = fixtures::temp_path("audit.jsonl");
    let sink = JsonlSink::open(&path).unwrap();
    let live = Harness::builder()
        .provider(
            "fn",
            FnProvider::new(|req: &ChatRequest, _| {
                let text = fixtures::last_user(req);
                let i: usize = text
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Ok(json!({ "label": truth(i) }).to_string())
            }),
        )
        .observer(sink)
        .build()
        .unwrap();
    for i in 0..12 {
        let input = Review {
            review: format!("review number {i}"),
        };
        Classify.call(&live, &input).await.unwrap();
    }
    let records = audit::read_jsonl(&path).unwrap();
    let suite = Dataset::<Review>::from_audit::<Classify>("traffic", &records, &["label"]).unwrap();
    assert_eq!(suite.cases.len(), 12);
    assert_eq!(suite.cases[3].expected, Some(json!({"label": truth(3)})));
    assert_eq!(suite.cases[3].id, records[3].id);
    assert!(suite.cases[3].tags.contains(&"audit".to_owned()));

    let mut first = None;
    for _ in 0..2 {
        let replay = ReplayProvider::from_jsonl(&path).unwrap();
        let harness = Harness::builder()
            .provider("replay", replay)
            .build()
            .unwrap();
        let r = Runner::new()
            .progress(false)
            .scorer(score::expected_fields())
            .run(&harness, &Classify, &suite)
            .await
            .unwrap();
        assert_eq!(r.summary.overall.passed, 12, "{:?}", r.cases[0]);
        let answers: Vec<_> = r.cases.iter().map(|c| c.got.clone()).collect();
        if let Some(f) = &first {
            assert_eq!(f, &answers, "replayed evaluations are deterministic");
        }
        first = Some(answers);
    }
}

fn judge_harness(verdict: &'static str) -> Arc<Harness> {
    let provider = FnProvider::new(move |_, _| Ok(verdict.to_owned()));
    Arc::new(
        Harness::builder()
            .provider("judge", provider)
            .default_model("judge-model")
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_judge_scores_and_a_failing_judge_leaves_the_case_unscored() {
    let harness = counting_harness(Arc::new(AtomicUsize::new(0)));
    let data = Dataset::inline::<Classify>(
        "inline",
        vec![
            Case::new(
                "i1",
                Review {
                    review: "review number 0".into(),
                },
            )
            .expect(json!({"label": "Positive"})),
            Case::new(
                "i2",
                Review {
                    review: "review number 1".into(),
                },
            )
            .tag("x"),
        ],
    )
    .unwrap();
    let good = LlmJudge::new(
        "judge",
        "The label must match the review's sentiment.",
        judge_harness(r#"{"pass": true, "score": 0.8, "reason": "The label fits."}"#),
    );
    let r = Runner::new()
        .progress(false)
        .judge(Arc::new(good))
        .run(&harness, &Classify, &data)
        .await
        .unwrap();
    assert_eq!(r.summary.overall.passed, 2);
    assert_eq!(
        r.cases[0].scores[0].detail.as_deref(),
        Some("The label fits.")
    );
    assert!((r.summary.overall.mean_score - 0.8).abs() < 1e-9);

    let broken = LlmJudge::new("judge", "rubric", judge_harness("I think it is fine"));
    let r = Runner::new()
        .progress(false)
        .judge(Arc::new(broken))
        .run(&harness, &Classify, &data)
        .await
        .unwrap();
    let o = &r.summary.overall;
    assert_eq!(
        (o.n, o.unscored),
        (0, 2),
        "unscored, not failed and not skipped silently"
    );
    assert!(
        r.cases[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("could not be scored: the judge failed"),
        "{:?}",
        r.cases[0].error
    );
    let html = eval::report::html(&[&r], None);
    assert!(html.contains("2 case run(s) could not be scored"));

    let e = Dataset::inline::<Classify>(
        "inline",
        vec![Case::new("i1", Review { review: "x".into() }).expect(json!({"label": "Happy"}))],
    )
    .unwrap_err();
    assert!(e.to_string().contains("case `i1`: expected.label: "), "{e}");
}

#[tokio::test]
async fn pairwise_judging_swaps_the_order_to_cancel_position_bias() {
    let input = json!({"review": "great"});
    let (a, b) = (json!({"label": "Positive"}), json!({"label": "Negative"}));
    let biased = Pairwise::new(
        "Which label is right?",
        judge_harness(r#"{"winner": "first", "reason": "first is better"}"#),
    );
    let r = biased.compare(&input, &a, &b).await.unwrap();
    assert_eq!((r.winner, r.consistent), (Winner::Tie, false));
    // A judge that reads the answers: prefers whichever shown answer says Positive.
    let fair = FnProvider::new(|req: &ChatRequest, _| {
        let text = fixtures::last_user(req);
        let first = text.split("Second answer:").next().unwrap_or("");
        let winner = if first.contains("Positive") {
            "first"
        } else {
            "second"
        };
        Ok(json!({"winner": winner, "reason": "it matches"}).to_string())
    });
    let fair = Pairwise::new(
        "Which label is right?",
        Arc::new(
            Harness::builder()
                .provider("j", fair)
                .default_model("j")
                .build()
                .unwrap(),
        ),
    );
    let r = fair.compare(&input, &a, &b).await.unwrap();
    assert_eq!((r.winner, r.consistent), (Winner::A, true));
}

#[tokio::test]
async fn a_model_update_raises_one_alarm_naming_the_tasks_and_a_pin_rolls_back() {
    static OTHER: TaskContract = ContractBuilder::new("summarize", fixtures::output::<Verdict>())
        .prompt("Review: {review}")
        .build();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let provider = FnProvider::responses(move |req: &ChatRequest, _| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let model = if n < 4 {
            "gpt-x-2026-01"
        } else {
            "gpt-x-2026-06"
        };
        let mut r = fixtures::response(json!({"label": "Positive"}).to_string());
        r.model = Some(if req.model == "pinned-old" {
            "gpt-x-2026-01".into()
        } else {
            model.into()
        });
        Ok(r)
    });
    let changes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = changes.clone();
    let detector = Arc::new(
        ModelUpdateDetector::new().on_change(move |c| seen.lock().unwrap().push(c.tasks.clone())),
    );
    let online = Arc::new(
        OnlineEval::new(1.0, 7)
            .scorer(score::schema_valid())
            .scorer(score::ending(&[eval::Ending::Answer])),
    );
    let provider = Arc::new(provider);
    let harness = Harness::builder()
        .provider("openai", provider.clone())
        .observer(detector.clone())
        .observer(online.clone())
        .build()
        .unwrap();
    let input = Review {
        review: "review number 0".into(),
    };
    for _ in 0..3 {
        Classify.call(&harness, &input).await.unwrap();
        harness
            .run::<Verdict>(&OTHER, vec![("review", "x".into())], None, None)
            .await
            .unwrap();
    }
    let alarms = detector.changes();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(
        (alarms[0].from.as_str(), alarms[0].to.as_str()),
        ("gpt-x-2026-01", "gpt-x-2026-06")
    );
    assert_eq!(alarms[0].tasks, ["classify", "summarize"]);
    assert!(
        alarms[0]
            .to_string()
            .contains("tasks affected: classify, summarize")
    );
    assert_eq!(
        changes.lock().unwrap().len(),
        2,
        "the hook hears of each task"
    );
    let snap: BTreeMap<_, _> = online.snapshot();
    assert_eq!(
        (
            snap["classify"].seen,
            snap["classify"].scored,
            snap["classify"].passed
        ),
        (3, 3, 3)
    );

    // Rolling back is configuration: pin the task to the old model.
    let pinned = Harness::builder()
        .provider("openai", provider)
        .pin_model("classify", "pinned-old")
        .observer(detector.clone())
        .build()
        .unwrap();
    let out = Classify.call(&pinned, &input).await.unwrap();
    assert_eq!(out.report.attempts[0].model, "pinned-old");
    assert_eq!(
        detector.changes().len(),
        2,
        "back to the old model is a change too"
    );
}
