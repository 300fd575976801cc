//! The chaos server itself: every fault class by name, the script, seeded injection, recording,
//! robustness against bad clients, and shutdown.

use std::time::{Duration, Instant};

use harness_core::provider::{
    ChatRequest, ChatResponse, FinishReason, Message, OpenAiCompatible, Provider, ProviderError,
    ResponseFormat,
};
use harness_core::testing::chaos::{DEEP_NESTING_DEPTH, HUGE_CONTENT_BYTES, REFUSAL_TEXT};
use harness_core::testing::{ChaosServer, Fault, RecordedRequest, Reply};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GOOD: &str = r#"{"label":"positive","score":0.5}"#;

fn request() -> ChatRequest {
    ChatRequest {
        model: "chaos-model".into(),
        messages: vec![Message::system("sys"), Message::user("Review: fine")],
        response_format: ResponseFormat::json_schema(
            "Sentiment",
            json!({
                "type": "object",
                "properties": {
                    "label": {"type": "string", "enum": ["positive", "negative"]},
                    "score": {"type": "number", "minimum": 0, "maximum": 1}
                },
                "required": ["label", "score"],
                "additionalProperties": false
            }),
        ),
        temperature: None,
        max_tokens: None,
        seed: None,
        ..Default::default()
    }
}

fn client(server: &ChaosServer) -> OpenAiCompatible {
    OpenAiCompatible::builder(server.base_url())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn json_of(r: &ChatResponse) -> Value {
    serde_json::from_str(&r.content).unwrap_or_else(|e| panic!("{e}: {}", r.content))
}

/// What each fault class must look like through the OpenAI-compatible provider.
fn check(fault: Fault, result: Result<ChatResponse, ProviderError>, elapsed: Duration) {
    use ProviderError as E;
    let name = fault.name();
    match (fault, &result) {
        (Fault::Http500, Err(E::Status { status: 500, .. }))
        | (Fault::Http502, Err(E::Status { status: 502, .. }))
        | (Fault::Http503, Err(E::Status { status: 503, .. }))
        | (
            Fault::RateLimited,
            Err(E::RateLimited {
                status: 429,
                retry_after: None,
            }),
        )
        | (Fault::ConnectionReset, Err(E::Connection(_)))
        | (Fault::Stall, Err(E::Timeout(_))) => {}
        (
            Fault::RateLimitedRetryAfter,
            Err(E::RateLimited {
                status: 429,
                retry_after: Some(d),
            }),
        ) => assert_eq!(*d, Duration::from_secs(1)),
        (Fault::SlowFirstByte, Ok(r)) => {
            assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
            assert_eq!(r.content, GOOD);
        }
        (Fault::TruncatedBody, Err(E::InvalidResponse(m))) => assert!(m.contains("cut off"), "{m}"),
        (Fault::NotJson, Err(E::InvalidResponse(m))) => assert!(m.contains("<html>"), "{m}"),
        (Fault::EmptyChoices, Err(E::InvalidResponse(m))) => {
            assert!(m.contains("no choices"), "{m}")
        }
        (Fault::InvalidUtf8, Err(E::InvalidResponse(m))) => assert!(m.contains("UTF-8"), "{m}"),
        (Fault::CodeFences, Ok(r)) => assert_eq!(r.content, format!("```json\n{GOOD}\n```")),
        (Fault::JsonInProse, Ok(r)) => {
            assert!(
                r.content.contains(GOOD) && r.content.starts_with("Sure"),
                "{}",
                r.content
            )
        }
        (Fault::WrongTypes, Ok(r)) => {
            assert_eq!(json_of(r), json!({"label": "positive", "score": "0.5"}))
        }
        (Fault::MissingField, Ok(r)) => assert_eq!(json_of(r), json!({"score": 0.5})),
        (Fault::OutOfRange, Ok(r)) => {
            assert_eq!(
                json_of(r),
                json!({"label": "positive", "score": 1_000_000_000})
            )
        }
        (Fault::SchemaDrift, Ok(r)) => {
            assert_eq!(json_of(r), json!({"label_v2": "positive", "score_v2": 0.5}))
        }
        (Fault::Refusal, Ok(r)) => assert_eq!(r.refusal.as_deref(), Some(REFUSAL_TEXT)),
        (Fault::ContentFilter, Ok(r)) => {
            assert_eq!(r.finish_reason, Some(FinishReason::ContentFilter))
        }
        (Fault::Length, Ok(r)) => {
            assert_eq!(r.finish_reason, Some(FinishReason::Length));
            assert_eq!(r.content, &GOOD[..GOOD.len() / 2]);
        }
        (Fault::HugeContent, Ok(r)) => {
            assert!(r.content.len() > HUGE_CONTENT_BYTES);
            assert_eq!(json_of(r)["label"], "positive");
        }
        (Fault::DeepNesting, Ok(r)) => {
            assert_eq!(r.content.len(), 2 * DEEP_NESTING_DEPTH);
            assert!(r.content.starts_with("[[[") && r.content.ends_with("]]]"));
        }
        _ => panic!("{name}: unexpected {result:?}"),
    }
}

#[tokio::test]
async fn every_fault_class_is_served_by_name() {
    assert_eq!(Fault::ALL.len(), 23);
    for fault in Fault::ALL {
        let by_name = Fault::from_name(fault.name()).unwrap();
        let server = ChaosServer::builder()
            .answer(|_| GOOD.to_owned())
            .script([Reply::fault(by_name)])
            .stall_for(Duration::from_secs(30))
            .slow_first_byte(Duration::from_millis(200))
            .start()
            .await
            .unwrap();
        let started = Instant::now();
        // Only the stall should time out: give the others (10 MiB bodies on a busy machine) room.
        let timeout = match fault {
            Fault::Stall => Duration::from_millis(500),
            _ => Duration::from_secs(60),
        };
        let p = OpenAiCompatible::builder(server.base_url())
            .timeout(timeout)
            .build()
            .unwrap();
        let result = p.chat(&request()).await;
        check(*fault, result, started.elapsed());
        let reqs = server.requests();
        assert_eq!(reqs.len(), 1, "{fault}");
        assert_eq!(reqs[0].fault, Some(*fault));
    }
}

#[tokio::test]
async fn distort_uses_the_given_good_answer() {
    let server = ChaosServer::builder()
        .script([Reply::distort(Fault::SchemaDrift, r#"{"a":{"b":1}}"#)])
        .start()
        .await
        .unwrap();
    let r = client(&server).chat(&request()).await.unwrap();
    assert_eq!(json_of(&r), json!({"a_v2": {"b_v2": 1}}));
}

#[tokio::test]
async fn without_an_answer_closure_the_good_answer_follows_the_schema() {
    let server = ChaosServer::start().await.unwrap();
    let r = client(&server).chat(&request()).await.unwrap();
    assert_eq!(json_of(&r), json!({"label": "positive", "score": 0.5}));
    let mut text = request();
    text.response_format = ResponseFormat::Text;
    assert_eq!(client(&server).chat(&text).await.unwrap().content, "{}");
}

#[tokio::test]
async fn the_script_runs_in_order_then_the_default_serves() {
    let server = ChaosServer::builder()
        .script([Reply::fault(Fault::Http503), Reply::json_content("one")])
        .default_reply(Reply::json_content("default"))
        .start()
        .await
        .unwrap();
    let p = client(&server);
    assert!(p.chat(&request()).await.is_err());
    assert_eq!(p.chat(&request()).await.unwrap().content, "one");
    assert_eq!(p.chat(&request()).await.unwrap().content, "default");
    server.push(Reply::json_content("pushed"));
    assert_eq!(server.script_len(), 1);
    assert_eq!(p.chat(&request()).await.unwrap().content, "pushed");
    assert_eq!(p.chat(&request()).await.unwrap().content, "default");
    assert_eq!(server.request_count(), 5);
}

#[tokio::test]
async fn the_answer_closure_sees_the_request() {
    let server = ChaosServer::builder()
        .answer(|r: &RecordedRequest| {
            let last = r.message_texts().last().copied().unwrap_or_default();
            json!({"echo": last, "model": r.model()}).to_string()
        })
        .start()
        .await
        .unwrap();
    let r = client(&server).chat(&request()).await.unwrap();
    assert_eq!(
        json_of(&r),
        json!({"echo": "Review: fine", "model": "chaos-model"})
    );
}

async fn injected(seed: u64, n: usize) -> Vec<Option<Fault>> {
    let server = ChaosServer::builder()
        .answer(|_| GOOD.to_owned())
        .inject(
            0.3,
            &[Fault::Http500, Fault::CodeFences, Fault::RateLimited],
        )
        .seed(seed)
        .start()
        .await
        .unwrap();
    let p = client(&server);
    for _ in 0..n {
        let _ = p.chat(&request()).await;
    }
    server.requests().into_iter().map(|r| r.fault).collect()
}

#[tokio::test]
async fn injection_is_seeded_and_close_to_its_rate() {
    let a = injected(42, 200).await;
    let b = injected(42, 200).await;
    let c = injected(43, 200).await;
    assert_eq!(a, b, "the same seed must give the same faults");
    assert_ne!(a, c, "another seed should give other faults");
    let faults = a.iter().filter(|f| f.is_some()).count();
    assert!(
        (30..=90).contains(&faults),
        "{faults} faults in 200 at rate 0.3"
    );
    for f in [Fault::Http500, Fault::CodeFences, Fault::RateLimited] {
        assert!(a.contains(&Some(f)), "{f} never drawn");
    }
    assert!(
        a.iter()
            .flatten()
            .all(|f| matches!(f, Fault::Http500 | Fault::CodeFences | Fault::RateLimited))
    );
}

#[tokio::test]
async fn scripted_replies_come_before_injection() {
    let server = ChaosServer::builder()
        .script([Reply::json_content("scripted")])
        .inject(1.0, &[Fault::Http502])
        .start()
        .await
        .unwrap();
    let p = client(&server);
    assert_eq!(p.chat(&request()).await.unwrap().content, "scripted");
    assert!(matches!(
        p.chat(&request()).await,
        Err(ProviderError::Status { status: 502, .. })
    ));
}

#[tokio::test]
async fn requests_are_recorded_without_credentials() {
    let server = ChaosServer::start().await.unwrap();
    let p = OpenAiCompatible::builder(server.base_url())
        .api_key("sk-record-me-not")
        .build()
        .unwrap();
    let mut reask = request();
    reask
        .messages
        .push(Message::assistant(r#"{"label":"meh"}"#));
    reask.messages.push(Message::user(
        "Fix: `label` must be one of positive, negative",
    ));
    p.chat(&reask).await.unwrap();
    let r = &server.requests()[0];
    assert!(r.mentions("must be one of positive, negative"));
    assert!(!r.mentions("nonexistent"));
    assert_eq!(r.header("Authorization"), Some("Bearer [redacted]"));
    assert!(!format!("{r:?}").contains("sk-record-me-not"));
    assert_eq!(r.schema(), request_schema().as_ref());
    assert!(r.body_len > 100);
    assert!(!r.is_anthropic());
}

fn request_schema() -> Option<Value> {
    request().response_format.schema().cloned()
}

#[tokio::test]
async fn concurrent_requests_are_all_answered() {
    let server = ChaosServer::builder()
        .answer(|_| GOOD.to_owned())
        .start()
        .await
        .unwrap();
    let p = std::sync::Arc::new(client(&server));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let p = p.clone();
        tasks.spawn(async move { p.chat(&request()).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap().content, GOOD);
    }
    assert_eq!(server.request_count(), 20);
}

#[tokio::test]
async fn malformed_requests_get_a_400_and_the_server_keeps_serving() {
    let server = ChaosServer::start().await.unwrap();
    for garbage in [
        &b"NONSENSE\r\n\r\n"[..],
        b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: nope\r\n\r\n",
        b"POST / HTTP/1.1\r\nno colon here\r\n\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        s.write_all(garbage).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 400 "),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    // A client that connects and leaves.
    drop(tokio::net::TcpStream::connect(server.addr()).await.unwrap());
    assert!(client(&server).chat(&request()).await.is_ok());
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn dropping_the_server_closes_it() {
    let server = ChaosServer::builder()
        .script([Reply::fault(Fault::Stall)])
        .start()
        .await
        .unwrap();
    let addr = server.addr();
    let p = client(&server);
    let stalled = tokio::spawn(async move { p.chat(&request()).await });
    while server.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(server);
    // The stalled connection is closed rather than left to time out.
    let r = tokio::time::timeout(Duration::from_secs(1), stalled)
        .await
        .expect("the stalled exchange should end when the server is dropped")
        .unwrap();
    assert!(matches!(r, Err(ProviderError::Connection(_))), "{r:?}");
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener is still open");
}

#[tokio::test]
async fn shutdown_waits_for_the_server_to_stop() {
    let server = ChaosServer::start().await.unwrap();
    let addr = server.addr();
    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn anthropic_paths_get_messages_format() {
    let server = ChaosServer::builder()
        .answer(|_| GOOD.to_owned())
        .script([Reply::answer(), Reply::fault(Fault::Http503)])
        .start()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let body = json!({"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "Out", "input_schema": {"type": "object"}}], "tool_choice": {"type": "tool", "name": "Out"}});
    let url = format!("{}/v1/messages", server.url());
    let r = http.post(&url).body(body.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["name"], "Out");
    assert_eq!(
        v["content"][0]["input"],
        json!({"label": "positive", "score": 0.5})
    );
    let r = http.post(&url).body(body.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["type"], "error");
    assert!(server.requests()[0].is_anthropic());
}

/// The providers behind the engine: a hand-written contract (what `#[llm_task]` would emit), run
/// by a harness built with `from_vars` against the chaos server.
mod through_the_engine {
    use std::collections::HashMap;
    use std::time::Duration;

    use harness_core::contract::{Backoff, InputSpec};
    use harness_core::testing::fixtures::{ContractBuilder, Sentiment, chain, output, retry};
    use harness_core::testing::{ChaosServer, Fault, Reply};
    use harness_core::{Action, FailureClass, Harness, LlmOutput, Resolution, TaskContract};

    const FAST: Backoff = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
        multiplier: 1.0,
        jitter: false,
    };

    static CONTRACT: TaskContract = ContractBuilder::new("classify", output::<Sentiment>())
        .module("chaos")
        .description("Classifies a review.")
        .model(Some("chaos-model"))
        .system("You classify reviews.")
        .prompt("Review: {review}")
        .inputs(&[InputSpec {
            name: "review",
            rust_type: "&str",
        }])
        .chains(&[
            chain(FailureClass::Timeout, &[Action::Fail]),
            chain(FailureClass::RateLimited, &[retry(2, FAST)]),
            chain(FailureClass::ProviderError, &[retry(2, FAST)]),
            chain(FailureClass::InvalidOutput, &[Action::Reask { times: 2 }]),
            chain(FailureClass::Refusal, &[Action::Escalate]),
        ])
        .build();

    fn harness(server: &ChaosServer) -> Harness {
        let vars = HashMap::from([("OPENAI_BASE_URL".to_owned(), server.base_url())]);
        harness_core::engine::from_vars(&vars).unwrap()
    }

    #[tokio::test]
    async fn retries_a_503_and_reasks_after_wrong_types() {
        // A string no schema-guided coercion can turn into a number ("0.5" would be repaired).
        let wrong = r#"{"label":"positive","score":"about half"}"#;
        let server = ChaosServer::builder()
            .script([
                Reply::fault(Fault::Http503),
                Reply::json_content(wrong),
                Reply::json_content(r#"{"label":"positive","score":0.5}"#),
            ])
            .start()
            .await
            .unwrap();
        let outcome = harness(&server)
            .run::<Sentiment>(&CONTRACT, vec![("review", "fine".into())], None, None)
            .await
            .unwrap();
        match &outcome.resolution {
            Resolution::Answer(s) => assert_eq!((s.label.as_str(), s.score), ("positive", 0.5)),
            other => panic!("{other:?}"),
        }
        let reqs = server.requests();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0].model(), Some("chaos-model"));
        assert!(reqs[0].mentions("Review: fine"));
        assert_eq!(
            reqs[0].schema(),
            Some(&harness_core::output::wire_schema(
                &<Sentiment as LlmOutput>::output_schema()
            )),
            "the server gets the schema without `$schema`, `title` or number formats"
        );
        // The reask shows the model its previous answer and says what was wrong with it.
        assert!(!reqs[1].mentions(wrong));
        assert!(reqs[2].mentions(wrong), "{:?}", reqs[2].message_texts());
        assert!(reqs[2].message_texts().len() > reqs[1].message_texts().len());
    }

    #[tokio::test]
    async fn a_refusal_escalates() {
        let server = ChaosServer::builder()
            .script([Reply::fault(Fault::Refusal)])
            .start()
            .await
            .unwrap();
        let outcome = harness(&server)
            .run::<Sentiment>(&CONTRACT, vec![("review", "fine".into())], None, None)
            .await
            .unwrap();
        match &outcome.resolution {
            Resolution::Escalated(e) => assert_eq!(e.class, FailureClass::Refusal),
            other => panic!("{other:?}"),
        }
        assert_eq!(server.request_count(), 1);
    }

    #[tokio::test]
    async fn seeded_chaos_still_ends_in_answers() {
        let server = ChaosServer::builder()
            .answer(|_| r#"{"label":"negative","score":0.25}"#.to_owned())
            .inject(
                0.3,
                &[
                    Fault::Http500,
                    Fault::Http503,
                    Fault::RateLimited,
                    Fault::ConnectionReset,
                    Fault::TruncatedBody,
                    Fault::WrongTypes,
                    Fault::SchemaDrift,
                ],
            )
            .seed(11)
            .start()
            .await
            .unwrap();
        let h = harness(&server);
        let mut answers = 0;
        for _ in 0..20 {
            if let Ok(o) = h
                .run::<Sentiment>(&CONTRACT, vec![("review", "meh".into())], None, None)
                .await
            {
                if matches!(o.resolution, Resolution::Answer(_)) {
                    answers += 1;
                }
            }
        }
        assert!(answers >= 18, "{answers} answers of 20");
        assert!(server.requests().iter().any(|r| r.fault.is_some()));
    }
}

#[tokio::test(start_paused = true)]
async fn stalls_run_on_tokio_time_so_paused_clocks_skip_them() {
    let server = ChaosServer::builder()
        .script([
            Reply::fault(Fault::Stall),
            Reply::fault(Fault::SlowFirstByte),
            Reply::json_content("late").delayed(Duration::from_secs(900)),
        ])
        .stall_for(Duration::from_secs(3600))
        .slow_first_byte(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let p = OpenAiCompatible::builder(server.base_url())
        .build()
        .unwrap();
    let real = Instant::now();
    let virtual_start = tokio::time::Instant::now();
    // The stall ends (the server closes) after an hour of tokio time, long before the two-hour
    // guard: a stall on the wall clock would hang this test.
    let r = tokio::time::timeout(Duration::from_secs(7200), p.chat(&request())).await;
    assert!(matches!(r, Ok(Err(ProviderError::Connection(_)))), "{r:?}");
    assert!(virtual_start.elapsed() >= Duration::from_secs(3600));
    let r = tokio::time::timeout(Duration::from_secs(7200), p.chat(&request())).await;
    assert!(matches!(r, Ok(Ok(_))), "{r:?}");
    let before = tokio::time::Instant::now();
    let r = p.chat(&request()).await.unwrap();
    let faults: Vec<_> = server.requests().iter().map(|r| r.fault).collect();
    assert_eq!(r.content, "late", "{faults:?}");
    assert!(before.elapsed() >= Duration::from_secs(900));
    assert!(real.elapsed() < Duration::from_secs(30));
}
