//! Reproducing recorded calls: records written through a real HTTP server on 127.0.0.1, read back
//! from the JSONL file, re-run offline and live, and found by filters.

use harness_core::audit::reproduce::{self, Mode, ReproduceError, reproduce_task};
use harness_core::audit::{
    self, AuditRecord, Filter, JsonlSink, MessagePolicy, SinkOptions, TimeBound,
};
use harness_core::contract::InputSpec;
use harness_core::provider::OpenAiCompatible;
use harness_core::testing::ChaosServer;
use harness_core::testing::fixtures::{
    ContractBuilder, TRIAGE, Ticket, chain, output, temp_path, ticket_json, triage, triage_replies,
};
use harness_core::{Action, FailureClass, Harness, TaskContract};

/// A harness sending to `url` under the provider name `openai`, recording to `path`.
fn harness(url: &str, path: Option<(&std::path::Path, MessagePolicy)>) -> Harness {
    let mut b =
        Harness::builder().provider("openai", OpenAiCompatible::builder(url).build().unwrap());
    if let Some((path, messages)) = path {
        let options = SinkOptions {
            messages,
            ..SinkOptions::default()
        };
        b = b.observer(JsonlSink::open_with(path, options).unwrap());
    }
    b.default_model("test-model").build().unwrap()
}

/// Three calls recorded through a chaos server: `ok` (one attempt), `fixme` (priority 7 breaks
/// the range rule; the reask fixes it) and `flaky` (a 503, then a retry that answers).
async fn recorded(policy: MessagePolicy) -> (std::path::PathBuf, Vec<AuditRecord>) {
    let server = ChaosServer::builder()
        .script(triage_replies())
        .start()
        .await
        .unwrap();
    let path = temp_path("audit.jsonl");
    let h = harness(&server.base_url(), Some((&path, policy)));
    for text in ["ok", "fixme", "flaky"] {
        triage(&h, text).await.unwrap();
    }
    drop(h);
    let records = audit::read_jsonl(&path).unwrap();
    assert_eq!(records.len(), 3);
    (path, records)
}

#[tokio::test]
async fn a_record_reproduced_offline_is_identical_request_by_request() {
    let (_, records) = recorded(MessagePolicy::Full).await;
    let kinds: Vec<Vec<&str>> = records
        .iter()
        .map(|r| r.attempts.iter().map(|a| a.kind.as_str()).collect())
        .collect();
    assert_eq!(
        kinds,
        [
            vec!["first"],
            vec!["first", "reask"],
            vec!["first", "retry"]
        ]
    );
    for record in &records {
        let report = reproduce::reproduce(record, Mode::Offline).await.unwrap();
        assert!(report.is_identical(), "{report}");
        assert_eq!(report.exit_code(), 0);
        assert_eq!(report.requests.len(), record.attempts.len());
        assert!(report.requests.iter().all(|c| c.matches()), "{report}");
        assert_eq!(report.reproduced.value, record.outcome.value);
        let text = report.to_string();
        assert!(text.contains("identical"), "{text}");
    }
    // The reask's verdict (a broken `range` rule) is the task's code: said so, not hidden.
    let fixme = reproduce::reproduce(&records[1], Mode::Offline)
        .await
        .unwrap();
    assert!(
        fixme
            .notes
            .iter()
            .any(|n| n.contains("verdict taken from the record")),
        "{fixme}"
    );
    assert!(
        fixme
            .rows
            .iter()
            .any(|r| r.field == "value.priority" && r.reproduced == "1")
    );
}

#[tokio::test]
async fn the_linked_task_reproduces_through_its_own_contract() {
    let (_, records) = recorded(MessagePolicy::Full).await;
    for record in &records {
        let report = reproduce_task::<Ticket>(record, &TRIAGE, Mode::Offline, None)
            .await
            .unwrap();
        assert!(report.is_identical(), "{report}");
        assert_eq!(report.contract, "linked");
        assert!(!report.version_differs());
    }
    // A program whose contract has moved on says so (and the prompt change shows as a request
    // the record holds no response for).
    static CHANGED: TaskContract = ContractBuilder::new("triage", output::<Ticket>())
        .module("support")
        .version("test-v2")
        .system("You triage support tickets.")
        .prompt("Ticket text: {text}")
        .inputs(&[InputSpec {
            name: "text",
            rust_type: "&str",
        }])
        .chains(&[chain(FailureClass::InvalidOutput, &[Action::Fail])])
        .params(Some(0.0), Some(200), Some(7))
        .build();
    let report = reproduce_task::<Ticket>(&records[0], &CHANGED, Mode::Offline, None)
        .await
        .unwrap();
    assert!(report.version_differs());
    assert!(
        report
            .to_string()
            .contains("this program's contract is version test-v2"),
        "{report}"
    );
    assert!(!report.is_identical(), "{report}");
    assert_eq!(report.reproduced.status, "failed");
}

