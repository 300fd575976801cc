//! The audit trail end to end: records, chain, verifier, message policies, I/O errors, replay.

use std::io::Write;
use std::sync::Arc;

use harness_core::audit::ReplayProvider;
use harness_core::audit::{
    self, BreakKind, Difference, JsonlSink, MessagePolicy, SinkOptions, verify_jsonl,
};
use harness_core::testing::fixtures::{FnProvider, temp_path, ticket_json, triage};
use harness_core::{ChatRequest, ErrorKind, Harness, ProviderError, Resolution};

/// The ticket text of a request (its first user message is `Ticket: <text>`).
fn ticket(request: &ChatRequest) -> String {
    request
        .messages
        .iter()
        .find_map(|m| m.content.strip_prefix("Ticket: "))
        .unwrap_or_default()
        .to_owned()
}

/// Answers by ticket: `ok`, `fixme` (a broken rule, fixed on reask), `unsure` (low confidence),
/// `down` (the provider fails), `fenced` (JSON in a code fence).
fn model(request: &ChatRequest, _n: u64) -> Result<String, ProviderError> {
    let reask = request.messages.len() > 2;
    match ticket(request).as_str() {
        "fixme" if !reask => Ok(r#"{"category":"bug","priority":7,"confidence":0.8}"#.into()),
        "fixme" => Ok(ticket_json("bug", 1, 0.8)),
        "unsure" => Ok(ticket_json("other", 3, 0.2)),
        "down" => Err(ProviderError::Status {
            status: 503,
            message: "overloaded".into(),
        }),
        "fenced" => Ok(format!(
            "Here you go:\n```json\n{}\n```",
            ticket_json("billing", 3, 0.95)
        )),
        _ => Ok(ticket_json("billing", 2, 0.9)),
    }
}

async fn run_all(harness: &Harness) -> Vec<String> {
    let mut ids = Vec::new();
    for text in ["ok", "fixme", "unsure", "down", "fenced"] {
        let id = match triage(harness, text).await {
            Ok(o) => o.report.call_id,
            Err(e) => e.report().call_id.clone(),
        };
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn every_call_leaves_one_complete_chained_record() {
    let path = temp_path("audit.jsonl");
    let harness = Harness::builder()
        .provider("fn", FnProvider::new(model))
        .observer(JsonlSink::open(&path).unwrap())
        .build()
        .unwrap()
        .with_actor("agent-7");
    let ids = run_all(&harness).await;

    let text = std::fs::read_to_string(&path).unwrap();
    println!("example record:\n{}", text.lines().nth(1).unwrap());
    let records = audit::read_jsonl(&path).unwrap();
    assert_eq!(
        records.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        ids
    );
    assert_eq!(records[0].prev_hash, audit::GENESIS_HASH);
    for pair in records.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    for r in &records {
        assert!(r.hash_is_valid());
        // Records serialize straight to their canonical form (what the hash covers).
        let mut unsealed = r.clone();
        unsealed.hash.clear();
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&unsealed).unwrap()).unwrap(),
            String::from_utf8(audit::canonical_json(
                &serde_json::to_value(&unsealed).unwrap()
            ))
            .unwrap()
        );
        assert_eq!(r.task, "triage");
        assert_eq!(r.contract_version, "test-v1");
        assert_eq!(r.actor.as_deref(), Some("agent-7"));
        assert_eq!(r.fingerprint.len(), 64);
        assert_eq!(r.request.seed, Some(7));
        assert_eq!(r.request.messages.len(), 2);
        assert_eq!(r.inputs[0].name, "text");
        // The recorded request rebuilds to exactly the one the engine fingerprinted.
        let request = r.to_request().unwrap();
        assert_eq!(audit::request_fingerprint(&request), r.fingerprint);
    }

    let ok = &records[0];
    assert_eq!(ok.outcome.status, "answer");
    assert_eq!(ok.outcome.value.as_ref().unwrap()["priority"], 2);
    assert_eq!(ok.model_requested, "test-model");
    assert_eq!(ok.model_answered.as_deref(), Some("test-model-2026-01-01"));
    assert_eq!(ok.usage.input_tokens, 40);

    let fixme = &records[1];
    assert_eq!(fixme.attempts.len(), 2);
    assert_eq!(fixme.attempts[0].validation[0].path, "priority");
    assert_eq!(fixme.attempts[0].validation[0].rule, "range");
    assert!(
        fixme.attempts[0]
            .raw
            .as_deref()
            .unwrap()
            .contains("\"priority\":7")
    );
    assert_eq!(fixme.attempts[1].kind, "reask");
    assert_eq!(fixme.actions[0].action.as_str(), "reask");
    assert_eq!(fixme.outcome.value.as_ref().unwrap()["priority"], 1);
    assert_eq!(fixme.usage.input_tokens, 80);

    // What a reviewer works from: the reason and the unconfident candidate.
    let unsure = &records[2];
    assert_eq!(unsure.outcome.status, "escalated");
    assert_eq!(unsure.outcome.class.as_deref(), Some("low_confidence"));
    assert_eq!(unsure.outcome.value, None);
    assert!(
        unsure
            .outcome
            .reason
            .as_deref()
            .unwrap()
            .contains("below the threshold")
    );
    assert_eq!(
        unsure.outcome.candidate.as_ref().unwrap()["confidence"],
        0.2
    );

    let down = &records[3];
    assert_eq!(down.outcome.status, "failed");
    assert_eq!(down.outcome.class.as_deref(), Some("provider_error"));
    assert_eq!(down.attempts.len(), 2);
    assert!(down.attempts[1].error.as_deref().unwrap().contains("503"));
    assert_eq!(down.model_answered, None);

    let fenced = &records[4];
    assert_eq!(fenced.attempts[0].repairs.len(), 1);

    let report = verify_jsonl(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 5);
    assert_eq!(report.last_hash.as_deref(), Some(records[4].hash.as_str()));
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &std::path::Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

async fn five_records() -> std::path::PathBuf {
    let path = temp_path("audit.jsonl");
    let harness = Harness::builder()
        .provider("fn", FnProvider::new(model))
        .observer(JsonlSink::open(&path).unwrap())
        .build()
        .unwrap();
    run_all(&harness).await;
    path
}

#[tokio::test]
async fn verifier_reports_the_first_broken_record_and_its_line() {
    let path = five_records().await;
    let original = lines(&path);

    // Tampered: an accepted value changed after the fact.
    let mut edited = original.clone();
    assert!(edited[1].contains("\"priority\":1"));
    edited[1] = edited[1].replacen("\"priority\":1", "\"priority\":3", 1);
    write_lines(&path, &edited);
    let report = verify_jsonl(&path).unwrap();
    println!("{report}");
    let b = report.first_break.as_ref().unwrap();
    assert_eq!(b.line, 2);
    assert!(matches!(b.kind, BreakKind::Tampered { .. }));
    assert_eq!(report.breaks, 1, "one changed record is reported once");
    assert_eq!(report.verified, 1);

    // Missing: a record deleted.
    let mut deleted = original.clone();
    deleted.remove(2);
    write_lines(&path, &deleted);
    let report = verify_jsonl(&path).unwrap();
    println!("{report}");
    let b = report.first_break.unwrap();
    assert_eq!(b.line, 3);
    assert!(matches!(b.kind, BreakKind::Unlinked { .. }));

    // Reordered.
    let mut swapped = original.clone();
    swapped.swap(3, 4);
    write_lines(&path, &swapped);
    let b = verify_jsonl(&path).unwrap().first_break.unwrap();
    assert_eq!(b.line, 4);
    assert!(matches!(b.kind, BreakKind::Unlinked { .. }));

    // Head cut off: the first record must start from the genesis hash.
    write_lines(&path, &original[1..]);
    let b = verify_jsonl(&path).unwrap().first_break.unwrap();
    assert_eq!(b.line, 1);

    // Garbage in the middle.
    let mut garbage = original.clone();
    garbage.insert(2, "{not json".into());
    write_lines(&path, &garbage);
    let b = verify_jsonl(&path).unwrap().first_break.unwrap();
    assert_eq!(b.line, 3);
    assert!(matches!(b.kind, BreakKind::Malformed { .. }));
}

#[tokio::test]
async fn a_torn_last_line_is_flagged_and_set_aside_on_reopen() {
    let path = five_records().await;
    let original = lines(&path);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(&original[0].as_bytes()[..100]).unwrap();
    drop(file);

    let report = verify_jsonl(&path).unwrap();
    println!("{report}");
    assert!(report.chain_ok());
    assert!(!report.is_intact());
    let torn = report.torn_tail.unwrap();
    assert_eq!((torn.line, torn.bytes), (6, 100));

    // Reopening moves the fragment aside and continues the chain.
    let sink = Arc::new(JsonlSink::open(&path).unwrap());
    assert_eq!(sink.last_hash(), audit::read_jsonl(&path).unwrap()[4].hash);
    let harness = Harness::builder()
        .provider("fn", FnProvider::new(model))
        .observer(sink)
        .build()
        .unwrap();
    triage(&harness, "ok").await.unwrap();
    let report = verify_jsonl(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 6);
    let dir = path.parent().unwrap();
    let side: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".torn-"))
        .collect();
    assert_eq!(side.len(), 1);
    assert_eq!(std::fs::read(side[0].path()).unwrap().len(), 100);
}

