//! Runs the real `harness` binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sentiment.schema.json"
);

fn harness(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the harness binary runs");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_owned();
    // The binary may stop reading early (an answer too large): a broken pipe is expected then.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn parse(stdin: &str) -> (Option<i32>, String, String) {
    let out = harness(&["parse", "--schema", SCHEMA], stdin);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn prints_the_json_from_a_fence() {
    let (code, out, err) = parse(
        "Here is the classification:\n```json\n{\"label\": \"Positive\", \"confidence\": 0.9}\n```\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "{\"confidence\":0.9,\"label\":\"Positive\"}\n");
    assert_eq!(
        err,
        "repaired: extracted the JSON from a code fence [extracted_from_fence]\n"
    );
}

#[test]
fn prints_the_repaired_json_and_each_repair() {
    let (code, out, err) =
        parse("{label: 'negative', confidence: \"0.25\", tags: ['late', 'broken',], // done\n}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "{\"confidence\":0.25,\"label\":\"Negative\",\"tags\":[\"late\",\"broken\"]}\n"
    );
    let lines: Vec<&str> = err.lines().collect();
    for expected in [
        "repaired: quoted the bare key of `label` [quoted_key]",
        "repaired: read the single-quoted string at `label` as a JSON string [converted_single_quotes]",
        "repaired: removed a trailing comma in `tags` [removed_trailing_comma]",
        "repaired: removed a comment in the root [removed_comment]",
        "repaired: coerced `confidence` from \"0.25\" to 0.25, the type the schema asks for [coerced]",
        "repaired: matched `label` \"negative\" to the enum value \"Negative\" (case or spacing differs) [matched_enum_case]",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(lines.iter().all(|l| l.starts_with("repaired: ")), "{err}");
}

#[test]
fn closes_an_answer_cut_off_after_complete_values() {
    let (code, out, err) = parse("{\"label\": \"Neutral\", \"confidence\": 0.5, \"tags\": [\"a\",");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "{\"confidence\":0.5,\"label\":\"Neutral\",\"tags\":[\"a\"]}\n"
    );
    assert!(err.contains("closed it with `]}`"), "{err}");
}

#[test]
fn rejects_a_value_cut_off_inside_a_string() {
    let (code, out, err) = parse("{\"label\": \"Neutral\", \"confidence\": 0.5, \"tags\": [\"lat");
    assert_eq!(code, Some(2));
    assert_eq!(out, "");
    assert_eq!(
        err,
        "rejected: the answer was cut off inside a string; a cut-off value cannot be completed, \
         reply with the whole JSON value\n"
    );
}

#[test]
fn rejects_a_refusal() {
    let (code, out, err) = parse("I'm sorry, but I can't help with classifying this review.");
    assert_eq!(code, Some(2));
    assert_eq!(out, "");
    assert_eq!(
        err,
        "rejected: the answer contains no JSON value; reply with a single JSON object\n"
    );
}

#[test]
fn rejects_a_value_that_does_not_fit_the_schema_with_every_error() {
    let (code, out, err) = parse("{\"label\": \"Great\", \"confidence\": 3}");
    assert_eq!(code, Some(2));
    assert_eq!(out, "");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], "rejected: the value does not fit the schema:");
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[1..].iter().any(|l| l.starts_with("  - `label`:")),
        "{err}"
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.starts_with("  - `confidence`:")),
        "{err}"
    );
}

#[test]
fn rejects_deep_nesting() {
    let out = harness(
        &["parse", "--schema", SCHEMA, "--max-depth", "8"],
        &"[".repeat(100_000),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "rejected: the answer nests deeper than 8 levels\n"
    );
}

#[test]
fn rejects_too_large_an_answer_without_reading_it_all() {
    let out = harness(
        &["parse", "--schema", SCHEMA, "--max-bytes", "16"],
        &"x".repeat(1 << 20),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "rejected: the answer is more than the 16 bytes accepted\n"
    );
}

#[test]
fn fails_on_an_unusable_schema() {
    let out = harness(&["parse", "--schema", "/nonexistent/schema.json"], "{}");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: cannot read the schema /nonexistent/schema.json"),
        "{err}"
    );
}

#[test]
fn help_lists_the_parse_command() {
    let out = harness(&["--help"], "");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("parse"), "{help}");
}

