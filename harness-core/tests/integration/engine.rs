//! Engine tests: each contract action proven against the scripted provider, with tokio's paused
//! clock for everything time-dependent. Contracts are written by hand (no macros) so that the engine
//! is tested on its own.

use std::time::Duration;

use harness_core::contract::{
    Action, Backoff, Chain, FailureClass, FallbackTarget, InputSpec, TaskContract,
};
use harness_core::output::{FieldPath, LlmOutput, ValidationErrors};
use harness_core::provider::scripted::{Scripted, Step};
use harness_core::provider::{ChatResponse, FinishReason, ProviderError, Role};
use harness_core::testing::fixtures::{ContractBuilder, output};
use harness_core::{ErrorKind, Harness, Resolution};

#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
struct Verdict {
    label: String,
    confidence: f64,
}

impl LlmOutput for Verdict {
    const TYPE_NAME: &'static str = "Verdict";
    const HAS_CONFIDENCE: bool = true;

    fn validate(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        if !(0.0..=1.0).contains(&self.confidence) {
            errors.push(
                &path.field("confidence"),
                "range",
                format!("must be between 0 and 1, got {}", self.confidence),
            );
        }
        if !["yes", "no"].contains(&self.label.as_str()) {
            errors.push(
                &path.field("label"),
                "one_of",
                format!("must be one of \"yes\", \"no\"; got {:?}", self.label),
            );
        }
    }

    fn confidence(&self) -> Option<f64> {
        Some(self.confidence)
    }
}

const NO_BACKOFF_JITTER: Backoff = Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_secs(1),
    multiplier: 2.0,
    jitter: false,
};

const fn contract(
    chains: &'static [Chain],
    timeout: Duration,
    deadline: Option<Duration>,
) -> TaskContract {
    let builder = ContractBuilder::new("judge", output::<Verdict>())
        .module("engine_tests")
        .description("Judges a claim.")
        .model(Some("primary"))
        .system("You judge claims.")
        .prompt("Claim: {claim}")
        .inputs(&[InputSpec {
            name: "claim",
            rust_type: "&str",
        }])
        .timeout(timeout)
        .chains(chains)
        .low_confidence_below(0.7)
        .params(Some(0.0), None, Some(7));
    match deadline {
        Some(deadline) => builder.deadline(deadline).build(),
        None => builder.build(),
    }
}

static STANDARD: TaskContract = contract(
    &[
        Chain {
            class: FailureClass::Timeout,
            steps: &[
                Action::Retry {
                    times: 2,
                    backoff: NO_BACKOFF_JITTER,
                },
                Action::Default,
            ],
        },
        Chain {
            class: FailureClass::RateLimited,
            steps: &[Action::Retry {
                times: 3,
                backoff: NO_BACKOFF_JITTER,
            }],
        },
        Chain {
            class: FailureClass::ProviderError,
            steps: &[
                Action::Retry {
                    times: 2,
                    backoff: NO_BACKOFF_JITTER,
                },
                Action::Fallback(FallbackTarget {
                    model: "backup",
                    provider: Some("secondary"),
                }),
            ],
        },
        Chain {
            class: FailureClass::InvalidOutput,
            steps: &[Action::Reask { times: 2 }, Action::Fail],
        },
        Chain {
            class: FailureClass::Refusal,
            steps: &[Action::Escalate],
        },
        Chain {
            class: FailureClass::LowConfidence,
            steps: &[Action::Reask { times: 1 }, Action::Escalate],
        },
    ],
    Duration::from_secs(5),
    None,
);

const GOOD: &str = r#"{"label": "yes", "confidence": 0.9}"#;

fn harness(primary: &Scripted) -> Harness {
    Harness::builder()
        .provider("primary", primary.clone())
        .seed(1)
        .build()
        .unwrap()
}

fn inputs() -> Vec<(&'static str, String)> {
    vec![("claim", "water is wet".to_owned())]
}

fn default_verdict(class: FailureClass) -> Option<Verdict> {
    (class == FailureClass::Timeout).then(|| Verdict {
        label: "no".into(),
        confidence: 0.0,
    })
}