#[tokio::test]
async fn a_complete_record_missing_only_its_newline_is_kept() {
    let path = five_records().await;
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.trim_end()).unwrap();
    assert!(verify_jsonl(&path).unwrap().torn_tail.is_some());
    let sink = JsonlSink::open(&path).unwrap();
    drop(sink);
    let report = verify_jsonl(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 5);
}

#[tokio::test]
async fn message_policies_keep_hashes_or_nothing() {
    for policy in [MessagePolicy::Hashed, MessagePolicy::Redacted] {
        let path = temp_path("audit.jsonl");
        let options = SinkOptions {
            messages: policy,
            ..SinkOptions::default()
        };
        let harness = Harness::builder()
            .provider("fn", FnProvider::new(model))
            .observer(JsonlSink::open_with(&path, options).unwrap())
            .build()
            .unwrap();
        triage(&harness, "a secret ticket").await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("a secret ticket"), "{policy:?}: {text}");
        let record = &audit::read_jsonl(&path).unwrap()[0];
        let user = &record.request.messages[1];
        assert_eq!(user.content, None);
        assert_eq!(user.len, "Ticket: a secret ticket".len());
        match policy {
            MessagePolicy::Hashed => assert_eq!(
                user.sha256.as_deref(),
                Some(audit::hash_hex(b"Ticket: a secret ticket").as_str())
            ),
            _ => assert_eq!(user.sha256, None),
        }
        assert!(record.to_request().is_none());
        assert!(matches!(
            audit::replay(record, &FnProvider::new(model)).await,
            Err(audit::ReplayError::NotRecordedInFull(_))
        ));
        assert!(verify_jsonl(&path).unwrap().is_intact());
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn write_errors_neither_panic_nor_lose_records_silently() {
    // Every write to /dev/full fails with ENOSPC.
    let options = SinkOptions {
        max_pending: 3,
        ..SinkOptions::default()
    };
    let sink = Arc::new(JsonlSink::open_with("/dev/full", options).unwrap());
    let harness = Harness::builder()
        .provider("fn", FnProvider::new(model))
        .observer(sink.clone())
        .build()
        .unwrap();
    for _ in 0..5 {
        // The calls themselves succeed: auditing never fails a call.
        triage(&harness, "ok").await.unwrap();
    }
    assert_eq!(sink.pending(), 3);
    assert_eq!(sink.dropped(), 2);
    assert!(sink.flush().is_err());
}

#[tokio::test]
async fn replay_provider_turns_recorded_calls_into_an_offline_test() {
    let path = five_records().await;
    let recorded = audit::read_jsonl(&path).unwrap();

    let replay = ReplayProvider::from_jsonl(&path).unwrap();
    assert_eq!(replay.loaded(), 7); // 1 + 2 (reask) + 1 + 2 (retry) + 1
    let replay = Arc::new(replay);
    let replay_log = temp_path("replayed.jsonl");
    let harness = Harness::builder()
        .provider("fn", replay.clone())
        .observer(JsonlSink::open(&replay_log).unwrap())
        .build()
        .unwrap();
    let ok = triage(&harness, "ok").await.unwrap();
    assert_eq!(ok.into_value().unwrap().priority, 2);
    let fixme = triage(&harness, "fixme").await.unwrap();
    assert_eq!(fixme.provenance.reasks, 1);
    assert_eq!(fixme.into_value().unwrap().priority, 1);
    let unsure = triage(&harness, "unsure").await.unwrap();
    assert!(matches!(unsure.resolution, Resolution::Escalated(_)));
    let down = triage(&harness, "down").await.unwrap_err();
    assert_eq!(down.kind(), ErrorKind::ProviderError);
    assert_eq!(down.attempts().len(), 2);
    triage(&harness, "fenced").await.unwrap();
    assert_eq!(replay.remaining(), 0);

    // The replayed run took exactly the recorded path.
    let replayed = audit::read_jsonl(&replay_log).unwrap();
    for (a, b) in recorded.iter().zip(&replayed) {
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.outcome, b.outcome);
        let raw =
            |r: &audit::AuditRecord| r.attempts.iter().map(|a| a.raw.clone()).collect::<Vec<_>>();
        assert_eq!(raw(a), raw(b));
    }

    // A changed input (or prompt, schema, parameter) has no recording: it fails at once.
    let err = triage(&harness, "something new").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProviderError);
    assert!(
        err.message().contains("no recorded response"),
        "{}",
        err.message()
    );
    // And a recording is served once per recorded call.
    let err = triage(&harness, "ok").await.unwrap_err();
    assert!(err.message().contains("no recorded response"));
}

