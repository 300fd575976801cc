//! The registry built by hand (`Registry::from_entries`, what a program on a platform without
//! link-time registration does), its exports, diffs between them, and the readiness audit's
//! use of drill and eval evidence, with a real audit trail written by `JsonlSink`. The registry
//! of linked contracts, end to end, is `harness-cli/tests/readiness.rs`.

use std::time::Duration;

use harness_core::audit::{JsonlSink, MessagePolicy, SinkOptions};
use harness_core::contract::{Action, FailureClass, InputSpec, PolicySet, TaskContract};
use harness_core::registry::readiness::{Evidence, Readiness};
use harness_core::registry::{self, Export, Linked, Registry};
use harness_core::testing::fixtures::{
    self, ContractBuilder, FnProvider, Label, TRIAGE, chain, retry, temp_path, ticket_json, triage,
};
use harness_core::{Harness, ProviderError};

static POLICY: PolicySet = PolicySet {
    name: "Standard",
    chains: &[chain(FailureClass::Timeout, &[retry(1, fixtures::QUICK)])],
    low_confidence_below: None,
};

static LABEL: TaskContract = ContractBuilder::new("label", fixtures::output::<Label>())
    .module("app::labels")
    .description("Labels one text.")
    .version("v1")
    .model(Some("gpt-4o-2024-08-06"))
    .no_prompt()
    .policy(&POLICY)
    .build();

static LABEL_V2: TaskContract = ContractBuilder::new("label", fixtures::output::<Label>())
    .module("app::labels")
    .description("Labels one text.")
    .version("v2")
    .model(Some("gpt-4o-2024-11-20"))
    .prompt("Label: {text}")
    .inputs(&[InputSpec {
        name: "text",
        rust_type: "&str",
    }])
    .timeout(Duration::from_secs(2))
    .chains(&[chain(FailureClass::Timeout, &[Action::Fail])])
    .build();

static LABEL_ELSEWHERE: TaskContract = ContractBuilder::new("label", fixtures::output::<Label>())
    .module("other::labels")
    .build();

#[test]
fn the_linked_registry_of_this_binary_is_listed_not_refused() {
    // This binary declares no `#[llm_task]`: an empty registry, not an error, on a platform
    // where registration works.
    const { assert!(registry::SUPPORTED) };
    let reg = registry::program().expect("registration is supported here");
    assert!(reg.tasks().is_empty(), "{reg}");
    registry::check().unwrap();
}

#[test]
fn two_tasks_of_one_name_are_refused_with_both_modules() {
    let err = Registry::from_entries(&[
        Linked::Task(&LABEL),
        Linked::Task(&TRIAGE),
        Linked::Task(&LABEL_ELSEWHERE),
    ])
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("task name `label` is declared 2 times, in `app::labels`, `other::labels`"),
        "{text}"
    );
    assert!(text.contains("rename all but one"), "{text}");
    // Policies of one name in two modules are two policies.
    let reg = Registry::from_entries(&[
        Linked::Policy(&POLICY, "a"),
        Linked::Policy(&POLICY, "b"),
        Linked::Task(&TRIAGE),
        Linked::Task(&LABEL),
    ])
    .unwrap();
    let names: Vec<&str> = reg.tasks().iter().map(|t| t.name).collect();
    assert_eq!(names, ["label", "triage"]);
    assert_eq!(reg.policies().len(), 2);
}

