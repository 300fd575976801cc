//! Spans and metrics go through the real OTLP/HTTP pipeline to a receiver on 127.0.0.1, which
//! decodes the protobuf bodies with `opentelemetry-proto`; the GenAI names and values must arrive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness_core::contract::{Action, TaskContract};
use harness_core::provider::{FinishReason, ProviderInfo, ResponseFormat};
use harness_core::telemetry::{self, names, otlp};
use harness_core::testing::fixtures::{
    ContractBuilder, FnProvider, Label, chain, local_info, output, subscriber_turn,
};
use harness_core::{
    ChatRequest, ChatResponse, FailureClass, Harness, Message, ProviderError, Usage,
    ValidationErrors,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};
use prost::Message as _;
use tracing_subscriber::layer::SubscriberExt;

// ---------------------------------------------------------------------------------------------
// A minimal OTLP/HTTP receiver: HTTP/1.1 with keep-alive, bodies kept by path.

/// Request bodies, with the path each was sent to.
type Bodies = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[derive(Clone, Default)]
struct Receiver {
    bodies: Bodies,
}

impl Receiver {
    fn start() -> (Receiver, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let receiver = Receiver::default();
        let r = receiver.clone();
        std::thread::spawn(move || {
            // Bounded: the exporters open a handful of connections at most.
            for stream in listener.incoming().take(32).flatten() {
                let r = r.clone();
                std::thread::spawn(move || r.serve(stream));
            }
        });
        (receiver, url)
    }