#[tokio::test]
async fn replay_resends_the_exact_request_and_diffs_the_answers() {
    let path = five_records().await;
    let record = audit::read_jsonl(&path).unwrap().remove(0);

    // Same model behaviour: same output.
    let same = audit::replay(&record, &FnProvider::new(model))
        .await
        .unwrap();
    assert!(same.request_matches);
    assert!(same.is_same(), "{same}");
    assert_eq!(same.request.seed, Some(7));
    assert_eq!(same.request.temperature, Some(0.0));

    // A model that changed: the diff says where.
    let drifted = FnProvider::new(|_: &ChatRequest, _| {
        Ok(r#"{"category":"bug","priority":2,"urgency":"high"}"#.to_owned())
    });
    let result = audit::replay(&record, &drifted).await.unwrap();
    println!("{result}");
    assert!(!result.is_same());
    assert_eq!(
        result.diff,
        vec![
            Difference::Changed {
                path: "category".into(),
                old: "billing".into(),
                new: "bug".into()
            },
            Difference::Removed {
                path: "confidence".into(),
                old: 0.9.into()
            },
            Difference::Added {
                path: "urgency".into(),
                new: "high".into()
            },
        ]
    );

    // Through a harness: routed to the provider the record names.
    let harness = Harness::builder()
        .provider("fn", FnProvider::new(model))
        .build()
        .unwrap();
    assert!(
        audit::replay_with(&record, &harness)
            .await
            .unwrap()
            .is_same()
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_sink_keeps_the_same_chain() {
    let path = temp_path("audit.db");
    {
        let harness = Harness::builder()
            .provider("fn", FnProvider::new(model))
            .observer(audit::SqliteSink::open(&path).unwrap())
            .build()
            .unwrap();
        run_all(&harness).await;
    }
    // Reopening resumes the chain.
    {
        let harness = Harness::builder()
            .provider("fn", FnProvider::new(model))
            .observer(audit::SqliteSink::open(&path).unwrap())
            .build()
            .unwrap();
        triage(&harness, "ok").await.unwrap();
    }
    let report = audit::verify_sqlite(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 6);
    assert_eq!(audit::verify_path(&path).unwrap(), report);
    let records = audit::read_sqlite(&path).unwrap();
    assert_eq!(records[1].attempts.len(), 2);

    // Tampering with a row is caught.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE audit_records SET record = replace(record, '\"priority\":1', '\"priority\":3') WHERE seq = 2",
        [],
    )
    .unwrap();
    drop(conn);
    let report = audit::verify_sqlite(&path).unwrap();
    let b = report.first_break.unwrap();
    assert_eq!(b.line, 2);
    assert!(matches!(b.kind, BreakKind::Tampered { .. }));
}

#[tokio::test]
async fn background_writing_keeps_every_record_once_flushed() {
    let path = temp_path("background.jsonl");
    let options = SinkOptions {
        background: true,
        max_pending: 4, // small, so some records take the back-pressure path
        ..SinkOptions::default()
    };
    let sink = Arc::new(JsonlSink::open_with(&path, options).unwrap());
    let harness = Harness::builder()
        .provider("fn", FnProvider::new(model))
        .observer(sink.clone())
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.extend(run_all(&harness).await);
    }
    sink.flush().unwrap();
    let records = audit::read_jsonl(&path).unwrap();
    let mut written: Vec<String> = records.into_iter().map(|r| r.id).collect();
    written.sort();
    ids.sort();
    assert_eq!(written, ids);
    assert!(verify_jsonl(&path).unwrap().is_intact());
}

#[tokio::test]
async fn fsync_every_record_writes_the_same_chain() {
    let path = temp_path("synced.jsonl");
    let options = SinkOptions {
        fsync: audit::Fsync::EveryRecord,
        ..SinkOptions::default()
    };
    let harness = Harness::builder()
        .provider("fn", FnProvider::new(model))
        .observer(JsonlSink::open_with(&path, options).unwrap())
        .build()
        .unwrap();
    run_all(&harness).await;
    let report = verify_jsonl(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 5);
}

#[tokio::test]
async fn the_same_request_recorded_twice_is_served_in_recorded_order() {
    let path = temp_path("twice.jsonl");
    let answers = ["billing", "bug"];
    let harness = Harness::builder()
        .provider(
            "fn",
            FnProvider::new(move |_, n| Ok(ticket_json(answers[n as usize % 2], 2, 0.9))),
        )
        .observer(JsonlSink::open(&path).unwrap())
        .build()
        .unwrap();
    triage(&harness, "same").await.unwrap();
    triage(&harness, "same").await.unwrap();

    let harness = Harness::builder()
        .provider("replay", ReplayProvider::from_jsonl(&path).unwrap())
        .build()
        .unwrap();
    let first = triage(&harness, "same")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    let second = triage(&harness, "same")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(
        (first.category.as_str(), second.category.as_str()),
        ("billing", "bug")
    );
}