#[test]
fn an_export_documents_chains_by_origin_and_reads_back() {
    let reg =
        Registry::from_entries(&[Linked::Task(&LABEL), Linked::Policy(&POLICY, "app")]).unwrap();
    let export = reg.export("app");
    let label = export.task("label").unwrap();
    assert_eq!(label.prompt.kind, "body");
    let by: Vec<(&str, &str)> = label
        .failures
        .iter()
        .map(|f| (f.class.as_str(), f.declared_by.as_str()))
        .collect();
    assert_eq!(
        by,
        [
            ("timeout", "policy:Standard"),
            ("rate_limited", "none"),
            ("provider_error", "none"),
            ("invalid_output", "none"),
            ("refusal", "none"),
        ]
    );
    assert_eq!(label.failures[1].chain, "fail");
    assert_eq!(label.failures[0].steps[0].times, Some(1));
    assert_eq!(label.failures[0].steps[0].backoff_initial_ms, Some(1));
    assert_eq!(export.policies[0].used_by, ["label"]);
    let back = Export::from_json(&export.to_json_pretty()).unwrap();
    assert_eq!(back, export);

    let md = export.to_markdown();
    assert!(
        md.contains("No template: the function body assembles the context"),
        "{md}"
    );
    assert!(md.contains("| rate_limited | `fail` | none |"), "{md}");

    // Another format, or another version of this one, is refused by name.
    let other = export
        .to_json_pretty()
        .replace("\"format_version\": 1", "\"format_version\": 9");
    let err = Export::from_json(&other).unwrap_err().to_string();
    assert!(err.contains("version 9"), "{err}");
    assert!(Export::from_json("[1, 2]").is_err());
}