#[tokio::test(start_paused = true)]
async fn first_try_answer_is_typed_and_reported() {
    let p = Scripted::new().reply(GOOD);
    let out = harness(&p)
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert!(out.is_answer());
    assert_eq!(out.value().unwrap().label, "yes");
    assert_eq!(out.summary(), "first try");
    assert_eq!(out.report.attempts.len(), 1);
    assert!(!out.report.fingerprint.is_empty());
    let req = &p.requests()[0];
    assert_eq!(req.model, "primary");
    assert_eq!(req.seed, Some(7));
    assert_eq!(req.messages[0].role, Role::System);
    assert_eq!(
        req.messages[0].content, "You judge claims.",
        "the schema travels in response_format, not in the messages"
    );
    // What a provider that cannot have the server enforce the schema adds to the system message.
    let instruction = req.response_format.instruction().unwrap();
    assert!(instruction.contains("confidence: number"), "{instruction}");
    let prompted = req.prompted_messages();
    assert_eq!(
        prompted[0].content,
        format!("You judge claims.\n\n{instruction}")
    );
    assert_eq!(req.messages[1].content, "Claim: water is wet");
}

#[tokio::test(start_paused = true)]
async fn reask_feeds_the_validation_errors_back() {
    let p = Scripted::new()
        .reply(r#"{"label": "maybe", "confidence": 1.5}"#)
        .reply(GOOD);
    let out = harness(&p)
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert!(out.is_answer());
    assert_eq!(out.provenance.reasks, 1);
    assert_eq!(out.summary(), "after 1 reask");
    let second = &p.requests()[1];
    let n = second.messages.len();
    assert_eq!(second.messages[n - 2].role, Role::Assistant);
    assert!(second.messages[n - 2].content.contains("maybe"));
    let feedback = &second.messages[n - 1].content;
    assert!(
        feedback.contains("`confidence`") && feedback.contains("got 1.5"),
        "{feedback}"
    );
    assert!(
        feedback.contains("`label`") && feedback.contains("maybe"),
        "{feedback}"
    );
}

#[tokio::test(start_paused = true)]
async fn exhausted_reasks_fail_with_the_last_output() {
    let p = Scripted::new().then_always(Step::Respond(Scripted::response("not json at all")));
    let err = harness(&p)
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidOutput);
    assert_eq!(err.attempts().len(), 3, "the first attempt and two reasks");
    assert_eq!(err.last_raw(), Some("not json at all"));
    assert!(
        err.usage().output_tokens > 0,
        "usage of failed attempts is billed"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_provider_errors_with_backoff() {
    let p = Scripted::new()
        .error(ProviderError::Status {
            status: 503,
            message: "busy".into(),
        })
        .error(ProviderError::Status {
            status: 502,
            message: "bad gateway".into(),
        })
        .reply(GOOD);
    let start = tokio::time::Instant::now();
    let out = harness(&p)
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert!(out.is_answer());
    assert_eq!(out.provenance.retries, 2);
    // 100 ms then 200 ms, no jitter.
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn falls_back_after_retries_are_spent() {
    let primary = Scripted::new().then_always(Step::Fail(ProviderError::Status {
        status: 500,
        message: "down".into(),
    }));
    let secondary = Scripted::named("secondary").reply(GOOD);
    let h = Harness::builder()
        .provider("primary", primary.clone())
        .provider("secondary", secondary.clone())
        .build()
        .unwrap();
    let out = h
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert!(out.is_answer());
    assert!(out.provenance.fallback);
    assert_eq!(out.provenance.model, "backup");
    assert_eq!(primary.requests().len(), 3);
    assert_eq!(secondary.requests()[0].model, "backup");
    assert_eq!(out.summary(), "from fallback model backup after 2 retries");
}

#[tokio::test(start_paused = true)]
async fn refusal_escalates_and_is_not_a_value() {
    let p = Scripted::new().reply("I'm sorry, but I can't help with that.");
    let out = harness(&p)
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert!(out.is_escalated());
    assert!(out.value().is_none());
    match out.resolution {
        Resolution::Escalated(e) => {
            assert_eq!(e.class, FailureClass::Refusal);
            assert!(e.last_raw.unwrap().contains("can't help"));
        }
        other => panic!("expected an escalation, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn content_filter_is_a_refusal() {
    let p = Scripted::new().respond(ChatResponse {
        finish_reason: Some(FinishReason::ContentFilter),
        ..Scripted::response("")
    });
    let out = harness(&p)
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert!(out.is_escalated());
}

#[tokio::test(start_paused = true)]
async fn low_confidence_reasks_then_escalates_with_the_candidate() {
    let p = Scripted::new()
        .reply(r#"{"label": "yes", "confidence": 0.4}"#)
        .reply(r#"{"label": "no", "confidence": 0.5}"#);
    let out = harness(&p)
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    let Resolution::Escalated(e) = out.resolution else {
        panic!("expected escalation")
    };
    assert_eq!(e.class, FailureClass::LowConfidence);
    assert_eq!(e.candidate.unwrap().label, "no");
    let feedback = p.requests()[1].messages.last().unwrap().content.clone();
    assert!(
        feedback.contains("0.4") && feedback.contains("0.7"),
        "{feedback}"
    );
}

#[tokio::test(start_paused = true)]
async fn timeouts_retry_then_take_the_default() {
    let p = Scripted::new().then_always(Step::Delay(
        Duration::from_secs(60),
        Box::new(Step::Respond(Scripted::response(GOOD))),
    ));
    let start = tokio::time::Instant::now();
    let out = harness(&p)
        .run::<Verdict>(&STANDARD, inputs(), None, Some(&default_verdict))
        .await
        .unwrap();
    match out.resolution {
        Resolution::Default { value, class } => {
            assert_eq!(class, FailureClass::Timeout);
            assert_eq!(value.label, "no");
        }
        other => panic!("expected the default, got {other:?}"),
    }
    assert_eq!(p.requests().len(), 3);
    // Three 5 s attempts and 100 + 200 ms of backoff.
    assert_eq!(start.elapsed(), Duration::from_millis(15_300));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_never_overrun() {
    static TIGHT: TaskContract = contract(
        &[
            Chain {
                class: FailureClass::Timeout,
                steps: &[Action::Retry {
                    times: 10,
                    backoff: NO_BACKOFF_JITTER,
                }],
            },
            Chain {
                class: FailureClass::RateLimited,
                steps: &[Action::Fail],
            },
            Chain {
                class: FailureClass::ProviderError,
                steps: &[Action::Fail],
            },
            Chain {
                class: FailureClass::InvalidOutput,
                steps: &[Action::Fail],
            },
            Chain {
                class: FailureClass::Refusal,
                steps: &[Action::Fail],
            },
            Chain {
                class: FailureClass::LowConfidence,
                steps: &[Action::Fail],
            },
        ],
        Duration::from_secs(1),
        Some(Duration::from_millis(2_500)),
    );
    let p = Scripted::new().then_always(Step::Delay(
        Duration::from_secs(60),
        Box::new(Step::Respond(Scripted::response(GOOD))),
    ));
    let start = tokio::time::Instant::now();
    let err = harness(&p)
        .run::<Verdict>(&TIGHT, inputs(), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        start.elapsed() <= Duration::from_millis(2_500),
        "{:?}",
        start.elapsed()
    );
    assert!(err.attempts().len() <= 3);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_skip_retries() {
    let primary = Scripted::new().error(ProviderError::Status {
        status: 401,
        message: "bad key".into(),
    });
    let secondary = Scripted::named("secondary").reply(GOOD);
    let h = Harness::builder()
        .provider("primary", primary.clone())
        .provider("secondary", secondary)
        .build()
        .unwrap();
    let out = h
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert_eq!(primary.requests().len(), 1, "a 401 is not retried");
    assert!(out.provenance.fallback);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let p = Scripted::new()
        .error(ProviderError::RateLimited {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
        })
        .reply(GOOD);
    let start = tokio::time::Instant::now();
    let out = harness(&p)
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert!(out.is_answer());
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_failure_of_another_class_uses_its_own_chain() {
    // invalid → reask; then 503 → retry; then valid. Each class keeps its own counter.
    let p = Scripted::new()
        .reply("{}")
        .error(ProviderError::Status {
            status: 503,
            message: "busy".into(),
        })
        .reply(GOOD);
    let out = harness(&p)
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert_eq!((out.provenance.reasks, out.provenance.retries), (1, 1));
    // The retry re-sends the reask request, so the model still sees what was wrong.
    let third = &p.requests()[2];
    assert!(
        third
            .messages
            .last()
            .unwrap()
            .content
            .contains("could not be accepted")
    );
}

#[tokio::test(start_paused = true)]
async fn missing_provider_is_a_config_error() {
    let h = Harness::builder().build().unwrap();
    let err = h
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.attempts().is_empty());
}

#[test]
fn max_attempts_and_deadline_are_derived_from_the_contract() {
    // 1 + timeout 2 + rate 3 + provider (2 + 1) + invalid 2 + low confidence 1
    assert_eq!(STANDARD.max_attempts(), 12);
    assert!(STANDARD.effective_deadline() >= Duration::from_secs(60));
    let doc = STANDARD.doc().to_string();
    assert!(
        doc.contains("| invalid_output | `reask(2).then(fail)` |"),
        "{doc}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_goes_straight_to_the_fallback_without_touching_the_provider() {
    use harness_core::recovery::{BreakerConfig, BreakerState, RecoveryConfig};
    let primary = Scripted::new().then_always(Step::Fail(ProviderError::Status {
        status: 500,
        message: "down".into(),
    }));
    let secondary =
        Scripted::named("secondary").then_always(Step::Respond(Scripted::response(GOOD)));
    let config = RecoveryConfig {
        breaker: Some(BreakerConfig {
            min_calls: 3,
            failure_rate: 0.5,
            ..BreakerConfig::default()
        }),
        ..RecoveryConfig::default()
    };
    let h = Harness::builder()
        .provider("primary", primary.clone())
        .provider("secondary", secondary.clone())
        .recovery(config)
        .build()
        .unwrap();
    // The first call fails three times on the primary (1 + 2 retries): the breaker opens.
    let first = h
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert!(first.provenance.fallback);
    assert_eq!(primary.requests().len(), 3);
    assert_eq!(
        h.recovery().breaker_state("primary", "primary"),
        Some(BreakerState::Open)
    );
    // The next call is refused by the breaker: no request reaches the primary, no retries are
    // spent on it, and the contract's fallback answers.
    let second = h
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert_eq!(primary.requests().len(), 3, "an open breaker sends nothing");
    assert!(second.provenance.fallback);
    assert_eq!(second.report.attempts.len(), 2);
    assert!(
        second.report.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("circuit breaker")
    );
}

#[tokio::test(start_paused = true)]
async fn a_spent_retry_budget_skips_retries() {
    use harness_core::recovery::{BudgetConfig, RecoveryConfig};
    let primary = Scripted::new().then_always(Step::Fail(ProviderError::Status {
        status: 503,
        message: "busy".into(),
    }));
    let secondary =
        Scripted::named("secondary").then_always(Step::Respond(Scripted::response(GOOD)));
    let config = RecoveryConfig {
        breaker: None,
        budget: Some(BudgetConfig {
            ttl: Duration::from_secs(10),
            retry_ratio: 0.0,
            min_per_sec: 0,
        }),
        ..RecoveryConfig::default()
    };
    let h = Harness::builder()
        .provider("primary", primary.clone())
        .provider("secondary", secondary)
        .recovery(config)
        .build()
        .unwrap();
    let out = h
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap();
    assert_eq!(primary.requests().len(), 1, "no budget, no retry");
    assert_eq!(out.provenance.retries, 0);
    assert!(out.provenance.fallback);
}

/// An output type whose schema is broken (a hand-written impl can produce one).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Broken {
    #[allow(dead_code)] // Read by serde only.
    x: u8,
}

impl LlmOutput for Broken {
    const TYPE_NAME: &'static str = "Broken";
    const HAS_CONFIDENCE: bool = false;

    fn output_schema() -> serde_json::Value {
        serde_json::json!({"type": "object", "properties": {"x": {"type": 12}}})
    }

    fn validate(&self, _: &FieldPath, _: &mut ValidationErrors) {}
}

#[tokio::test(start_paused = true)]
async fn a_schema_that_cannot_compile_is_a_typed_config_error_and_sends_nothing() {
    let p = Scripted::new().reply(r#"{"x": 1}"#);
    let err = harness(&p)
        .run::<Broken>(&STANDARD, inputs(), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("`Broken`"), "{}", err.message());
    assert!(p.requests().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_call_that_cannot_start_still_reaches_the_observers() {
    use harness_core::engine::{CallEnd, EndStatus, Observer};
    use std::sync::{Arc, Mutex};

    /// How each call ended, and why.
    type Ends = Vec<(EndStatus, Option<String>)>;
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Ends>>);
    impl Observer for Seen {
        fn on_call_end(&self, call: &CallEnd<'_>) {
            self.0
                .lock()
                .unwrap()
                .push((call.status, call.reason.map(str::to_owned)));
        }
    }

    let seen = Seen::default();
    // No provider is registered: the call cannot start, and the audit trail must still hear of it.
    let h = Harness::builder().observer(seen.clone()).build().unwrap();
    let err = h
        .run::<Verdict>(&STANDARD, inputs(), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let seen = seen.0.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, EndStatus::Failed(ErrorKind::Config));
    assert!(
        seen[0].1.as_deref().unwrap().contains("no provider"),
        "{:?}",
        seen[0].1
    );
}

#[test]
fn end_status_parts_spell_its_serialized_form() {
    use harness_core::observe::EndStatus;
    let all = [
        EndStatus::Answer,
        EndStatus::Default(FailureClass::Timeout),
        EndStatus::Escalated(FailureClass::LowConfidence),
        EndStatus::Failed(ErrorKind::Config),
        EndStatus::Failed(ErrorKind::InvalidOutput),
    ];
    for status in all {
        let v = serde_json::to_value(status).unwrap();
        let (name, class) = status.parts();
        assert_eq!(v["status"].as_str(), Some(name), "{v}");
        assert_eq!(v.get("class").and_then(|c| c.as_str()), class, "{v}");
    }
}