#[tokio::test]
async fn a_rerun_against_a_server_that_now_answers_differently_shows_the_fields() {
    let (_, records) = recorded(MessagePolicy::Full).await;
    let now = ChaosServer::builder()
        .answer(|_| ticket_json("billing", 3, 0.9))
        .start()
        .await
        .unwrap();
    let live = harness(&now.base_url(), None);
    let report = reproduce::reproduce(&records[0], Mode::Live(&live))
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 1, "{report}");
    let differing: Vec<&str> = report
        .rows
        .iter()
        .filter(|r| !r.same)
        .map(|r| r.field.as_str())
        .collect();
    assert_eq!(differing, ["value.priority"], "{report}");
    let text = report.to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with("value.priority"))
        .unwrap();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells, ["value.priority", "2", "3", "NO"], "{text}");
    assert!(text.ends_with("DIFFERS: 1 of 8 rows"), "{text}");
    // The request the server got is the recorded one, byte for byte.
    assert_eq!(now.request_count(), 1);

    // The fixme call now answers well at once: no reask, a shorter path, another output.
    let report = reproduce::reproduce(&records[1], Mode::Live(&live))
        .await
        .unwrap();
    let row = |f: &str| report.rows.iter().find(|r| r.field == f).unwrap().clone();
    assert_eq!(row("attempts").recorded, "first → reask");
    assert_eq!(row("attempts").reproduced, "first");
    assert!(!row("value.category").same, "{report}");

    // A server that answers as the model did then: identical, live.
    let same = ChaosServer::builder()
        .answer(|_| ticket_json("billing", 2, 0.9))
        .start()
        .await
        .unwrap();
    let live = harness(&same.base_url(), None);
    let report = reproduce::reproduce(&records[0], Mode::Live(&live))
        .await
        .unwrap();
    assert!(report.is_identical(), "{report}");
    let typed = reproduce_task::<Ticket>(&records[0], &TRIAGE, Mode::Live(&live), None)
        .await
        .unwrap();
    assert!(typed.is_identical(), "{typed}");
}

#[tokio::test]
async fn hashed_messages_and_tampered_records_are_clear_errors() {
    let (_, hashed) = recorded(MessagePolicy::Hashed).await;
    let e = reproduce::reproduce(&hashed[0], Mode::Offline)
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        ReproduceError::NotRecordedInFull {
            policy: MessagePolicy::Hashed,
            ..
        }
    ));
    assert!(
        e.to_string()
            .contains("only records written with MessagePolicy::Full"),
        "{e}"
    );

    let (path, _) = recorded(MessagePolicy::Full).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let tampered = text.replacen("\"priority\":2", "\"priority\":1", 1);
    assert_ne!(tampered, text);
    std::fs::write(&path, tampered).unwrap();
    let record = audit::read_jsonl(&path).unwrap().remove(0);
    let e = reproduce::reproduce(&record, Mode::Offline)
        .await
        .unwrap_err();
    assert!(matches!(e, ReproduceError::Tampered { .. }), "{e}");
    assert!(
        e.to_string().contains("was changed after it was written"),
        "{e}"
    );

    let mut newer = record.clone();
    newer.v = audit::RECORD_VERSION + 1;
    newer.hash.clear();
    let e = reproduce::reproduce(&newer, Mode::Offline)
        .await
        .unwrap_err();
    assert!(matches!(e, ReproduceError::NewerLayout { .. }), "{e}");
}

#[tokio::test]
async fn records_are_found_by_task_time_input_hash_and_outcome() {
    let (_, records) = recorded(MessagePolicy::Full).await;
    let ids = |filter: &Filter| -> Vec<String> {
        audit::find(&records, filter)
            .iter()
            .map(|r| r.id.clone())
            .collect()
    };
    let all: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids(&Filter::default().task("triage")), all);
    assert_eq!(ids(&Filter::default().task("support::triage")), all);
    assert!(ids(&Filter::default().task("classify")).is_empty());
    assert_eq!(
        ids(&Filter::default().since(TimeBound::parse("30d").unwrap())),
        all
    );
    assert!(ids(&Filter::default().until(TimeBound::parse("30d").unwrap())).is_empty());
    assert!(ids(&Filter::default().since(TimeBound::parse("2999-01-01").unwrap())).is_empty());
    let fixme = harness_core::digest::hash_hex(b"fixme");
    assert_eq!(
        ids(&Filter::default().input_hash(&fixme[..10])),
        [all[1].clone()]
    );
    assert_eq!(
        ids(&Filter::default().input_hash(&records[2].fingerprint[..8])),
        [all[2].clone()]
    );
    assert_eq!(ids(&Filter::default().status("answer")), all);
    assert!(ids(&Filter::default().status("failed")).is_empty());
    assert!(Filter::default().input_hash("abc").check().is_err());
}
