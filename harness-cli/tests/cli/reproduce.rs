//! `harness audit find` and `harness reproduce` on audit files written through a real HTTP
//! server on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness_core::Harness;
use harness_core::audit::{self, JsonlSink};
use harness_core::provider::OpenAiCompatible;
use harness_core::testing::ChaosServer;
use harness_core::testing::fixtures::{temp_path, ticket_json, triage, triage_replies};

/// Runs the binary with `args` (and `envs`), returning (exit code, stdout, stderr).
fn run(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .env_remove("HARNESS_MODEL")
        .env_remove("HARNESS_AUDIT")
        .envs(envs.iter().copied())
        .output()
        .expect("the harness binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Three triage calls (`ok`, `fixme` with a reask, `flaky` with a retry) recorded to a JSONL file.
async fn audit_file() -> (PathBuf, Vec<String>) {
    let server = ChaosServer::builder()
        .script(triage_replies())
        .start()
        .await
        .unwrap();
    let path = temp_path("audit.jsonl");
    let harness = Harness::builder()
        .provider(
            "openai",
            OpenAiCompatible::builder(server.base_url())
                .build()
                .unwrap(),
        )
        .default_model("test-model")
        .observer(JsonlSink::open(&path).unwrap())
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for text in ["ok", "fixme", "flaky"] {
        ids.push(triage(&harness, text).await.unwrap().report.call_id);
    }
    (path, ids)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_lists_matching_records_as_a_table_or_json() {
    let (path, ids) = audit_file().await;
    let (code, out, err) = run(
        &[
            "audit",
            "find",
            s(&path),
            "--task",
            "triage",
            "--since",
            "30d",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[2].starts_with(&ids[1]) && lines[2].contains(" answer "),
        "{out}"
    );

    let (code, out, _) = run(
        &[
            "audit",
            "find",
            s(&path),
            "--input-hash",
            &harness_core::digest::hash_hex(b"flaky")[..8],
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0);
    let found: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], ids[2].as_str());
    assert_eq!(found[0]["attempts"], 2);

    let (code, _, err) = run(&["audit", "find", s(&path), "--outcome", "failed"], &[]);
    assert_eq!((code, err.trim()), (1, "no record matches"));
    let (code, _, err) = run(&["audit", "find", s(&path), "--until", "last tuesday"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("`last tuesday` is not a time"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reproduce_offline_is_identical_and_live_shows_what_differs() {
    let (path, ids) = audit_file().await;
    for id in &ids {
        let (code, out, err) = run(&["reproduce", "--id", id], &[("HARNESS_AUDIT", s(&path))]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.trim_end().ends_with("identical"), "{out}");
        assert!(out.contains("byte for byte"), "{out}");
    }

    let now = ChaosServer::builder()
        .answer(|_| ticket_json("billing", 3, 0.9))
        .start()
        .await
        .unwrap();
    let url = now.base_url();
    let args = [
        "reproduce",
        "--audit",
        s(&path),
        "--id",
        &ids[0],
        "--live",
        "--base-url",
        &url,
    ];
    let (code, out, err) = run(&args, &[("OPENAI_API_KEY", "sk-test")]);
    assert_eq!(code, 1, "{out}{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("value.priority"))
        .unwrap();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["value.priority", "2", "3", "NO"]
    );
    assert_eq!(now.request_count(), 1);

    let (code, out, _) = run(&[&args[..], &["--json"]].concat(), &[]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["identical"], false);
    assert_eq!(report["exit"], 1);
    assert_eq!(report["mode"], "live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_tampered_and_missing_records_cannot_be_reproduced() {
    let (path, ids) = audit_file().await;
    let text = std::fs::read_to_string(&path).unwrap();

    // The last write cut short by a crash.
    let cut = temp_path("cut.jsonl");
    std::fs::write(&cut, &text[..text.len() - 40]).unwrap();
    let (code, _, err) = run(&["reproduce", "--audit", s(&cut), "--id", &ids[2]], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is cut short, a write that did not finish"),
        "{err}"
    );

    // A record cut in the middle of the file.
    let middle = temp_path("middle.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(
        &middle,
        format!(
            "{}\n{}\n{}\n",
            lines[0],
            &lines[1][..lines[1].len() / 2],
            lines[2]
        ),
    )
    .unwrap();
    let (code, _, err) = run(&["reproduce", "--audit", s(&middle), "--id", &ids[0]], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2 is not an audit record"), "{err}");

    // A value changed after it was written.
    let tampered = temp_path("tampered.jsonl");
    std::fs::write(
        &tampered,
        text.replacen("\"priority\":2", "\"priority\":1", 1),
    )
    .unwrap();
    let (code, _, err) = run(
        &["reproduce", "--audit", s(&tampered), "--id", &ids[0]],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("was changed after it was written"), "{err}");
    assert_eq!(audit::verify_path(&tampered).unwrap().breaks, 1);

    let (code, _, err) = run(&["reproduce", "--audit", s(&path), "--id", "nope"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("no record nope"), "{err}");
    let (code, _, err) = run(&["reproduce", "--id", &ids[0]], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("give --audit FILE or set HARNESS_AUDIT"),
        "{err}"
    );
}
