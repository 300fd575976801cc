//! A process killed with SIGKILL mid-run loses no audit record of a call that completed.
//!
//! The test binary runs itself again as the child (the `child` test, which does nothing unless
//! `CHILD_ENV` is set): no example or extra binary to locate, and the child is exactly the code
//! under test. The child makes calls through a harness with a `JsonlSink` as fast as it can and
//! prints each call's id once the call has returned; the parent SIGKILLs it mid-run, then checks
//! that every printed id is in the file and that the chain verifies. Three rounds on one file:
//! each reopen must resume the chain (moving a torn tail aside if the kill cut a write).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use harness_core::Harness;
use harness_core::audit::{self, JsonlSink, verify_jsonl};
use harness_core::testing::fixtures::{FnProvider, temp_path, ticket_json, triage};

const CHILD_ENV: &str = "HARNESS_KILL_TEST_AUDIT_FILE";

#[test]
fn child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let harness = Harness::builder()
            .provider(
                "fn",
                FnProvider::new(|_, n| Ok(ticket_json("billing", (n % 3 + 1) as u8, 0.9))),
            )
            .observer(JsonlSink::open(&path).unwrap())
            .build()
            .unwrap();
        let mut out = std::io::stdout();
        for i in 0u64.. {
            let outcome = triage(&harness, &format!("ticket {i}")).await.unwrap();
            writeln!(out, "DONE {}", outcome.report.call_id).unwrap();
            out.flush().unwrap();
        }
    });
}

#[cfg(unix)]
#[test]
fn sigkill_mid_run_loses_no_completed_call() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let path = temp_path("killed.jsonl");
    let mut printed = Vec::new();
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args(["kill::child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let kill_after = 150 + round * 61;
        let mut seen = 0;
        for line in lines.by_ref() {
            if let Some(id) = line.unwrap().strip_prefix("DONE ") {
                printed.push(id.to_owned());
                seen += 1;
                if seen == kill_after {
                    break;
                }
            }
        }
        assert_eq!(seen, kill_after, "the child stopped early");
        child.kill().unwrap(); // SIGKILL on Unix
        // Ids the child printed before it died are still in the pipe.
        for line in lines {
            if let Some(id) = line.unwrap().strip_prefix("DONE ") {
                printed.push(id.to_owned());
            }
        }
        let status = child.wait().unwrap();
        assert!(!status.success());

        let report = verify_jsonl(&path).unwrap();
        println!(
            "after kill {}: {} ids printed so far; {report}",
            round + 1,
            printed.len()
        );
        assert!(report.chain_ok(), "{report}");
        if let Some(torn) = &report.torn_tail {
            // Allowed, and flagged: the kill cut a write of a call that had not returned.
            println!(
                "torn tail flagged at line {} ({} bytes)",
                torn.line, torn.bytes
            );
        }
        let in_file: HashSet<String> = audit::read_jsonl(&path)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let missing: Vec<&String> = printed.iter().filter(|id| !in_file.contains(*id)).collect();
        assert!(
            missing.is_empty(),
            "completed calls with no record: {missing:?}"
        );
        assert!(in_file.len() >= printed.len());
    }
}