#[test]
fn the_diff_of_two_exports_names_every_changed_field() {
    let old = Registry::from_entries(&[Linked::Task(&LABEL), Linked::Policy(&POLICY, "app")])
        .unwrap()
        .export("app 1.0");
    let new = Registry::from_entries(&[Linked::Task(&LABEL_V2), Linked::Task(&TRIAGE)])
        .unwrap()
        .export("app 1.1");
    let diff = old.diff(&new);
    assert_eq!(diff.added, ["triage"]);
    assert!(diff.removed.is_empty());
    assert_eq!(diff.removed_policies, ["Standard"]);
    let change = &diff.changed[0];
    assert_eq!(
        (change.old_version.as_str(), change.new_version.as_str()),
        ("v1", "v2")
    );
    let text = diff.to_string();
    for needle in [
        "# Contract changes: app 1.0 (harness 0.1.0) → app 1.1 (harness 0.1.0)",
        "- New task `triage`",
        "- Removed policy `Standard`",
        "- Task `label` changed (version `v1` → `v2`):",
        "`model`: \"gpt-4o-2024-08-06\" → \"gpt-4o-2024-11-20\"",
        "`failures.timeout.declared_by`: \"policy:Standard\" → \"task\"",
        "`failures.timeout.chain`: \"retry(1) [backoff 1ms..1ms ×1]\" → \"fail\"",
        "`limits.timeout_ms`: 5000 → 2000",
        "`prompt.template`: null → \"Label: {text}\"",
        "`inputs[0]` added",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(old.diff(&old).is_empty());
    assert!(old.diff(&old).to_string().contains("No contract changed."));
}

fn model(request: &harness_core::ChatRequest, n: u64) -> Result<String, ProviderError> {
    // Every third call's first attempt fails; the retry answers.
    let first = request.messages.len() <= 2;
    if first && n % 3 == 0 {
        return Err(ProviderError::Status {
            status: 503,
            message: "overloaded".into(),
        });
    }
    Ok(ticket_json("billing", 2, 0.9))
}

async fn trail(policy: MessagePolicy) -> std::path::PathBuf {
    let path = temp_path("readiness.jsonl");
    let sink = JsonlSink::open_with(
        &path,
        SinkOptions {
            messages: policy,
            ..SinkOptions::default()
        },
    )
    .unwrap();
    let harness = Harness::builder()
        .provider("fn", FnProvider::new(model))
        .observer(sink)
        .build()
        .unwrap();
    for text in ["a", "b", "c", "d", "e", "f"] {
        let _ = triage(&harness, text).await;
    }
    path
}

fn drill_doc(version: &str) -> serde_json::Value {
    serde_json::json!({
        "format": "harness.drill", "format_version": 1, "task": "triage",
        "contract_version": version, "time_scale": 1.0, "notes": [],
        "scenarios": [
            {"name": "schema_drift", "classes_handled": ["invalid_output"], "outcome": "answer, after 1 reask"},
            {"name": "http_503", "classes_handled": ["provider_error"], "outcome": "answer, after 1 retry"},
        ]
    })
}

#[tokio::test]
async fn readiness_reads_the_trail_drills_and_eval_results_and_says_what_is_missing() {
    let reg = Registry::from_entries(&[Linked::Task(&TRIAGE)]).unwrap();
    let path = trail(MessagePolicy::Full).await;
    let bare = Readiness::assess(&reg, &Evidence::new().audit_trail(&path).unwrap());
    let t = &bare.tasks[0];
    assert_eq!(t.answers[0].score, Some(1.0), "{:?}", t.answers[0]);
    assert!(
        t.answers[1].missing[0].contains("no drill results"),
        "{:?}",
        t.answers[1]
    );
    assert_eq!(t.answers[2].score, Some(0.0));
    let q6 = t.answers[5].found.join("\n");
    assert!(q6.contains("6 call(s), 9 attempt(s), 3 failed"), "{q6}");

    let eval = temp_path("eval.json");
    std::fs::write(
        &eval,
        serde_json::json!({
            "format": "harness.eval-results", "format_version": 1,
            "results": [{"task": "triage", "contract_version": "test-v1", "dataset": "tickets-v3",
                         "cases": 120, "source": "traffic",
                         "metrics": {"accuracy": 0.91}, "baseline": {"accuracy": 0.88}}]
        })
        .to_string(),
    )
    .unwrap();
    let full = Evidence::new()
        .audit_trail(&path)
        .unwrap()
        .eval_results(&eval)
        .unwrap()
        .drill(drill_doc("test-v1"))
        .declare("drift_alarm")
        .declare("model_change_alarm");
    let report = Readiness::assess(&reg, &full);
    let t = &report.tasks[0];
    assert_eq!(t.answers[1].score, Some(1.0), "{:?}", t.answers[1]);
    assert!(
        t.answers[1]
            .found
            .iter()
            .any(|f| f.contains("schema_drift"))
    );
    assert_eq!(t.answers[2].score, Some(1.0), "{:?}", t.answers[2]);
    assert!(t.answers[2].found[0].contains("`tickets-v3` (120 case(s), traffic): accuracy 0.91"));
    assert!(t.score > bare.tasks[0].score);
    // `test-model` is no dated snapshot: said, whatever else is there.
    assert!(
        t.answers[3]
            .missing
            .iter()
            .any(|m| m.contains("not a dated snapshot"))
    );

    // Evidence about another version of the contract is not evidence about this one.
    let stale = Evidence::new().drill(drill_doc("old"));
    let report = Readiness::assess(&reg, &stale);
    let q2 = report.tasks[0].answers[1].missing.join("\n");
    assert!(
        q2.contains("for contract version `old`, not the current `test-v1`"),
        "{q2}"
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("no audit trail given"))
    );
    assert!(!report.passes(0.9));

    // Hashed messages cannot be replayed: 01 says so.
    let hashed = trail(MessagePolicy::Hashed).await;
    let report = Readiness::assess(&reg, &Evidence::new().audit_trail(&hashed).unwrap());
    let q1 = report.tasks[0].answers[0].missing.join("\n");
    assert!(
        q1.contains("6 of 6 record(s) keep only hashed or redacted messages"),
        "{q1}"
    );
}

#[test]
fn unreadable_evidence_is_a_typed_error() {
    let bad = temp_path("eval.json");
    std::fs::write(&bad, r#"{"format": "something-else"}"#).unwrap();
    let err = Evidence::new().eval_results(&bad).unwrap_err().to_string();
    assert!(err.contains("is not an eval results file"), "{err}");
    assert!(err.contains("something-else"), "{err}");
    let err = Evidence::new()
        .drill_results(temp_path("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read"), "{err}");
    std::fs::write(&bad, r#"[{"format": "harness.drill"}, {"task": "x"}]"#).unwrap();
    let err = Evidence::new().drill_results(&bad).unwrap_err().to_string();
    assert!(err.contains("without `format: harness.drill`"), "{err}");
}
