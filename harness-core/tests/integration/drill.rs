//! Failure drills: every fault class is drilled, and each scenario ends as the contract says.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness_core::ErrorKind;
use harness_core::context::{Document, source_fn};
use harness_core::contract::{
    Action, Backoff, FailureClass, FallbackTarget, InputSpec, SourceSpec, TaskContract,
};
use harness_core::observe::{CallEnd, Observer};
use harness_core::output::{FieldPath, LlmOutput, ValidationErrors};
use harness_core::testing::Fault;
use harness_core::testing::drill::{self, DrillOptions};
use harness_core::testing::fixtures::{self, ContractBuilder, chain, output};

#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
struct Label {
    label: String,
    confidence: f64,
}

impl LlmOutput for Label {
    const TYPE_NAME: &'static str = "Label";
    const HAS_CONFIDENCE: bool = true;
    fn validate(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        if !["spam", "ham"].contains(&self.label.as_str()) {
            errors.push(&path.field("label"), "one_of", "spam or ham");
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            errors.push(&path.field("confidence"), "range", "0 to 1");
        }
    }
    fn confidence(&self) -> Option<f64> {
        Some(self.confidence)
    }
}

const fn retry(times: u32) -> Action {
    fixtures::retry(times, Backoff::DEFAULT)
}

static LABEL: TaskContract = ContractBuilder::new("label", output::<Label>())
    .module("drill_tests")
    .description("Labels a message.")
    .model(Some("main-model"))
    .prompt("Message: {text}")
    .inputs(&[InputSpec {
        name: "text",
        rust_type: "&str",
    }])
    .timeout(Duration::from_secs(10))
    .chains(&[
        chain(FailureClass::Timeout, &[Action::Escalate]),
        chain(FailureClass::RateLimited, &[retry(2)]),
        chain(
            FailureClass::ProviderError,
            &[
                retry(1),
                Action::Fallback(FallbackTarget {
                    model: "backup-model",
                    provider: Some("backup"),
                }),
            ],
        ),
        chain(
            FailureClass::InvalidOutput,
            &[Action::Reask { times: 1 }, Action::Default],
        ),
        chain(FailureClass::Refusal, &[Action::Fail]),
        chain(
            FailureClass::LowConfidence,
            &[Action::Reask { times: 1 }, Action::Escalate],
        ),
    ])
    .low_confidence_below(0.8)
    .build();

