//! Issue 11's "done when": the quickstart's tasks run against a flaky server (a chaos server on
//! 127.0.0.1 injecting 5xx, 429s and answers that break the schema at a seeded rate); then the
//! registry exports JSON and Markdown of both tasks, the readiness audit answers 01–06 for each,
//! and the real `harness audit stats` binary shows the share of time and tokens spent in
//! failures. Then the same trail, damaged: truncated, mixed with another program's records and
//! with an older contract version, is counted and said, never a crash or a wrong share.

#[path = "../../examples/support/tasks.rs"]
#[allow(dead_code)]
mod tasks;

#[path = "../../examples/support/flaky.rs"]
mod flaky;

use std::path::{Path, PathBuf};
use std::process::Command;

use harness_core::registry::readiness::{Evidence, QUESTIONS, Readiness};
use harness_core::registry::{self, Export};
use serde_json::Value;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-readiness-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `harness audit stats FILE [args]`: (exit code, stdout, stderr).
fn stats(file: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["audit", "stats"])
        .arg(file)
        .args(args)
        .output()
        .expect("the harness binary runs");
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn stats_json(file: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = stats(file, &all);
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn flaky_trail(dir: &Path) -> PathBuf {
    let audit = dir.join("audit.jsonl");
    let run = flaky::run(&audit, 4, 0.35, 7).await.expect("the flaky run");
    assert_eq!(run.calls, 20);
    assert!(run.answers > 0, "some calls got an answer");
    assert!(
        run.requests > run.calls,
        "the server failed some requests: {} requests for {} calls",
        run.requests,
        run.calls
    );
    audit
}

fn check_exports(dir: &Path) -> PathBuf {
    let reg = registry::program().expect("registration works on this platform");
    // Every task and policy of this binary: the two of examples/support/tasks.rs.
    let names: Vec<&str> = reg.tasks().iter().map(|t| t.name).collect();
    assert_eq!(names, ["classify", "triage"]);
    let policies: Vec<&str> = reg.policies().iter().map(|p| p.policy.name).collect();
    assert_eq!(policies, ["Support"]);

    let export = reg.export("quickstart");
    let json = export.to_json_pretty();
    let back = Export::from_json(&json).expect("the export reads back");
    assert_eq!(back, export);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["format"], "harness.contracts");
    assert_eq!(v["format_version"], 1);
    let classify = &v["tasks"][0];
    assert_eq!(classify["prompt"]["template"], "Review: {review}");
    assert_eq!(classify["output"]["type_name"], "Sentiment");
    assert_eq!(classify["failures"].as_array().unwrap().len(), 6);
    assert_eq!(
        classify["failures"][2]["chain"],
        "retry(2).then(fallback(\"gpt-4o-mini\"))"
    );
    let triage = &v["tasks"][1];
    assert_eq!(triage["prompt"]["kind"], "body");
    assert_eq!(triage["failures"][0]["declared_by"], "policy:Support");
    assert_eq!(triage["failures"].as_array().unwrap().len(), 5);
    assert_eq!(v["policies"][0]["used_by"][0], "triage");

    let md = export.to_markdown();
    for needle in [
        "# Contracts of `quickstart`",
        "## `classify`",
        "## `triage`",
        "| provider_error | `retry(2).then(fallback(\"gpt-4o-mini\"))` | task |",
        "| timeout | `retry(1)` | policy:Support |",
        "### Context plan and sources\n\nNot in the contract: a context plan",
        "### Tools and scopes\n\nNot present yet",
        "\"maxLength\": 280",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    let path = dir.join("contracts.json");
    std::fs::write(&path, json).unwrap();
    path
}

fn check_readiness(audit: &Path) {
    let reg = registry::program().unwrap();
    let ev = Evidence::new().audit_trail(audit).unwrap();
    let report = Readiness::assess(&reg, &ev);
    assert_eq!(report.tasks.len(), 2);
    for t in &report.tasks {
        let numbers: Vec<&str> = t.answers.iter().map(|a| a.number).collect();
        assert_eq!(numbers, ["01", "02", "03", "04", "05", "06"], "{}", t.task);
        for (a, (_, q)) in t.answers.iter().zip(QUESTIONS) {
            assert_eq!(a.question, q);
            assert!(
                !a.found.is_empty() || !a.missing.is_empty(),
                "{} {} says nothing",
                t.task,
                a.number
            );
        }
        // 06 from the trail: measured, with the failure share.
        let q6 = &t.answers[5];
        assert!(
            q6.found.iter().any(|f| f.contains("of attempt time")),
            "{q6:?}"
        );
        // 03 without eval results: said missing, scored 0.
        assert_eq!(t.answers[2].score, Some(0.0), "{:?}", t.answers[2]);
        assert_eq!(t.answers[4].score, None);
        assert!(t.score > 0.0 && t.score < 1.0, "{}", t.score);
    }
    let text = report.to_string();
    for task in ["classify", "triage"] {
        let at = text.find(&format!("Task `{task}`")).unwrap();
        for n in ["01", "02", "03", "04", "05", "06"] {
            assert!(text[at..].contains(&format!("  {n} ")), "{text}");
        }
    }
    assert!(report.passes(report.lowest));
    assert!(!report.passes(report.lowest + 0.01));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_flaky_quickstart_the_contracts_readiness_and_failure_stats_are_published() {
    let dir = temp_dir("done");
    let audit = flaky_trail(&dir).await;
    let contracts = check_exports(&dir);
    check_readiness(&audit);

    let contracts = contracts.to_str().unwrap();
    let s = stats_json(&audit, &["--contracts", contracts]);
    assert_eq!(s["reading"]["records"], 20);
    assert_eq!(s["totals"]["calls"], 20);
    let failed = &s["totals"]["failed"];
    assert!(failed["attempts"].as_u64().unwrap() > 0, "{s:#}");
    // Answers that broke the schema billed tokens: the token share of failures is not zero.
    assert!(failed["input_tokens"].as_u64().unwrap() > 0, "{s:#}");
    let share = &s["totals"]["failed_share"];
    let time = share["time"].as_f64().unwrap();
    let tokens = share["tokens"].as_f64().unwrap();
    assert!(time > 0.0 && time < 1.0, "{share}");
    assert!(tokens > 0.0 && tokens < 1.0, "{share}");
    // The shares add up: the failed bucket over failed + accepted.
    let ok = &s["totals"]["ok"];
    let ft = failed["input_tokens"].as_f64().unwrap() + failed["output_tokens"].as_f64().unwrap();
    let ot = ok["input_tokens"].as_f64().unwrap() + ok["output_tokens"].as_f64().unwrap();
    assert!((tokens - ft / (ft + ot)).abs() < 1e-9);
    assert_eq!(s["tasks"].as_array().unwrap().len(), 2);
    assert!(!s["by_class"].as_array().unwrap().is_empty());
    assert_eq!(s["slowest"].as_array().unwrap().len(), 2);
    // smollm2-135m has no built-in price: said, and no cost share is made up.
    assert!(share["cost"].is_null());

    let (code, table, err) = stats(&audit, &["--contracts", contracts]);
    assert_eq!(code, Some(0), "{err}");
    for needle in [
        "time share",
        "token share",
        "failed attempts",
        "classify (failed)",
        "triage (accepted)",
        "Slowest contracts",
        "Failed attempts by class",
    ] {
        assert!(table.contains(needle), "missing {needle:?} in\n{table}");
    }
    assert!(
        table.contains(&format!("{:.1}% of time", time * 100.0)),
        "{table}"
    );
    damaged_trails(&dir, &audit, contracts, &s);
}

/// The lines of the trail, changed by `edit`, written to `name`.
fn rewrite(dir: &Path, audit: &Path, name: &str, edit: impl Fn(usize, &mut Value)) -> PathBuf {
    let text = std::fs::read_to_string(audit).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        edit(i, &mut v);
        out.push_str(&v.to_string());
        out.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, out).unwrap();
    path
}

fn notes(s: &Value) -> String {
    s["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn damaged_trails(dir: &Path, audit: &Path, contracts: &str, clean: &Value) {
    // Truncated: the first record cut off (rotated), a line that is not a record, a torn tail.
    let text = std::fs::read_to_string(audit).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(0);
    let torn = dir.join("torn.jsonl");
    std::fs::write(
        &torn,
        format!(
            "{}\nnot a record\n{{\"v\": 1, \"id\": \"cut",
            lines.join("\n")
        ),
    )
    .unwrap();
    let s = stats_json(&torn, &["--contracts", contracts]);
    assert_eq!(s["reading"]["records"], 19);
    assert_eq!(s["reading"]["unreadable"], 1);
    assert_eq!(s["reading"]["torn_tail"], true);
    assert_eq!(s["reading"]["starts_mid_chain"], true);
    let n = notes(&s);
    for needle in ["torn", "not audit records", "cut at the front"] {
        assert!(n.contains(needle), "missing {needle:?} in {n}");
    }

    // Another program's records: two calls renamed to a task this program does not declare.
    let mixed = rewrite(dir, audit, "foreign.jsonl", |i, v| {
        if i < 2 {
            v["task"] = "summarize".into();
        }
    });
    let s = stats_json(&mixed, &["--contracts", contracts]);
    assert_eq!(s["reading"]["foreign"], 2);
    assert_eq!(s["reading"]["records"], 18);
    assert_eq!(s["totals"]["calls"], 18);
    assert!(notes(&s).contains("another program's"), "{}", notes(&s));
    assert!(
        s["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["task"] != "summarize")
    );
    // Without the export they cannot be told apart, and the report says that too.
    let s = stats_json(&mixed, &[]);
    assert_eq!(s["reading"]["foreign"], 0);
    assert!(notes(&s).contains("cannot be told apart"), "{}", notes(&s));

    // Mixed versions: half of the calls made under an older contract.
    let versions = rewrite(dir, audit, "versions.jsonl", |i, v| {
        if i % 2 == 0 {
            v["contract_version"] = "0000000000000000".into();
        }
    });
    let s = stats_json(&versions, &["--contracts", contracts]);
    let n = notes(&s);
    assert!(n.contains("mixes 2 contract version(s)"), "{n}");
    assert!(n.contains("not on the current"), "{n}");
    let classify = s["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "classify")
        .unwrap();
    assert!(classify["other_version_calls"].as_u64().unwrap() > 0);
    // The numbers themselves are those of the clean trail: versions are said, not dropped.
    assert_eq!(s["totals"]["failed_share"], clean["totals"]["failed_share"]);

    // Not an audit trail at all: still no crash, every line counted as unreadable.
    let junk = dir.join("junk.jsonl");
    std::fs::write(&junk, "hello\nworld\n").unwrap();
    let s = stats_json(&junk, &[]);
    assert_eq!(s["reading"]["unreadable"], 2);
    assert!(notes(&s).contains("no record counted"));
    // A missing file: exit 2 and a message.
    let (code, _, err) = stats(&dir.join("missing.jsonl"), &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot read"), "{err}");
}