/// A results file of `n` cases of task `classify` on dataset `reviews`, where the cases in
/// `failing` fail.
fn results(n: usize, failing: impl Fn(usize) -> bool) -> harness_core::eval::RunResults {
    use harness_core::eval::{CaseResult, Ending, RunInfo, RunResults, Score};
    let info = RunInfo {
        task: "classify".into(),
        contract_version: "v1".into(),
        dataset: "reviews".into(),
        dataset_sha256: "abc".into(),
        cases: n,
        repeats: 1,
        ..RunInfo::default()
    };
    let cases = (0..n)
        .map(|i| {
            let passed = !failing(i);
            CaseResult {
                id: format!("c{i:03}"),
                repeat: 0,
                tags: vec![],
                inputs: serde_json::json!({"review": format!("review {i}")}),
                expected: Some(serde_json::json!({"label": "Positive"})),
                got: Some(
                    serde_json::json!({"label": if passed { "Positive" } else { "Negative" }}),
                ),
                ending: Ending::Answer,
                class: None,
                passed,
                score: if passed { 1.0 } else { 0.0 },
                scores: vec![Score::pass_fail("fields(label)", passed, || {
                    "label differs".into()
                })],
                fields: Default::default(),
                latency_ms: 10.0 + i as f64,
                attempts: 1,
                input_tokens: 40,
                output_tokens: 12,
                cost_usd: None,
                model_answered: Some("m".into()),
                error: None,
                unscored: false,
            }
        })
        .collect();
    RunResults::new(info, cases)
}

fn compare_files(
    base: &harness_core::eval::RunResults,
    new: &harness_core::eval::RunResults,
    extra: &[&str],
) -> (Option<i32>, String, String) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("harness-cli-eval-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (b, n) = (dir.join("base.json"), dir.join("new.json"));
    base.write(&b).unwrap();
    new.write(&n).unwrap();
    let mut args = vec!["eval", "compare", b.to_str().unwrap(), n.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = harness(&args, "");
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn eval_compare_exits_1_on_a_significant_drop_and_lists_the_flipped_cases() {
    let base = results(200, |i| i % 10 == 0);
    let worse = results(200, |i| i % 10 == 0 || i % 10 == 1 || i % 20 == 2);
    let dir = std::env::temp_dir().join(format!("harness-cli-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("r.html");
    let md = dir.join("r.md");
    let (code, out, err) = compare_files(
        &base,
        &worse,
        &[
            "--report",
            html.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.starts_with("regression: the pass rate dropped 15.0 points"),
        "{out}"
    );
    assert!(
        out.contains("  c001 pass → fail: got {\"label\":\"Negative\"}"),
        "{out}"
    );
    assert!(
        out.contains("200 cases detect a 15-point drop with 80% power at α = 0.05: yes"),
        "{out}"
    );
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("data-id=\"c001\"")
    );
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .contains("`c001` | pass → fail")
    );
}

#[test]
fn eval_compare_exits_0_on_a_rerun_and_a_small_reshuffle() {
    let base = results(200, |i| i % 10 == 0);
    let (code, out, _) = compare_files(&base, &base.clone(), &[]);
    assert_eq!(code, Some(0), "{out}");
    let reshuffled = results(200, |i| {
        (i % 10 == 0 && ![0, 10, 20].contains(&i)) || [1, 11, 21].contains(&i)
    });
    let (code, out, _) = compare_files(&base, &reshuffled, &["--json"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["regressions"], 3);
    assert_eq!(v["flipped"].as_array().unwrap().len(), 6);
}

#[test]
fn eval_compare_exits_2_when_it_cannot_compare() {
    let base = results(20, |_| false);
    let mut other = results(20, |_| false);
    other.run.task = "triage".into();
    let (code, _, err) = compare_files(&base, &other, &["--min-effect", "3"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("the baseline is of task `classify`, the new run of task `triage`"),
        "{err}"
    );
    let out = harness(
        &[
            "eval",
            "compare",
            "/nonexistent/base.json",
            "/nonexistent/new.json",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/base.json: cannot read"));
}

#[test]
fn explain_shows_every_reading_and_deny_refuses_a_kind() {
    let out = harness(
        &["parse", "--schema", SCHEMA, "--explain"],
        "Example: {\"label\": \"Great\"}\nAnswer: {\"label\": \"Neutral\", \"confidence\": 0.5, \"tags\": []}",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("1. whole answer"), "{err}");
    assert!(
        err.contains("with 2 schema error(s)") || err.contains("schema error(s)"),
        "{err}"
    );
    assert!(err.contains("chosen: {\"confidence\":0.5"), "{err}");
    let out = harness(
        &[
            "parse",
            "--schema",
            SCHEMA,
            "--deny",
            "extracted_from_fence",
        ],
        "```json\n{\"label\": \"Neutral\", \"confidence\": 0.5, \"tags\": []}\n```",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("a repair this task does not accept"), "{err}");
    let out = harness(&["parse", "--schema", SCHEMA, "--deny", "coerce"], "{}");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown repair kind"), "{err}");
}

#[path = "cli/reproduce.rs"]
mod reproduce;
#[path = "cli/review.rs"]
mod review;