    fn serve(&self, stream: TcpStream) {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        // Bounded: a few requests per connection.
        for _ in 0..64 {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                return;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_owned();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            self.bodies.lock().unwrap().push((path, body));
            let _ = writer.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
            );
        }
    }

    fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == "/v1/traces")
            .map(|(_, b)| ExportTraceServiceRequest::decode(b.as_slice()).unwrap())
            .collect()
    }

    fn schema_urls(&self) -> Vec<String> {
        self.trace_requests()
            .into_iter()
            .flat_map(|r| r.resource_spans)
            .map(|r| r.schema_url)
            .collect()
    }

    fn spans(&self) -> Vec<Span> {
        self.trace_requests()
            .into_iter()
            .flat_map(|r| r.resource_spans)
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }

    fn metrics(&self) -> Vec<Metric> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == "/v1/metrics")
            .flat_map(|(_, b)| {
                ExportMetricsServiceRequest::decode(b.as_slice())
                    .unwrap()
                    .resource_metrics
            })
            .flat_map(|r| r.scope_metrics)
            .flat_map(|s| s.metrics)
            .collect()
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn str_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key) {
        Some(any_value::Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// A task and a provider that answers once.

static CLASSIFY: TaskContract = ContractBuilder::new("classify", output::<Label>())
    .module("tests::otlp")
    .description("Classifies a review.")
    .version("v1")
    .model(Some("smollm2-135m"))
    .system("You classify reviews.")
    .prompt("Review: {review}")
    .chains(&[chain(FailureClass::InvalidOutput, &[Action::Fail])])
    .params(Some(0.0), Some(64), None)
    .build();

/// Answers every request with [`response`].
fn once() -> FnProvider {
    FnProvider::responses(|_, _| Ok(response())).with_info(info())
}

fn info() -> ProviderInfo {
    local_info()
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "smollm2-135m".into(),
        messages: vec![Message::user("Review: fine")],
        response_format: ResponseFormat::json_schema(
            "Label",
            serde_json::json!({"type": "object"}),
        ),
        temperature: Some(0.0),
        max_tokens: Some(64),
        seed: None,
        ..Default::default()
    }
}

fn response() -> ChatResponse {
    ChatResponse {
        content: r#"{"label":"positive"}"#.into(),
        refusal: None,
        finish_reason: Some(FinishReason::Stop),
        model: Some("smollm2-135m".into()),
        id: Some("chatcmpl-1".into()),
        usage: Usage::new(120, 30),
        ..Default::default()
    }
}

/// The engine's record of an attempt, as `record_attempt` receives it.
fn judged(n: u32, failure: Option<FailureClass>) -> harness_core::outcome::Attempt {
    harness_core::outcome::Attempt {
        n,
        kind: harness_core::outcome::AttemptKind::First,
        provider: "local".into(),
        model: "smollm2-135m".into(),
        fingerprint: String::new(),
        response_model: None,
        response_id: None,
        started_at: std::time::SystemTime::now(),
        latency: Duration::from_millis(3),
        usage: Usage::default(),
        finish_reason: None,
        raw: None,
        failure,
        error: None,
        validation: ValidationErrors::new(),
        repairs: Vec::new(),
        confidence: None,
        wire: None,
    }
}

#[test]
fn spans_and_metrics_arrive_over_otlp_http() {
    let _turn = subscriber_turn().blocking_lock();
    let (receiver, url) = Receiver::start();
    let pipeline = otlp::builder(url)
        .service_name("otlp-test")
        .build()
        .expect("pipeline");

    // Spans: a task, a successful attempt and a failed one, through the tracing layer.
    let subscriber = tracing_subscriber::registry().with(pipeline.layer());
    tracing::subscriber::with_default(subscriber, || {
        let task = telemetry::task_span(&CLASSIFY);
        let _entered = task.enter();
        let ok = telemetry::attempt_span(&info(), &request());
        telemetry::record_response(&ok, &response());
        telemetry::record_attempt(&ok, &judged(1, None));
        drop(ok);
        let failed = telemetry::attempt_span(&info(), &request());
        telemetry::record_error(
            &failed,
            &ProviderError::Status {
                status: 503,
                message: "overloaded".into(),
            },
        );
        telemetry::record_attempt(&failed, &judged(2, Some(FailureClass::ProviderError)));
    });

    // Metrics: one real call through the engine, observed by the exported Metrics.
    let metrics = pipeline.metrics();
    let harness = Harness::builder()
        .provider("local", once())
        .observer(metrics.clone())
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime
        .block_on(harness.run::<Label>(&CLASSIFY, vec![("review", "fine".into())], None, None))
        .expect("answer");
    assert!(outcome.is_answer());

    pipeline.shutdown().expect("flushed");

    // --- Traces.
    let spans = receiver.spans();
    let schemas = receiver.schema_urls();
    assert!(!schemas.is_empty());
    assert!(
        schemas.iter().all(|u| u == names::SCHEMA_URL),
        "{schemas:?}"
    );
    let attempts: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "chat smollm2-135m")
        .collect();
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    let task = spans
        .iter()
        .find(|s| s.name == "invoke_workflow classify")
        .expect("task span");
    for a in &attempts {
        assert_eq!(a.kind, span::SpanKind::Client as i32);
        assert_eq!(a.parent_span_id, task.span_id, "attempts nest in the task");
        assert_eq!(
            str_attr(&a.attributes, names::GEN_AI_REQUEST_MODEL),
            Some("smollm2-135m")
        );
        assert_eq!(
            str_attr(&a.attributes, names::GEN_AI_OPERATION_NAME),
            Some("chat")
        );
        assert_eq!(
            str_attr(&a.attributes, names::GEN_AI_PROVIDER_NAME),
            Some("openai")
        );
        assert_eq!(int_attr(&a.attributes, names::SERVER_PORT), Some(8089));
        assert_eq!(
            int_attr(&a.attributes, names::GEN_AI_REQUEST_MAX_TOKENS),
            Some(64)
        );
    }
    let ok = attempts
        .iter()
        .find(|s| str_attr(&s.attributes, names::ERROR_TYPE).is_none())
        .expect("successful attempt");
    assert_eq!(
        int_attr(&ok.attributes, names::GEN_AI_USAGE_INPUT_TOKENS),
        Some(120)
    );
    assert_eq!(
        int_attr(&ok.attributes, names::GEN_AI_USAGE_OUTPUT_TOKENS),
        Some(30)
    );
    assert_eq!(
        str_attr(&ok.attributes, names::GEN_AI_RESPONSE_ID),
        Some("chatcmpl-1")
    );
    // A string array, as the conventions type it, set through the OpenTelemetry span extension.
    let Some(any_value::Value::ArrayValue(reasons)) =
        attr(&ok.attributes, names::GEN_AI_RESPONSE_FINISH_REASONS)
    else {
        panic!("finish reasons: {:?}", ok.attributes)
    };
    let reasons: Vec<_> = reasons.values.iter().map(|v| v.value.clone()).collect();
    assert_eq!(
        reasons,
        [Some(any_value::Value::StringValue("stop".into()))]
    );
    let failed = attempts
        .iter()
        .find(|s| str_attr(&s.attributes, names::ERROR_TYPE).is_some())
        .expect("failed attempt");
    assert_eq!(
        str_attr(&failed.attributes, names::ERROR_TYPE),
        Some("provider_error")
    );
    assert_eq!(
        int_attr(&failed.attributes, names::HTTP_RESPONSE_STATUS_CODE),
        Some(503)
    );
    let status = failed.status.as_ref().expect("status");
    assert_eq!(status.code, status::StatusCode::Error as i32);
    assert!(status.message.contains("503"));
    // The control fields set name, kind and status; they are not exported as attributes.
    assert!(str_attr(&failed.attributes, names::OTEL_KIND).is_none());

    // Every attribute once: a field recorded twice would be exported twice.
    for s in &spans {
        let mut keys: Vec<&str> = s.attributes.iter().map(|kv| kv.key.as_str()).collect();
        let all = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(
            keys.len(),
            all,
            "duplicate attributes on {}: {:?}",
            s.name,
            s.attributes
        );
    }

    // --- Metrics.
    let metrics = receiver.metrics();
    let find = |name: &str| -> &Metric {
        metrics.iter().find(|m| m.name == name).unwrap_or_else(|| {
            panic!(
                "{name} missing from {:?}",
                metrics.iter().map(|m| &m.name).collect::<Vec<_>>()
            )
        })
    };
    let duration = find(names::GEN_AI_CLIENT_OPERATION_DURATION);
    assert_eq!(duration.unit, "s");
    let Some(metric::Data::Histogram(h)) = &duration.data else {
        panic!("{duration:?}")
    };
    let point = &h.data_points[0];
    assert_eq!(point.explicit_bounds, names::DURATION_BUCKETS.to_vec());
    assert_eq!(point.count, 1);
    assert_eq!(
        str_attr(&point.attributes, names::GEN_AI_REQUEST_MODEL),
        Some("smollm2-135m")
    );

    let tokens = find(names::GEN_AI_CLIENT_TOKEN_USAGE);
    let Some(metric::Data::Histogram(h)) = &tokens.data else {
        panic!("{tokens:?}")
    };
    assert_eq!(
        h.data_points[0].explicit_bounds,
        names::TOKEN_BUCKETS.to_vec()
    );
    let input = h
        .data_points
        .iter()
        .find(|p| str_attr(&p.attributes, names::GEN_AI_TOKEN_TYPE) == Some("input"))
        .expect("input tokens");
    assert_eq!(input.sum, Some(120.0));

    let calls = find(names::HARNESS_TASK_CALLS);
    let Some(metric::Data::Sum(sum)) = &calls.data else {
        panic!("{calls:?}")
    };
    let p = &sum.data_points[0];
    assert_eq!(
        str_attr(&p.attributes, names::HARNESS_TASK_NAME),
        Some("classify")
    );
    assert_eq!(
        str_attr(&p.attributes, names::HARNESS_STATUS),
        Some("answer")
    );

    let pass = find(names::HARNESS_TASK_PASS_RATE);
    let Some(metric::Data::Gauge(g)) = &pass.data else {
        panic!("{pass:?}")
    };
    assert!(!g.data_points.is_empty());
}
