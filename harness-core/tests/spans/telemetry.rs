//! Spans carry the GenAI attributes; content only when asked; metrics count what happened; costs
//! add up. Spans are captured in-process with a `tracing_subscriber` layer; metrics come from
//! real calls through the engine with a scripted provider.

use std::time::Duration;

use harness_core::contract::{Action, FallbackTarget, TaskContract};
use harness_core::provider::{FinishReason, ProviderInfo, ResponseFormat};
use harness_core::telemetry::pricing::{Price, PriceTable};
use harness_core::telemetry::{self, Metrics, TelemetryConfig, names};
use harness_core::testing::fixtures::{
    Capture, CapturedSpan as Captured, ContractBuilder, FieldValue as V, Label, NO_WAIT, Queue,
    chain, local_info, output, retry, subscriber_turn,
};
use harness_core::{
    ChatRequest, ChatResponse, FailureClass, Harness, Message, ProviderError, Usage,
    ValidationErrors,
};

/// Runs `f` with a capturing subscriber and returns the spans it made.
fn capture(f: impl FnOnce()) -> Vec<Captured> {
    Capture::spans_of(f)
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

fn info() -> ProviderInfo {
    local_info()
}

const SECRET_PROMPT: &str = "Review: my card number is 4111 1111 1111 1111";
const SECRET_ANSWER: &str = "{\"label\":\"negative\",\"note\":\"card 4111\"}";

fn request() -> ChatRequest {
    ChatRequest {
        model: "smollm2-135m".into(),
        messages: vec![
            Message::system("You classify customer reviews."),
            Message::user(SECRET_PROMPT),
        ],
        response_format: ResponseFormat::json_schema(
            "Sentiment",
            serde_json::json!({"type": "object"}),
        ),
        temperature: Some(0.25),
        max_tokens: Some(256),
        seed: Some(7),
        ..Default::default()
    }
}

fn response() -> ChatResponse {
    ChatResponse {
        content: SECRET_ANSWER.into(),
        refusal: None,
        finish_reason: Some(FinishReason::Stop),
        model: Some("smollm2-135m-instruct".into()),
        id: Some("chatcmpl-42".into()),
        usage: Usage::new(120, 30),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Spans.

#[test]
fn attempt_span_is_a_client_span_with_request_attributes() {
    let _turn = subscriber_turn().blocking_lock();
    let spans = capture(|| {
        let span = telemetry::attempt_span(&info(), &request());
        telemetry::record_response(&span, &response());
    });
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(s.name, names::SPAN_ATTEMPT);
    assert_eq!(s.str(names::OTEL_NAME), Some("chat smollm2-135m"));
    assert_eq!(s.str(names::OTEL_KIND), Some("client"));
    assert_eq!(s.str(names::GEN_AI_OPERATION_NAME), Some("chat"));
    assert_eq!(s.str(names::GEN_AI_PROVIDER_NAME), Some("openai"));
    assert_eq!(s.str(names::GEN_AI_REQUEST_MODEL), Some("smollm2-135m"));
    assert_eq!(s.str(names::GEN_AI_OUTPUT_TYPE), Some("json"));
    assert_eq!(
        s.fields.get(names::GEN_AI_REQUEST_TEMPERATURE),
        Some(&V::F64(0.25))
    );
    assert_eq!(s.int(names::GEN_AI_REQUEST_MAX_TOKENS), Some(256));
    assert_eq!(s.int(names::GEN_AI_REQUEST_SEED), Some(7));
    assert_eq!(s.str(names::SERVER_ADDRESS), Some("127.0.0.1"));
    assert_eq!(s.int(names::SERVER_PORT), Some(8089));
    // Response attributes.
    assert_eq!(
        s.str(names::GEN_AI_RESPONSE_MODEL),
        Some("smollm2-135m-instruct")
    );
    assert_eq!(s.str(names::GEN_AI_RESPONSE_ID), Some("chatcmpl-42"));
    assert_eq!(s.str(names::GEN_AI_RESPONSE_FINISH_REASONS), Some("stop"));
    assert_eq!(s.int(names::GEN_AI_USAGE_INPUT_TOKENS), Some(120));
    assert_eq!(s.int(names::GEN_AI_USAGE_OUTPUT_TOKENS), Some(30));
    // Integers go out as i64, which tracing-opentelemetry exports as integers.
    assert!(matches!(
        s.fields.get(names::GEN_AI_USAGE_INPUT_TOKENS),
        Some(V::I64(_))
    ));
    assert!(!s.fields.contains_key(names::ERROR_TYPE));
    assert!(s.rerecorded.is_empty(), "{:?}", s.rerecorded);
}

#[test]
fn failed_attempts_carry_error_type() {
    let _turn = subscriber_turn().blocking_lock();
    let spans = capture(|| {
        let a = telemetry::attempt_span(&info(), &request());
        telemetry::record_error(
            &a,
            &ProviderError::RateLimited {
                status: 429,
                retry_after: Some(Duration::from_secs(2)),
            },
        );
        let b = telemetry::attempt_span(&info(), &request());
        telemetry::record_error(&b, &ProviderError::Timeout(Duration::from_secs(20)));
        let c = telemetry::attempt_span(&info(), &request());
        telemetry::record_response(&c, &response());
        let mut judged = attempt("smollm2-135m", None, 120, 30);
        judged.n = 2;
        judged.kind = harness_core::outcome::AttemptKind::Reask;
        judged.failure = Some(FailureClass::InvalidOutput);
        telemetry::record_attempt(&c, &judged);
        // A provider error's class is recorded once, by record_error, not again by record_attempt.
        judged.failure = Some(FailureClass::Timeout);
        telemetry::record_attempt(&b, &judged);
    });
    let [a, b, c] = &spans[..] else {
        panic!("three spans expected: {spans:?}")
    };
    assert_eq!(a.str(names::ERROR_TYPE), Some("rate_limited"));
    assert_eq!(a.int(names::HTTP_RESPONSE_STATUS_CODE), Some(429));
    assert_eq!(a.str(names::HARNESS_ERROR_KIND), Some("rate_limited"));
    assert!(
        a.str(names::OTEL_STATUS_DESCRIPTION)
            .is_some_and(|d| d.contains("HTTP 429"))
    );
    assert_eq!(b.str(names::ERROR_TYPE), Some("timeout"));
    assert_eq!(b.int(names::HTTP_RESPONSE_STATUS_CODE), None);
    assert_eq!(c.str(names::ERROR_TYPE), Some("invalid_output"));
    assert_eq!(c.str(names::OTEL_STATUS_CODE), Some("error"));
    assert_eq!(c.int(names::HARNESS_ATTEMPT_NUMBER), Some(2));
    assert_eq!(c.str(names::HARNESS_ATTEMPT_KIND), Some("reask"));
    assert_eq!(
        a.str(names::OTEL_STATUS_DESCRIPTION),
        Some("rate_limited: HTTP 429 Too Many Requests, retry after 2s")
    );
    assert_eq!(
        b.str(names::OTEL_STATUS_DESCRIPTION),
        Some("timeout: no answer within 20s")
    );
    assert_eq!(
        c.str(names::OTEL_STATUS_DESCRIPTION),
        Some("invalid_output: the answer is not valid JSON for the schema")
    );
    for s in &spans {
        assert!(s.rerecorded.is_empty(), "{:?}", s.rerecorded);
    }
}

/// A provider's own message can echo the request (and a connection error the URL, with its
/// query): the status description says what harness knows, never what the provider said.
#[test]
fn status_descriptions_never_carry_the_providers_words() {
    let _turn = subscriber_turn().blocking_lock();
    let secret = "sk-live-123 my prompt text";
    let errors = [
        ProviderError::Status {
            status: 400,
            message: format!("invalid request: {secret}"),
        },
        ProviderError::Connection(format!("https://host/v1?key={secret}")),
        ProviderError::InvalidResponse(format!("expected JSON near `{secret}`")),
        ProviderError::Config(format!("bad key {secret}")),
        ProviderError::CircuitOpen(format!("local/{secret}")),
    ];
    let spans = capture(|| {
        for e in &errors {
            let a = telemetry::attempt_span(&info(), &request());
            telemetry::record_error(&a, e);
        }
    });
    let described: Vec<&str> = spans
        .iter()
        .map(|s| s.str(names::OTEL_STATUS_DESCRIPTION).expect("described"))
        .collect();
    assert_eq!(
        described,
        [
            "provider_error: HTTP 400 Bad Request",
            "provider_error: the connection failed",
            "provider_error: the response could not be read",
            "provider_error: the provider is misconfigured, not sent",
            "provider_error: the circuit breaker is open, not sent",
        ]
    );
    assert!(
        !all_text(&spans).contains("sk-live"),
        "{}",
        all_text(&spans)
    );
}

fn all_text(spans: &[Captured]) -> String {
    spans
        .iter()
        .flat_map(|s| s.fields.values())
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn content_is_absent_unless_opted_in() {
    let _turn = subscriber_turn().blocking_lock();
    let spans = capture(|| {
        let span = telemetry::attempt_span(&info(), &request());
        telemetry::record_response(&span, &response());
        let span = TelemetryConfig::default().attempt_span(&info(), &request());
        telemetry::record_response(&span, &response());
    });
    assert_eq!(spans.len(), 2);
    for s in &spans {
        for field in [
            names::GEN_AI_INPUT_MESSAGES,
            names::GEN_AI_OUTPUT_MESSAGES,
            names::GEN_AI_SYSTEM_INSTRUCTIONS,
        ] {
            assert!(!s.declared.contains(&field), "{field} declared");
            assert!(!s.fields.contains_key(field), "{field} recorded");
        }
    }
    let text = all_text(&spans);
    assert!(!text.contains("4111"), "content leaked: {text}");
    assert!(!text.contains("classify customer reviews"));
}

#[test]
fn content_is_recorded_when_opted_in() {
    let _turn = subscriber_turn().blocking_lock();
    let spans = capture(|| {
        let span = TelemetryConfig::with_content().attempt_span(&info(), &request());
        telemetry::record_response(&span, &response());
    });
    let s = &spans[0];
    let system: serde_json::Value =
        serde_json::from_str(s.str(names::GEN_AI_SYSTEM_INSTRUCTIONS).unwrap()).unwrap();
    assert_eq!(system[0]["content"], "You classify customer reviews.");
    let input: serde_json::Value =
        serde_json::from_str(s.str(names::GEN_AI_INPUT_MESSAGES).unwrap()).unwrap();
    assert_eq!(
        input.as_array().unwrap().len(),
        1,
        "system is not an input message"
    );
    assert_eq!(input[0]["role"], "user");
    assert_eq!(input[0]["parts"][0]["content"], SECRET_PROMPT);
    let output: serde_json::Value =
        serde_json::from_str(s.str(names::GEN_AI_OUTPUT_MESSAGES).unwrap()).unwrap();
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(output[0]["parts"][0]["content"], SECRET_ANSWER);
    assert_eq!(output[0]["finish_reason"], "stop");
}

#[test]
fn helpers_work_without_a_subscriber() {
    let _turn = subscriber_turn().blocking_lock();
    // No subscriber on this thread (other tests' scoped ones may have cached callsite interest,
    // so the span may or may not be disabled): recording must be harmless either way.
    let span = telemetry::attempt_span(&info(), &request());
    telemetry::record_response(&span, &response());
    telemetry::record_error(&span, &ProviderError::Connection("refused".into()));
}

// ---------------------------------------------------------------------------------------------
// A task run through the real engine, with a scripted provider.

static CLASSIFY: TaskContract = ContractBuilder::new("classify", output::<Label>())
    .module("tests::telemetry")
    .description("Classifies a review.")
    .version("v1")
    .model(Some("smollm2-135m"))
    .system("You classify reviews.")
    .prompt("Review: {review}")
    .chains(&[
        chain(FailureClass::Timeout, &[retry(1, NO_WAIT)]),
        chain(FailureClass::RateLimited, &[Action::Fail]),
        chain(
            FailureClass::ProviderError,
            &[
                retry(1, NO_WAIT),
                Action::Fallback(FallbackTarget {
                    model: "big-model",
                    provider: None,
                }),
            ],
        ),
        chain(
            FailureClass::InvalidOutput,
            &[Action::Reask { times: 1 }, Action::Fail],
        ),
        chain(FailureClass::Refusal, &[Action::Escalate]),
    ])
    .build();

async fn classify(harness: &Harness) -> Result<String, String> {
    harness
        .run::<Label>(&CLASSIFY, vec![("review", "fine".into())], None, None)
        .await
        .map(|o| o.summary())
        .map_err(|e| e.to_string())
}

/// Prices for models the built-in table does not know, so the reports carry no cost of their
/// own and `Metrics` prices them.
fn prices() -> PriceTable {
    PriceTable::empty()
        .with("smollm2-135m", Price::per_million(1.0, 2.0))
        .with("big-model", Price::per_million(10.0, 20.0))
}

/// A harness over a scripted provider, observed by `Metrics` with [`prices`].
fn metered() -> (Harness, Queue, Metrics) {
    let script = Queue::default();
    let metrics = Metrics::with_prices(prices());
    let harness = Harness::builder()
        .provider("local", script.clone())
        .observer(metrics.clone())
        .build()
        .unwrap();
    (harness, script, metrics)
}

#[tokio::test]
async fn metrics_count_calls_attempts_and_actions() {
    let _turn = subscriber_turn().lock().await;
    let (harness, script, metrics) = metered();

    // 1. First try.
    script.push_ok(r#"{"label":"positive"}"#, "smollm2-135m", 100, 10);
    assert_eq!(classify(&harness).await.unwrap(), "first try");
    // 2. Invalid output, one reask, then valid.
    script
        .push_ok(r#"{"label":"meh"}"#, "smollm2-135m", 100, 10)
        .push_ok(r#"{"label":"negative"}"#, "smollm2-135m", 150, 10);
    assert_eq!(classify(&harness).await.unwrap(), "after 1 reask");
    // 3. A 503, a retry, another 503, a fallback that answers.
    let unavailable = || ProviderError::Status {
        status: 503,
        message: "overloaded".into(),
    };
    script
        .push_err(unavailable())
        .push_err(unavailable())
        .push_ok(r#"{"label":"positive"}"#, "big-model", 1000, 100);
    assert!(classify(&harness).await.unwrap().contains("fallback"));
    // 4. A refusal: escalated.
    script.push_ok(
        "I'm sorry, but I can't help with that.",
        "smollm2-135m",
        50,
        12,
    );
    assert_eq!(classify(&harness).await.unwrap(), "escalated after refusal");
    // 5. Rate limited: fails.
    script.push_err(ProviderError::RateLimited {
        status: 429,
        retry_after: None,
    });
    assert!(classify(&harness).await.is_err());

    let snap = metrics.snapshot();
    let t = snap.task("classify").expect("task counted");
    assert_eq!(t.calls, 5);
    assert_eq!(t.answers, 3);
    assert_eq!(t.first_try_answers, 1);
    assert_eq!(t.escalated, 1);
    assert_eq!(t.failed, 1);
    assert_eq!(t.defaults, 0);
    assert_eq!(t.attempts, 1 + 2 + 3 + 1 + 1);
    assert_eq!(t.pass_rate(), Some(3.0 / 5.0));
    assert_eq!(snap.pass_rates()["classify"], 0.6);
    assert_eq!(t.failures_of(FailureClass::InvalidOutput), 1);
    assert_eq!(t.failures_of(FailureClass::ProviderError), 2);
    assert_eq!(t.failures_of(FailureClass::Refusal), 1);
    assert_eq!(t.failures_of(FailureClass::RateLimited), 1);
    assert_eq!(t.failures_of(FailureClass::Timeout), 0);
    assert_eq!(t.reasks.get(&FailureClass::InvalidOutput), Some(&1));
    assert_eq!(t.retries.get(&FailureClass::ProviderError), Some(&1));
    assert_eq!(t.fallbacks.get(&FailureClass::ProviderError), Some(&1));
    assert_eq!(t.escalations.get(&FailureClass::Refusal), Some(&1));
    assert_eq!(t.attempts_per_call.count, 5);
    assert_eq!(t.input_tokens, 100 + 250 + 1000 + 50);
    assert_eq!(t.output_tokens, 10 + 20 + 100 + 12);
    // Costs: every call is priced (the 429 billed nothing).
    assert_eq!(t.priced_calls, 5);
    let expected = (400.0 * 1.0 + 42.0 * 2.0 + 1000.0 * 10.0 + 100.0 * 20.0) / 1e6;
    let cost = t.cost_usd.expect("every call priced");
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    assert_eq!(t.unpriced_calls, 0);
    assert_eq!(t.cost_display(), format!("${expected:.6}"));

    // Per-model attempt metrics, under the name the provider was registered with.
    let small = snap.model("local", "smollm2-135m").expect("model counted");
    assert_eq!(small.attempts, 1 + 2 + 2 + 1 + 1);
    assert_eq!(small.duration.count, small.attempts);
    assert_eq!(small.errors.get("provider_error"), Some(&2));
    assert_eq!(
        small.input_tokens.count, 4,
        "only attempts that billed tokens"
    );
    let big = snap.model("local", "big-model").unwrap();
    assert_eq!(big.attempts, 1);
    // 1000 input tokens fall in the (256, 1024] bucket: index 5.
    assert_eq!(big.input_tokens.counts[5], 1);
    assert_eq!(big.input_tokens.bounds, &names::TOKEN_BUCKETS);

    // Clones share counts; reset clears them.
    let other = metrics.clone();
    other.reset();
    assert!(metrics.snapshot().tasks.is_empty());
}

#[tokio::test]
async fn unknown_prices_leave_cost_unknown() {
    let _turn = subscriber_turn().lock().await;
    let script = Queue::default();
    let metrics = Metrics::with_prices(PriceTable::empty());
    let harness = Harness::builder()
        .provider("local", script.clone())
        .observer(metrics.clone())
        .build()
        .unwrap();
    script.push_ok(r#"{"label":"positive"}"#, "smollm2-135m", 100, 10);
    classify(&harness).await.unwrap();
    let snap = metrics.snapshot();
    let t = snap.task("classify").unwrap();
    assert_eq!(t.priced_calls, 0);
    // Unknown, not 0: nothing priced, one call counted apart, and said so.
    assert_eq!(t.cost_usd, None);
    assert_eq!(t.unpriced_calls, 1);
    assert_eq!(t.cost_display(), "unknown");
    let json = serde_json::to_value(&snap).unwrap();
    assert_eq!(
        json["tasks"]["classify"]["cost_usd"],
        serde_json::Value::Null
    );

    // A priced call next to it: the known part, and how many calls it leaves out.
    let script = Queue::default();
    let mixed =
        Metrics::with_prices(PriceTable::empty().with("big-model", Price::per_million(10.0, 20.0)));
    let harness = Harness::builder()
        .provider("local", script.clone())
        .observer(mixed.clone())
        .build()
        .unwrap();
    script.push_ok(r#"{"label":"positive"}"#, "big-model", 1000, 100);
    classify(&harness).await.unwrap();
    script.push_ok(r#"{"label":"positive"}"#, "smollm2-135m", 100, 10);
    classify(&harness).await.unwrap();
    let snap = mixed.snapshot();
    let t = snap.task("classify").unwrap();
    assert_eq!((t.priced_calls, t.unpriced_calls), (1, 1));
    assert_eq!(t.cost_usd, Some(0.012));
    assert_eq!(t.cost_display(), "$0.012000 (+1 call of unknown cost)");
}

// ---------------------------------------------------------------------------------------------
// Cost math.

fn attempt(
    model: &str,
    response_model: Option<&str>,
    i: u64,
    o: u64,
) -> harness_core::outcome::Attempt {
    harness_core::outcome::Attempt {
        n: 1,
        kind: harness_core::outcome::AttemptKind::First,
        provider: "p".into(),
        model: model.into(),
        fingerprint: String::new(),
        response_model: response_model.map(Into::into),
        response_id: None,
        started_at: std::time::SystemTime::UNIX_EPOCH,
        latency: Duration::from_millis(5),
        usage: Usage::new(i, o),
        finish_reason: None,
        raw: None,
        failure: None,
        error: None,
        validation: ValidationErrors::new(),
        repairs: Vec::new(),
        confidence: None,
        wire: None,
    }
}

#[test]
fn cost_is_usd_per_million_tokens() {
    let _turn = subscriber_turn().blocking_lock();
    let t = PriceTable::empty().with("m", Price::per_million(0.15, 0.60));
    let usage = Usage::new(2_000, 500);
    let c = t.cost("m", usage).unwrap();
    assert!((c - (2_000.0 * 0.15 + 500.0 * 0.60) / 1e6).abs() < 1e-15);
    assert_eq!(t.cost("unknown", usage), None);
}

#[test]
fn call_cost_sums_attempts_and_needs_every_price() {
    let _turn = subscriber_turn().blocking_lock();
    let t = prices();
    let attempts = [
        attempt("smollm2-135m", None, 1_000_000, 0),
        // The answering model's price wins when the table knows it.
        attempt("smollm2-135m", Some("big-model-2024-07-18"), 0, 1_000_000),
        // A failed attempt that billed nothing costs nothing, priced or not.
        attempt("mystery", None, 0, 0),
    ];
    assert_eq!(t.call_cost(&attempts), Some(1.0 + 20.0));
    let with_unknown = [
        attempt("smollm2-135m", None, 10, 0),
        attempt("mystery", None, 10, 0),
    ];
    assert_eq!(t.call_cost(&with_unknown), None);
}

#[test]
fn defaults_are_dated_and_overridable() {
    let _turn = subscriber_turn().blocking_lock();
    assert!(!harness_core::telemetry::pricing::DEFAULTS_AS_OF.is_empty());
    let mut t = PriceTable::with_defaults();
    let usage = Usage::new(1_000_000, 0);
    assert!(t.cost("gpt-4o-mini", usage).is_some());
    t.set("gpt-4o-mini", Price::per_million(9.0, 9.0));
    assert_eq!(t.cost("gpt-4o-mini", usage), Some(9.0));
    assert_eq!(PriceTable::empty().cost("gpt-4o-mini", usage), None);
}

#[test]
fn task_span_records_how_the_call_ended() {
    let _turn = subscriber_turn().blocking_lock();
    // Built by hand, as the engine will: the task span, an attempt span inside it, the end.
    let spans = capture(|| {
        let task = telemetry::task_span(&CLASSIFY);
        let _entered = task.enter();
        let a = telemetry::attempt_span(&info(), &request());
        telemetry::record_response(&a, &response());
    });
    let [task, attempt] = &spans[..] else {
        panic!("{spans:?}")
    };
    assert_eq!(task.name, names::SPAN_TASK);
    // The conventions' workflow span: named for the operation and the task, no GenAI usage or
    // model of its own (those are on the CLIENT spans, so a backend counts them once).
    assert_eq!(task.str(names::OTEL_NAME), Some("invoke_workflow classify"));
    assert_eq!(
        task.str(names::GEN_AI_OPERATION_NAME),
        Some("invoke_workflow")
    );
    assert_eq!(task.str(names::GEN_AI_WORKFLOW_NAME), Some("classify"));
    assert_eq!(task.str(names::HARNESS_TASK_NAME), Some("classify"));
    assert!(
        task.str(names::OTEL_KIND).is_none(),
        "INTERNAL, the default"
    );
    for name in [
        names::GEN_AI_REQUEST_MODEL,
        names::GEN_AI_USAGE_INPUT_TOKENS,
        names::GEN_AI_USAGE_OUTPUT_TOKENS,
    ] {
        assert!(!task.declared.contains(&name), "{name} on the task span");
    }
    // The model asked for is known at the end of the call (overrides apply): declared, empty.
    assert!(task.declared.contains(&names::HARNESS_REQUEST_MODEL));
    assert!(!task.fields.contains_key(names::HARNESS_REQUEST_MODEL));
    assert!(task.declared.contains(&names::HARNESS_CALL_ID));
    assert!(task.declared.contains(&names::ERROR_TYPE));
    assert_eq!(
        attempt.parent,
        Some(task.id),
        "attempts nest in the task span"
    );
}

/// Records each finished call on a task span of its own (the engine will use its live one).
struct EndRecorder;

impl harness_core::observe::Observer for EndRecorder {
    fn on_call_end(&self, end: &harness_core::observe::CallEnd<'_>) {
        let span = telemetry::task_span(end.contract);
        // As the engine does when it makes the id.
        span.record(names::HARNESS_CALL_ID, end.report.call_id.as_str());
        telemetry::record_call_end(&span, end);
    }
}

#[tokio::test]
async fn record_call_end_sums_up_the_call() {
    let _turn = subscriber_turn().lock().await;
    let layer = Capture::new();
    let _guard = tracing::subscriber::set_default(layer.clone());
    tracing::callsite::rebuild_interest_cache();
    let script = Queue::default();
    let harness = Harness::builder()
        .provider("local", script.clone())
        .observer(EndRecorder)
        .build()
        .unwrap();
    script
        .push_ok(r#"{"label":"meh"}"#, "smollm2-135m", 100, 10)
        .push_ok(r#"{"label":"worse"}"#, "smollm2-135m", 100, 10);
    assert!(classify(&harness).await.is_err());
    script.push_ok(r#"{"label":"positive"}"#, "smollm2-135m", 7, 3);
    classify(&harness).await.unwrap();

    let spans = layer.spans();
    let mut ends: Vec<_> = spans
        .iter()
        .filter(|s| s.fields.contains_key(names::HARNESS_STATUS))
        .collect();
    // Once the engine records the end on its own task span too, each call shows up twice.
    ends.dedup_by_key(|s| s.str(names::HARNESS_CALL_ID).map(str::to_owned));
    let [failed, answered] = &ends[..] else {
        panic!("{ends:?}")
    };
    assert_eq!(failed.str(names::HARNESS_STATUS), Some("failed"));
    assert_eq!(failed.str(names::ERROR_TYPE), Some("invalid_output"));
    assert_eq!(failed.str(names::OTEL_STATUS_CODE), Some("error"));
    assert_eq!(failed.int(names::HARNESS_ATTEMPTS), Some(2));
    assert_eq!(failed.int(names::HARNESS_REASKS), Some(1));
    assert_eq!(failed.int(names::HARNESS_USAGE_INPUT_TOKENS), Some(200));
    // A short, safe reason on the status: the class and the count, never the answer.
    assert_eq!(
        failed.str(names::OTEL_STATUS_DESCRIPTION),
        Some("invalid_output after 2 attempts")
    );
    assert!(
        failed
            .str(names::HARNESS_CALL_ID)
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(
        failed.str(names::HARNESS_REQUEST_MODEL),
        Some("smollm2-135m")
    );
    assert!(!failed.fields.contains_key(names::GEN_AI_REQUEST_MODEL));
    assert!(failed.rerecorded.is_empty(), "{:?}", failed.rerecorded);
    assert_eq!(answered.str(names::HARNESS_STATUS), Some("answer"));
    assert_eq!(answered.int(names::HARNESS_ATTEMPTS), Some(1));
    assert_eq!(answered.int(names::HARNESS_USAGE_OUTPUT_TOKENS), Some(3));
    assert!(!answered.fields.contains_key(names::ERROR_TYPE));
    assert!(!answered.fields.contains_key(names::OTEL_STATUS_DESCRIPTION));
}

#[tokio::test]
async fn the_engine_emits_genai_spans() {
    let _turn = subscriber_turn().lock().await;
    let layer = Capture::new();
    let _guard = tracing::subscriber::set_default(layer.clone());
    tracing::callsite::rebuild_interest_cache();
    let script = Queue::default();
    let harness = Harness::builder()
        .provider("local", script.clone())
        .build()
        .unwrap();
    script
        .push_ok(r#"{"label":"meh"}"#, "smollm2-135m", 100, 10)
        .push_ok(r#"{"label":"positive"}"#, "smollm2-135m", 150, 12);
    assert_eq!(classify(&harness).await.unwrap(), "after 1 reask");

    let spans = layer.spans();
    let task = spans
        .iter()
        .find(|s| s.name == names::SPAN_TASK)
        .expect("task span");
    assert_eq!(task.str(names::OTEL_NAME), Some("invoke_workflow classify"));
    assert_eq!(task.str(names::HARNESS_STATUS), Some("answer"));
    assert_eq!(task.int(names::HARNESS_ATTEMPTS), Some(2));
    assert_eq!(task.int(names::HARNESS_REASKS), Some(1));
    assert_eq!(task.int(names::HARNESS_USAGE_INPUT_TOKENS), Some(250));
    assert!(!task.fields.contains_key(names::GEN_AI_USAGE_INPUT_TOKENS));
    assert!(task.str(names::HARNESS_CALL_ID).is_some());
    let attempts: Vec<_> = spans
        .iter()
        .filter(|s| s.name == names::SPAN_ATTEMPT)
        .collect();
    let [first, reask] = &attempts[..] else {
        panic!("{attempts:?}")
    };
    for a in [first, reask] {
        assert_eq!(a.parent, Some(task.id));
        assert_eq!(a.str(names::OTEL_NAME), Some("chat smollm2-135m"));
        assert_eq!(a.str(names::GEN_AI_PROVIDER_NAME), Some("openai"));
        assert_eq!(a.str(names::GEN_AI_RESPONSE_MODEL), Some("smollm2-135m"));
    }
    assert_eq!(first.str(names::HARNESS_ATTEMPT_KIND), Some("first"));
    assert_eq!(first.str(names::ERROR_TYPE), Some("invalid_output"));
    assert_eq!(
        first.str(names::OTEL_STATUS_DESCRIPTION),
        Some("invalid_output: 1 validation error (one_of)")
    );
    assert_eq!(first.int(names::GEN_AI_USAGE_INPUT_TOKENS), Some(100));
    assert_eq!(reask.str(names::HARNESS_ATTEMPT_KIND), Some("reask"));
    assert_eq!(reask.int(names::HARNESS_ATTEMPT_NUMBER), Some(2));
    assert!(!reask.fields.contains_key(names::ERROR_TYPE));
    assert!(!all_text(&spans).contains("meh"), "no content by default");
    for s in &spans {
        assert!(s.rerecorded.is_empty(), "{}: {:?}", s.name, s.rerecorded);
    }
}

#[tokio::test]
async fn metrics_count_repairs_by_their_stable_name() {
    let _turn = subscriber_turn().lock().await;
    let (harness, script, metrics) = metered();
    script
        .push_ok(
            "```json\n{\"label\":\"positive\"}\n```",
            "smollm2-135m",
            10,
            5,
        )
        .push_ok("Sure! {\"label\":\"negative\"}", "smollm2-135m", 10, 5)
        .push_ok("{\"label\":\"negative\"}", "smollm2-135m", 10, 5);
    for _ in 0..3 {
        classify(&harness).await.unwrap();
    }
    let snap = metrics.snapshot();
    let repairs = &snap.task("classify").unwrap().repairs;
    let by_name: Vec<(&str, u64)> = repairs.iter().map(|(k, n)| (k.name(), *n)).collect();
    assert_eq!(
        by_name,
        [("extracted_from_fence", 1), ("extracted_from_prose", 1)],
        "{repairs:?}"
    );
}
