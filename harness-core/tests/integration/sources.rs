//! Declared context sources: a source's documents reach the request within its limit and budget,
//! and each way a source can be unavailable (an error, a timeout on the paused clock, a panic,
//! over budget, not registered) goes to its `context_unavailable` contract: retry, a fallback
//! source, proceed, default, escalate, fail. The report and the audit record say which.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness_core::audit::{AuditRecord, MessagePolicy};
use harness_core::context::{Document, SourceError, source_fn};
use harness_core::contract::{Action, ActionKind, FailureClass, SourceSpec, TaskContract};
use harness_core::provider::scripted::Scripted;
use harness_core::testing::fixtures::{ContractBuilder, Label, NO_WAIT, chain, output, retry};
use harness_core::{CallEnd, ErrorKind, Harness, Observer, Resolution, TaskResult};

fn doc(id: &str, score: f64, text: &str) -> Document {
    Document {
        id: id.into(),
        text: text.into(),
        score,
        source: "kb".into(),
    }
}

/// Three documents, given worst first: the engine ranks them.
fn kb_docs() -> Vec<Document> {
    vec![
        doc("shipping", 0.2, "Orders ship in two days."),
        doc("refunds", 0.9, "Refunds take five days."),
        doc("returns", 0.5, "Returns are free for 30 days."),
    ]
}

const fn spec(steps: &'static [Action]) -> SourceSpec {
    SourceSpec::new("kb", 200)
        .with_limit(2)
        .with_timeout(Duration::from_secs(2))
        .with_section("docs")
        .with_on_unavailable(steps)
}

const INVALID_FAILS: &[harness_core::contract::Chain] =
    &[chain(FailureClass::InvalidOutput, &[Action::Fail])];

const fn task(sources: &'static [SourceSpec]) -> TaskContract {
    ContractBuilder::new("answer", output::<Label>())
        .prompt("Question: {input}")
        .sources(sources)
        .chains(INVALID_FAILS)
        .build()
}

const RETRY_ONCE: Action = retry(1, NO_WAIT);

static PLAIN: TaskContract = task(&[spec(&[Action::Fail])]);
static RETRIED: TaskContract = task(&[spec(&[RETRY_ONCE, Action::Fail])]);
static FALLS_BACK: TaskContract = task(&[spec(&[
    Action::FallbackSource {
        source: "kb_mirror",
    },
    Action::Fail,
])]);
static PROCEEDS: TaskContract = task(&[spec(&[Action::Proceed])]);
static DEFAULTS: TaskContract = task(&[spec(&[Action::Default])]);
static ESCALATES: TaskContract = task(&[spec(&[Action::Escalate])]);
static TASK_LEVEL: TaskContract = ContractBuilder::new("answer", output::<Label>())
    .prompt("Question: {input}")
    .sources(&[SourceSpec::new("kb", 200), SourceSpec::new("profile", 50)])
    .chains(&[chain(FailureClass::ContextUnavailable, &[Action::Proceed])])
    .build();

/// The audit records of every call, as the audit sinks write them.
#[derive(Default)]
struct Records(Mutex<Vec<AuditRecord>>);

impl Observer for Records {
    fn on_call_end(&self, call: &CallEnd<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(AuditRecord::from_call_end(call, MessagePolicy::Full));
    }
}

impl Records {
    fn last(&self) -> AuditRecord {
        self.0.lock().unwrap().last().cloned().expect("a record")
    }
}

struct Setup {
    harness: Harness,
    model: Scripted,
    records: Arc<Records>,
}

fn setup(
    register: impl FnOnce(harness_core::HarnessBuilder) -> harness_core::HarnessBuilder,
) -> Setup {
    let model = Scripted::new().then_always(harness_core::provider::scripted::Step::Respond(
        Scripted::response(r#"{"label": "positive"}"#),
    ));
    let records = Arc::new(Records::default());
    let builder = Harness::builder()
        .provider("scripted", model.clone())
        .observer(records.clone());
    Setup {
        harness: register(builder).build().unwrap(),
        model,
        records,
    }
}

async fn call(s: &Setup, contract: &'static TaskContract) -> TaskResult<Label> {
    s.harness
        .run::<Label>(
            contract,
            vec![("input", "how long do refunds take?".into())],
            None,
            Some(&|class| {
                (class == FailureClass::ContextUnavailable).then(|| Label {
                    label: "neutral".into(),
                })
            }),
        )
        .await
}

fn kb() -> impl harness_core::context::ContextSource {
    source_fn(|_| async { Ok(kb_docs()) })
}

fn failing(message: &'static str) -> impl harness_core::context::ContextSource {
    source_fn(move |_| async move { Err(SourceError::new(message)) })
}

#[tokio::test]
async fn a_sources_best_documents_go_before_the_question_within_its_limit() {
    let asked = Arc::new(Mutex::new(None));
    let seen = asked.clone();
    let s = setup(|b| {
        b.source(
            "kb",
            source_fn(move |q| {
                *seen.lock().unwrap() = Some(q);
                async { Ok(kb_docs()) }
            }),
        )
    });
    let outcome = call(&s, &PLAIN).await.unwrap();
    assert!(matches!(outcome.resolution, Resolution::Answer(_)));
    let q = asked.lock().unwrap().clone().unwrap();
    assert_eq!(q.text, "Question: how long do refunds take?");
    assert_eq!(q.input("input"), Some("how long do refunds take?"));
    assert_eq!((q.task, q.source, q.limit), ("answer", "kb", 2));

    let sent = &s.model.requests()[0].messages;
    let roles: Vec<&str> = sent.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "user"]);
    assert_eq!(
        sent[0].content,
        "docs:\n\n[refunds] (kb)\nRefunds take five days.\n\n[returns] (kb)\nReturns are free for 30 days."
    );
    assert_eq!(sent[1].content, "Question: how long do refunds take?");

    let report = &outcome.report.sources[0];
    assert_eq!(report.kept, ["refunds", "returns"]);
    assert_eq!(report.cut, ["shipping"]);
    assert!(report.kept_tokens > 0 && report.kept_tokens <= 200);
    assert_eq!(report.action, None);
    assert!(outcome.report.actions.is_empty());
    let record = s.records.last();
    assert_eq!(record.sources, outcome.report.sources);
    assert!(
        record.request.messages[0]
            .content
            .as_deref()
            .unwrap()
            .starts_with("docs:")
    );
}