fn defaults(_: FailureClass) -> Option<Label> {
    Some(Label {
        label: "ham".into(),
        confidence: 0.0,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_class_is_drilled_and_ends_as_the_contract_says() {
    let alerts = Arc::new(Alerts::default());
    let options = DrillOptions::new()
        .attempt_timeout(Duration::from_millis(150))
        .answer(r#"{"label":"spam","confidence":0.95}"#)
        .observer(alerts.clone());
    let report = drill::run_with_defaults::<Label>(
        &LABEL,
        vec![("text", "WIN A PRIZE".into())],
        options,
        &defaults,
    )
    .await;
    println!("{report}");
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(report.attempt_timeout, Duration::from_millis(150));
    for fault in Fault::ALL {
        assert!(
            report.scenario(fault.name()).is_some(),
            "{fault} was not drilled"
        );
    }
    let s = |name: &str| report.scenario(name).unwrap();

    // A stall ends in the timeout chain's outcome: escalate.
    let stall = s("stall");
    assert_eq!(stall.outcome, "escalated after timeout");
    assert_eq!(stall.actions, ["escalate"]);
    assert_eq!(stall.status.as_deref(), Some("escalated/timeout"));
    assert!(
        stall.elapsed >= Duration::from_millis(150),
        "{:?}",
        stall.elapsed
    );
    assert!(
        stall.elapsed < Duration::from_secs(2),
        "{:?}",
        stall.elapsed
    );

    assert_eq!(s("http_503").actions, ["retry"]);
    assert!(s("http_503").answered());
    assert_eq!(s("code_fences").outcome, "answer, first try (repaired)");
    assert_eq!(s("missing_field").actions, ["reask"]);
    assert_eq!(s("refusal").error, Some(ErrorKind::Refusal));
    assert_eq!(s("low_confidence").actions, ["reask"]);

    let down = s("provider_down");
    assert_eq!(down.actions, ["retry", "fallback(backup-model)", "fail"]);
    assert_eq!(down.error, Some(ErrorKind::ProviderError));
    assert_eq!(down.attempts, 3);

    let invalid = s("model_always_invalid");
    assert_eq!(invalid.actions, ["reask", "default"]);
    assert_eq!(invalid.outcome, "default after invalid_output");

    // Logs: one `harness decision` event per action, with its fields.
    for sc in &report.scenarios {
        assert_eq!(sc.decisions(), sc.actions.len(), "{}", sc.name);
    }
    let decision = down
        .logs
        .iter()
        .find(|l| l.message == "harness decision")
        .unwrap();
    assert!(
        decision
            .fields
            .iter()
            .any(|(k, v)| *k == "failure_class" && v == "provider_error")
    );

    // The user's observers see every drilled call: here, one that alerts on all but answers.
    let alerted = alerts.0.lock().unwrap().clone();
    let expected: Vec<String> = report
        .scenarios
        .iter()
        .filter(|s| !s.answered())
        .map(|s| format!("{} {}", s.attempts, s.status.as_deref().unwrap()))
        .collect();
    assert_eq!(alerted, expected);
    assert!(
        alerted.contains(&"3 failed/provider_error".to_owned()),
        "{alerted:?}"
    );

    let table = report.to_string();
    assert!(table.contains("| what the harness did "), "{table}");
    assert!(
        table.contains("retry → fallback(backup-model) → fail"),
        "{table}"
    );
}

/// An alerting hook: records every call that did not end in an answer.
#[derive(Default)]
struct Alerts(Mutex<Vec<String>>);

impl Observer for Alerts {
    fn on_call_end(&self, call: &CallEnd<'_>) {
        let status = serde_json::to_value(call.status).unwrap();
        if status["status"] != "answer" {
            self.0.lock().unwrap().push(format!(
                "{} {}/{}",
                call.report.attempts.len(),
                status["status"].as_str().unwrap(),
                status["class"].as_str().unwrap()
            ));
        }
    }
}

#[tokio::test]
async fn without_defaults_a_default_step_is_reported_as_such() {
    let report = drill::run::<Label>(
        &LABEL,
        vec![("text", "hello".into())],
        DrillOptions::new()
            .attempt_timeout(Duration::from_millis(100))
            .answer(r#"{"label":"ham","confidence":0.9}"#),
    )
    .await;
    let invalid = report.scenario("model_always_invalid").unwrap();
    assert_eq!(
        invalid.outcome,
        "default after invalid_output (no value given to the drill)"
    );
    assert_eq!(invalid.error, Some(ErrorKind::Config));
    assert_eq!(report.time_scale, 0.01);
}

static ANSWER_FROM_KB: TaskContract = ContractBuilder::new("answer_from_kb", output::<Label>())
    .module("drill_tests")
    .model(Some("main-model"))
    .prompt("Message: {text}")
    .inputs(&[InputSpec {
        name: "text",
        rust_type: "&str",
    }])
    .timeout(Duration::from_secs(10))
    .sources(&[
        SourceSpec::new("kb", 300).with_on_unavailable(&[
            Action::FallbackSource {
                source: "kb_mirror",
            },
            Action::Proceed,
        ]),
        SourceSpec::new("profile", 100),
    ])
    .chains(&[
        chain(FailureClass::Timeout, &[Action::Fail]),
        chain(FailureClass::RateLimited, &[Action::Fail]),
        chain(FailureClass::ProviderError, &[Action::Fail]),
        chain(FailureClass::InvalidOutput, &[Action::Fail]),
        chain(FailureClass::Refusal, &[Action::Fail]),
        chain(FailureClass::LowConfidence, &[Action::Fail]),
        chain(FailureClass::ContextUnavailable, &[Action::Default]),
    ])
    .low_confidence_below(0.5)
    .build();

fn one_doc(id: &'static str) -> impl harness_core::context::ContextSource {
    source_fn(move |_| async move {
        Ok(vec![Document {
            id: id.into(),
            text: "Spam is unsolicited bulk mail.".into(),
            score: 1.0,
            source: id.into(),
        }])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieval_down_turns_off_each_declared_source_in_turn() {
    let options = DrillOptions::new()
        .attempt_timeout(Duration::from_millis(150))
        .answer(r#"{"label":"spam","confidence":0.95}"#)
        .source("kb", one_doc("kb"))
        .source("kb_mirror", one_doc("kb_mirror"))
        .source("profile", one_doc("profile"));
    let report = drill::run_with_defaults::<Label>(
        &ANSWER_FROM_KB,
        vec![("text", "WIN A PRIZE".into())],
        options,
        &defaults,
    )
    .await;
    println!("{report}");
    let rows: Vec<&str> = report
        .scenarios
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| n.starts_with("source_down:"))
        .collect();
    assert_eq!(rows, ["source_down:kb", "source_down:profile"]);

    // `kb` down: its own contract falls back to the mirror, and the model answers.
    let kb = report.scenario("source_down:kb").unwrap();
    assert_eq!(kb.injected, "source `kb` fails on every fetch");
    assert_eq!(kb.actions, ["fallback(kb_mirror)"]);
    assert!(kb.answered(), "{}", kb.outcome);
    assert_eq!(kb.attempts, 1);
    assert_eq!(kb.status.as_deref(), Some("answer"));

    // `profile` down: the task's contract returns the default before any attempt.
    let profile = report.scenario("source_down:profile").unwrap();
    assert_eq!(profile.actions, ["default"]);
    assert_eq!(profile.outcome, "default after context_unavailable");
    assert_eq!(profile.class, Some(FailureClass::ContextUnavailable));
    assert_eq!(profile.attempts, 0);
    assert_eq!(profile.decisions(), 1);

    // The other scenarios still run with every source up.
    let first_try = report.scenario("http_500").unwrap();
    assert_eq!(first_try.outcome, "error: ProviderError");
    let json = report.to_json();
    let down = json["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "source_down:profile")
        .unwrap();
    assert_eq!(down["classes_handled"][0], "context_unavailable");
    let table = report.to_string();
    assert!(table.contains("source_down:kb"), "{table}");
}