#[tokio::test]
async fn an_error_is_retried_and_the_retry_answers() {
    let calls = Arc::new(AtomicU32::new(0));
    let n = calls.clone();
    let s = setup(|b| {
        b.source(
            "kb",
            source_fn(move |_| {
                let first = n.fetch_add(1, Ordering::SeqCst) == 0;
                async move {
                    if first {
                        Err(SourceError::new("index is rebuilding"))
                    } else {
                        Ok(kb_docs())
                    }
                }
            }),
        )
    });
    let outcome = call(&s, &RETRIED).await.unwrap();
    assert!(matches!(outcome.resolution, Resolution::Answer(_)));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let r = &outcome.report.sources[0];
    assert_eq!(r.fetches.len(), 2);
    assert_eq!(r.fetches[0].failure.as_deref(), Some("error"));
    assert!(
        r.fetches[0]
            .error
            .as_deref()
            .unwrap()
            .contains("index is rebuilding")
    );
    assert_eq!(r.fetches[1].error, None);
    assert_eq!(r.action.as_deref(), Some("retry"));
    assert_eq!(r.kept, ["refunds", "returns"]);
    let a = &outcome.report.actions[0];
    assert_eq!(
        (a.class, a.action),
        (FailureClass::ContextUnavailable, ActionKind::Retry)
    );
    assert_eq!(s.records.last().sources[0].action.as_deref(), Some("retry"));
}

#[tokio::test(start_paused = true)]
async fn a_source_that_does_not_answer_times_out_on_the_paused_clock() {
    let s = setup(|b| {
        b.source(
            "kb",
            source_fn(|_| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(kb_docs())
            }),
        )
    });
    let started = tokio::time::Instant::now();
    let err = call(&s, &PLAIN).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(err.kind(), ErrorKind::ContextUnavailable);
    assert!(
        err.message().contains("did not answer within 2s"),
        "{}",
        err.message()
    );
    assert!(s.model.requests().is_empty(), "no attempt is made");
    let r = &err.report().sources[0];
    assert_eq!(r.fetches[0].failure.as_deref(), Some("timeout"));
    assert_eq!(r.action.as_deref(), Some("fail"));
    let record = s.records.last();
    assert_eq!(record.outcome.status, "failed");
    assert_eq!(
        record.sources[0].fetches[0].failure.as_deref(),
        Some("timeout")
    );
}

#[tokio::test]
async fn a_panicking_source_is_unavailable_and_the_call_proceeds_without_it() {
    let s = setup(|b| {
        b.source(
            "kb",
            source_fn(|_| async {
                if true {
                    panic!("index corrupted");
                }
                Ok(Vec::new())
            }),
        )
    });
    let outcome = call(&s, &PROCEEDS).await.unwrap();
    assert!(matches!(outcome.resolution, Resolution::Answer(_)));
    let r = &outcome.report.sources[0];
    assert_eq!(r.fetches[0].failure.as_deref(), Some("panic"));
    assert!(
        !r.fetches[0].error.as_deref().unwrap().contains("corrupted"),
        "the panic message is not kept"
    );
    assert_eq!(r.action.as_deref(), Some("proceed"));
    assert!(!r.is_available());
    let sent = &s.model.requests()[0].messages;
    assert_eq!(sent.len(), 1, "the question only: {sent:?}");
    assert_eq!(
        s.records.last().sources[0].action.as_deref(),
        Some("proceed")
    );
}

#[tokio::test]
async fn a_source_whose_best_document_is_over_budget_falls_back_to_another_source() {
    let s = setup(|b| {
        b.source(
            "kb",
            source_fn(|_| async { Ok(vec![doc("manual", 1.0, &"word ".repeat(2000))]) }),
        )
        .source("kb_mirror", kb())
    });
    let outcome = call(&s, &FALLS_BACK).await.unwrap();
    assert!(matches!(outcome.resolution, Resolution::Answer(_)));
    let r = &outcome.report.sources[0];
    assert_eq!(r.fetches[0].failure.as_deref(), Some("over_budget"));
    assert!(
        r.fetches[0]
            .error
            .as_deref()
            .unwrap()
            .contains("the budget is 200")
    );
    assert_eq!(r.fetches[1].source, "kb_mirror");
    assert_eq!(r.action.as_deref(), Some("fallback"));
    assert_eq!(r.kept, ["refunds", "returns"]);
    assert!(
        s.model.requests()[0].messages[0]
            .content
            .starts_with("docs:\n\n[refunds]")
    );
    assert_eq!(outcome.report.actions[0].detail, "kb_mirror");
}

#[tokio::test]
async fn a_source_that_stays_down_ends_in_the_default() {
    let s = setup(|b| b.source("kb", failing("connection refused")));
    let outcome = call(&s, &DEFAULTS).await.unwrap();
    match outcome.resolution {
        Resolution::Default { value, class } => {
            assert_eq!(value.label, "neutral");
            assert_eq!(class, FailureClass::ContextUnavailable);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.model.requests().is_empty());
    let record = s.records.last();
    assert_eq!(record.outcome.status, "default");
    assert_eq!(record.sources[0].action.as_deref(), Some("default"));
    assert_eq!(record.actions[0].action, ActionKind::Default);
}

#[tokio::test]
async fn a_source_that_is_not_registered_escalates() {
    let s = setup(|b| b);
    let outcome = call(&s, &ESCALATES).await.unwrap();
    match &outcome.resolution {
        Resolution::Escalated(e) => {
            assert_eq!(e.class, FailureClass::ContextUnavailable);
            assert!(
                e.reason.contains("no source `kb` is registered"),
                "{}",
                e.reason
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        outcome.report.sources[0].fetches[0].failure.as_deref(),
        Some("not_registered")
    );
    assert_eq!(s.records.last().outcome.status, "escalated");
}

#[tokio::test]
async fn the_tasks_own_contract_covers_every_source_and_order_is_declaration_order() {
    let s = setup(|b| {
        b.source(
            "profile",
            source_fn(|_| async {
                // Answers after `kb` would: order must not depend on who answers first.
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(vec![doc("tier", 1.0, "Gold customer.")])
            }),
        )
        .source("kb", kb())
    });
    let outcome = call(&s, &TASK_LEVEL).await.unwrap();
    let sent = &s.model.requests()[0].messages;
    assert!(sent[0].content.starts_with("kb:"), "{}", sent[0].content);
    assert!(
        sent[1].content.starts_with("profile:"),
        "{}",
        sent[1].content
    );
    let names: Vec<&str> = outcome
        .report
        .sources
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["kb", "profile"]);

    let s = setup(|b| {
        b.source("kb", kb())
            .source("profile", failing("profile service down"))
    });
    let outcome = call(&s, &TASK_LEVEL).await.unwrap();
    assert!(matches!(outcome.resolution, Resolution::Answer(_)));
    assert_eq!(outcome.report.sources[1].action.as_deref(), Some("proceed"));
    assert_eq!(s.model.requests()[0].messages.len(), 2);
}

#[test]
fn sources_are_in_the_contract_and_its_doc() {
    assert_eq!(
        FALLS_BACK.applicable_classes().last(),
        Some(FailureClass::ContextUnavailable)
    );
    let doc = FALLS_BACK.doc().to_string();
    assert!(
        doc.contains("| `kb` | 200 | 2 | 2s | `docs` | `fallback(\"kb_mirror\").then(fail)` |"),
        "{doc}"
    );
    let json = FALLS_BACK.to_json();
    assert_eq!(json["sources"][0]["name"], "kb");
    assert_eq!(
        json["sources"][0]["on_unavailable"][0]["action"],
        "fallback_source"
    );
    // Sources make no provider attempt: max attempts ignore the source contract's retries.
    assert_eq!(RETRIED.max_attempts(), 1);

    // The registry export lists them, with the steps in force and whose they are.
    let exported = harness_core::registry::TaskDoc::of(&FALLS_BACK);
    let kb = &exported.sources[0];
    assert_eq!(
        (kb.name.as_str(), kb.budget, kb.limit, kb.timeout_ms),
        ("kb", 200, 2, 2000)
    );
    assert_eq!(kb.declared_by, "source");
    assert_eq!(kb.on_unavailable[0].source.as_deref(), Some("kb_mirror"));
    let task_level = harness_core::registry::TaskDoc::of(&TASK_LEVEL);
    assert_eq!(task_level.sources[1].declared_by, "task");
    assert_eq!(task_level.sources[1].on_unavailable[0].action, "proceed");
    let json = serde_json::to_value(&exported).unwrap();
    assert!(
        json["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["class"] == "context_unavailable"),
        "{json}"
    );
}
