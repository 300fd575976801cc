//! The OpenAI-compatible provider against a real HTTP server on 127.0.0.1 (the chaos server).

use std::time::{Duration, Instant, SystemTime};

use harness_core::provider::{
    ChatRequest, FinishReason, Message, OpenAiCompatible, Provider, ProviderError, ResponseFormat,
    StructuredOutput,
};
use harness_core::testing::chaos::{HUGE_CONTENT_BYTES, REFUSAL_TEXT};
use harness_core::testing::{ChaosServer, Fault, Reply};
use serde_json::{Value, json};

const KEY: &str = "sk-chaos-SECRET-0123456789";

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {"label": {"type": "string"}, "score": {"type": "number"}},
        "required": ["label", "score"],
        "additionalProperties": false
    })
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "test-model".into(),
        messages: vec![
            Message::system("You classify."),
            Message::user("Review: great"),
            Message::assistant("{}"),
            Message::user("again"),
        ],
        response_format: ResponseFormat::json_schema("Sentiment", schema()),
        temperature: Some(0.25),
        max_tokens: Some(64),
        seed: Some(7),
        ..Default::default()
    }
}

fn provider(server: &ChaosServer) -> OpenAiCompatible {
    OpenAiCompatible::builder(server.base_url())
        .api_key(KEY)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn serve(replies: impl IntoIterator<Item = Reply>) -> ChaosServer {
    ChaosServer::builder()
        .script(replies)
        .start()
        .await
        .unwrap()
}

async fn error_for(reply: Reply) -> ProviderError {
    let server = serve([reply]).await;
    provider(&server).chat(&request()).await.unwrap_err()
}

#[tokio::test]
async fn sends_model_messages_options_and_json_schema() {
    let server = ChaosServer::builder()
        .require_api_key(KEY)
        .start()
        .await
        .unwrap();
    provider(&server).chat(&request()).await.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer [redacted]"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("user-agent").unwrap().starts_with("harness/"));
    let body = r.body.as_ref().unwrap();
    assert_eq!(body["model"], "test-model");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You classify."},
            {"role": "user", "content": "Review: great"},
            {"role": "assistant", "content": "{}"},
            {"role": "user", "content": "again"},
        ])
    );
    assert_eq!(body["temperature"], 0.25);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["seed"], 7);
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "Sentiment", "schema": schema(), "strict": true}})
    );
}

#[tokio::test]
async fn strict_is_off_for_schemas_openai_would_reject() {
    let server = serve([]).await;
    let mut req = request();
    let mut open = schema();
    open["required"] = json!(["label"]);
    req.response_format = ResponseFormat::json_schema("my output::v1", open);
    provider(&server).chat(&req).await.unwrap();
    let body = server.requests()[0].body.clone().unwrap();
    assert_eq!(body["response_format"]["json_schema"]["strict"], false);
    assert_eq!(
        body["response_format"]["json_schema"]["name"],
        "my_output__v1"
    );
}

#[tokio::test]
async fn optional_fields_are_left_out() {
    let server = serve([]).await;
    let mut req = request();
    req.temperature = None;
    req.max_tokens = None;
    req.seed = None;
    req.response_format = ResponseFormat::Text;
    let p = OpenAiCompatible::builder(server.base_url())
        .build()
        .unwrap();
    p.chat(&req).await.unwrap();
    let r = &server.requests()[0];
    let body = r.body.as_ref().unwrap().as_object().unwrap();
    for key in ["temperature", "max_tokens", "seed", "response_format"] {
        assert!(!body.contains_key(key), "{key} was sent: {body:?}");
    }
    assert_eq!(r.header("authorization"), None);
}

#[tokio::test]
async fn structured_output_modes_shape_response_format() {
    let cases = [
        (StructuredOutput::JsonSchema, Some("json_schema")),
        (StructuredOutput::JsonObject, Some("json_object")),
        (StructuredOutput::PromptOnly, None),
    ];
    for (mode, expected) in cases {
        let server = serve([]).await;
        let p = OpenAiCompatible::builder(server.base_url())
            .structured_output(mode)
            .build()
            .unwrap();
        p.chat(&request()).await.unwrap();
        let body = server.requests()[0].body.clone().unwrap();
        assert_eq!(
            body.pointer("/response_format/type")
                .and_then(Value::as_str),
            expected,
            "{mode:?}"
        );
    }
}

/// Where the schema goes, per mode: to the server (and nowhere in the prompt) when it enforces
/// it; otherwise the instruction follows the system message (or is one, first).
#[tokio::test]
async fn the_schema_instruction_is_in_the_prompt_only_when_the_server_does_not_enforce_it() {
    let cases = [
        (StructuredOutput::JsonSchema, false),
        (StructuredOutput::Auto, false),
        (StructuredOutput::JsonObject, true),
        (StructuredOutput::PromptOnly, true),
    ];
    let mut req = request();
    req.response_format = ResponseFormat::json_schema("Sentiment", schema())
        .with_instruction("Reply as {label, score}.");
    for (mode, prompted) in cases {
        let server = serve([]).await;
        let p = OpenAiCompatible::builder(server.base_url())
            .structured_output(mode)
            .build()
            .unwrap();
        p.chat(&req).await.unwrap();
        let body = server.requests()[0].body.clone().unwrap();
        let expected = match prompted {
            true => "You classify.\n\nReply as {label, score}.",
            false => "You classify.",
        };
        assert_eq!(body["messages"][0]["content"], expected, "{mode:?}");
        assert_eq!(body["messages"].as_array().unwrap().len(), 4, "{mode:?}");
    }
    // No system message: the instruction is one, first. No instruction given: rendered from the
    // schema in the compact notation.
    let server = serve([]).await;
    let p = OpenAiCompatible::builder(server.base_url())
        .structured_output(StructuredOutput::PromptOnly)
        .build()
        .unwrap();
    let mut bare = request();
    bare.messages.remove(0);
    p.chat(&bare).await.unwrap();
    let body = server.requests()[0].body.clone().unwrap();
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(
        body["messages"][0]["content"],
        "Answer with one JSON object and nothing else, of this type:\n{\n  label: string\n  score: number\n}"
    );
    assert_eq!(body["messages"][1]["content"], "Review: great");
}

#[tokio::test]
async fn after_the_downgrade_the_prompt_carries_the_notation_not_the_schema() {
    let rejection =
        json!({"error": {"message": "'response_format' of type 'json_schema' is not supported"}});
    let server = serve([Reply::json(400, &rejection)]).await;
    let p = provider(&server);
    p.chat(&request()).await.unwrap();
    let system: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            r.body.as_ref().unwrap()["messages"][0]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(system[0], "You classify.");
    assert!(
        system[1].starts_with("You classify.\n\nAnswer with one JSON object")
            && system[1].contains("score: number"),
        "{}",
        system[1]
    );
    assert!(!system[1].contains("additionalProperties"), "{}", system[1]);
}

#[tokio::test]
async fn cached_and_reasoning_tokens_are_read_from_the_usage_details() {
    let body = json!({
        "id": "chatcmpl-1", "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "{}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                  "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0}}
    });
    let server = serve([Reply::json(200, &body)]).await;
    let r = provider(&server).chat(&request()).await.unwrap();
    assert_eq!(
        r.usage,
        harness_core::Usage::new(2006, 300)
            .with_cache(1920, 0)
            .with_reasoning(256)
    );
}

#[tokio::test]
async fn parses_content_usage_id_model_and_finish_reason() {
    let server = serve([Reply::json_content(r#"{"label":"positive","score":0.9}"#)
        .with_usage(11, 7)
        .with_finish_reason("stop")])
    .await;
    let r = provider(&server).chat(&request()).await.unwrap();
    assert_eq!(r.content, r#"{"label":"positive","score":0.9}"#);
    assert_eq!(r.usage.input_tokens, 11);
    assert_eq!(r.usage.output_tokens, 7);
    assert_eq!(r.id.as_deref(), Some("chatcmpl-chaos-0"));
    assert_eq!(r.model.as_deref(), Some("test-model"));
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    assert_eq!(r.refusal, None);
}

#[tokio::test]
async fn reads_a_hand_written_completion() {
    let body = json!({
        "id": "chatcmpl-abc", "model": "gpt-x-2024",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "tool_calls"}],
    });
    let server = serve([Reply::json(200, &body)]).await;
    let r = provider(&server).chat(&request()).await.unwrap();
    assert_eq!(r.content, "hi");
    assert_eq!(r.id.as_deref(), Some("chatcmpl-abc"));
    assert_eq!(r.model.as_deref(), Some("gpt-x-2024"));
    assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(r.usage.total(), 0);
}

#[tokio::test]
async fn reports_refusals_content_filter_and_length() {
    let server = serve([
        Reply::fault(Fault::Refusal),
        Reply::fault(Fault::ContentFilter),
        Reply::distort(Fault::Length, r#"{"label":"positive"}"#),
    ])
    .await;
    let p = provider(&server);
    let r = p.chat(&request()).await.unwrap();
    assert_eq!(r.refusal.as_deref(), Some(REFUSAL_TEXT));
    assert_eq!(r.content, "");
    let r = p.chat(&request()).await.unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::ContentFilter));
    let r = p.chat(&request()).await.unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::Length));
    assert_eq!(r.content, r#"{"label":""#);
}

#[tokio::test]
async fn server_errors_are_retryable_statuses() {
    for (fault, status) in [
        (Fault::Http500, 500),
        (Fault::Http502, 502),
        (Fault::Http503, 503),
    ] {
        let e = error_for(Reply::fault(fault)).await;
        assert!(
            matches!(&e, ProviderError::Status { status: s, message } if *s == status && message.contains("chaos")),
            "{fault}: {e:?}"
        );
        assert!(e.is_retryable(), "{fault}");
    }
}

#[tokio::test]
async fn client_errors_are_not_retryable() {
    for status in [400u16, 401, 403, 404] {
        let body = json!({"error": {"message": format!("nope {status}"), "type": "invalid_request_error"}});
        let e = error_for(Reply::json(status, &body)).await;
        assert_eq!(
            e,
            ProviderError::Status {
                status,
                message: format!("nope {status}")
            }
        );
        assert!(!e.is_retryable(), "{status}");
    }
}

#[tokio::test]
async fn rate_limits_carry_retry_after_in_seconds_or_as_a_date() {
    let e = error_for(Reply::fault(Fault::RateLimited)).await;
    assert_eq!(
        e,
        ProviderError::RateLimited {
            status: 429,
            retry_after: None
        }
    );
    let e = error_for(Reply::fault(Fault::RateLimitedRetryAfter)).await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));

    let e = error_for(Reply::status(429, "{}").with_header("Retry-After", "120")).await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));

    let at = SystemTime::now() + Duration::from_secs(90);
    let date = http_date(at);
    let e = error_for(Reply::status(429, "{}").with_header("Retry-After", date.clone())).await;
    let after = e.retry_after().unwrap_or_else(|| panic!("{date}: {e:?}"));
    assert!(
        (Duration::from_secs(85)..=Duration::from_secs(91)).contains(&after),
        "{date}: {after:?}"
    );
    assert!(e.is_retryable());
}

/// An IMF-fixdate, formatted here independently of the code under test.
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (Hinnant), the inverse of what the parser uses.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[tokio::test]
async fn auto_mode_drops_response_format_after_the_server_rejects_it() {
    let rejection = json!({"error": {"message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.", "type": "invalid_request_error"}});
    let server = serve([Reply::json(400, &rejection)]).await;
    let p = provider(&server);
    assert!(!p.schema_rejected());
    let first = p.chat(&request()).await.unwrap();
    assert_eq!(first.finish_reason, Some(FinishReason::Stop));
    assert!(p.schema_rejected());
    p.chat(&request()).await.unwrap();
    let sent: Vec<bool> = server
        .requests()
        .iter()
        .map(|r| r.body.as_ref().unwrap().get("response_format").is_some())
        .collect();
    assert_eq!(sent, [true, false, false]);
    assert!(format!("{p:?}").contains("schema_rejected: true"));
}

#[tokio::test]
async fn an_invalid_schema_skips_response_format_for_that_request_only() {
    let invalid = json!({"error": {"message": "Invalid schema for response_format 'Sentiment': 'format' is not permitted.", "type": "invalid_request_error"}});
    let server = serve([Reply::json(400, &invalid)]).await;
    let p = provider(&server);
    p.chat(&request()).await.unwrap();
    assert!(!p.schema_rejected());
    p.chat(&request()).await.unwrap();
    let sent: Vec<bool> = server
        .requests()
        .iter()
        .map(|r| r.body.as_ref().unwrap().get("response_format").is_some())
        .collect();
    assert_eq!(sent, [true, false, true]);
}

#[tokio::test]
async fn other_400s_and_explicit_modes_do_not_downgrade() {
    let unrelated = json!({"error": {"message": "model not found"}});
    let server = serve([Reply::json(400, &unrelated)]).await;
    let p = provider(&server);
    let e = p.chat(&request()).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Status { status: 400, .. }),
        "{e:?}"
    );
    assert!(!p.schema_rejected());
    assert_eq!(server.request_count(), 1);

    let rejection = json!({"error": {"message": "response_format is not supported"}});
    let server = serve([Reply::json(400, &rejection)]).await;
    let p = OpenAiCompatible::builder(server.base_url())
        .structured_output(StructuredOutput::JsonSchema)
        .build()
        .unwrap();
    let e = p.chat(&request()).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Status { status: 400, .. }),
        "{e:?}"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn switches_to_max_completion_tokens_when_the_server_asks() {
    let ask = json!({"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "type": "invalid_request_error"}});
    let server = serve([Reply::json(400, &ask)]).await;
    let p = provider(&server);
    p.chat(&request()).await.unwrap();
    p.chat(&request()).await.unwrap();
    let fields: Vec<(bool, bool)> = server
        .requests()
        .iter()
        .map(|r| {
            let b = r.body.as_ref().unwrap();
            (
                b.get("max_tokens").is_some(),
                b.get("max_completion_tokens") == Some(&json!(64)),
            )
        })
        .collect();
    assert_eq!(fields, [(true, false), (false, true), (false, true)]);

    let server = serve([]).await;
    let p = OpenAiCompatible::builder(server.base_url())
        .max_completion_tokens(true)
        .build()
        .unwrap();
    p.chat(&request()).await.unwrap();
    let body = server.requests()[0].body.clone().unwrap();
    assert_eq!(body["max_completion_tokens"], 64);
    assert!(body.get("max_tokens").is_none());
}

#[tokio::test]
async fn a_server_that_keeps_refusing_gets_at_most_three_requests() {
    let both =
        json!({"error": {"message": "response_format and max_tokens: use max_completion_tokens"}});
    let server = serve([
        Reply::json(400, &both),
        Reply::json(400, &both),
        Reply::json(400, &both),
        Reply::json(400, &both),
    ])
    .await;
    let e = provider(&server).chat(&request()).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Status { status: 400, .. }),
        "{e:?}"
    );
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn a_stalled_server_times_out() {
    let server = serve([Reply::fault(Fault::Stall), Reply::fault(Fault::Stall)]).await;
    let p = OpenAiCompatible::builder(server.base_url())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let e = p.chat(&request()).await.unwrap_err();
    assert_eq!(e, ProviderError::Timeout(Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(5));

    // Without a provider timeout, the engine's per-attempt tokio timeout bounds it.
    let p = provider(&server);
    let r = tokio::time::timeout(Duration::from_millis(300), p.chat(&request())).await;
    assert!(r.is_err(), "{r:?}");
}

#[tokio::test]
async fn a_slow_first_byte_within_the_timeout_is_fine() {
    let server = ChaosServer::builder()
        .script([
            Reply::fault(Fault::SlowFirstByte),
            Reply::fault(Fault::SlowFirstByte),
        ])
        .slow_first_byte(Duration::from_millis(400))
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    provider(&server).chat(&request()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    let p = OpenAiCompatible::builder(server.base_url())
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    assert!(matches!(
        p.chat(&request()).await,
        Err(ProviderError::Timeout(_))
    ));
}

#[tokio::test]
async fn a_connection_that_never_opens_hits_the_connect_timeout() {
    // A listener with a full accept queue: the kernel drops further SYNs, so connect() hangs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    let mut saturated = false;
    for _ in 0..16 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(100), connect).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => {
                saturated = true;
                break;
            }
        }
    }
    if !saturated {
        eprintln!(
            "this kernel accepts connections past the backlog; connect timeouts untestable here"
        );
        return;
    }
    let p = OpenAiCompatible::builder(format!("http://{addr}/v1"))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(20), p.chat(&request())).await;
    assert_eq!(
        r.expect("the connect timeout should have fired")
            .unwrap_err(),
        ProviderError::Timeout(Duration::from_millis(200))
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    drop((listener, fillers));
}

#[tokio::test]
async fn resets_and_refused_connections_are_connection_errors() {
    let e = error_for(Reply::fault(Fault::ConnectionReset)).await;
    assert!(matches!(e, ProviderError::Connection(_)), "{e:?}");
    assert!(e.is_retryable());

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let p = OpenAiCompatible::builder(format!("http://127.0.0.1:{port}/v1"))
        .api_key(KEY)
        .build()
        .unwrap();
    let e = p.chat(&request()).await.unwrap_err();
    assert!(matches!(e, ProviderError::Connection(_)), "{e:?}");
    assert!(!e.to_string().contains("127.0.0.1:"), "URL leaked: {e}");
}

#[tokio::test]
async fn unreadable_bodies_are_invalid_responses_that_say_why() {
    let cases = [
        (Reply::fault(Fault::InvalidUtf8), "not valid UTF-8"),
        (Reply::fault(Fault::TruncatedBody), "cut off"),
        (Reply::fault(Fault::NotJson), "<html>"),
        (Reply::fault(Fault::EmptyChoices), "no choices"),
        (
            Reply::status(200, "{\"choices\": [{\"message\": {\"con"),
            "not a chat completion",
        ),
        (Reply::status(200, ""), "(empty body)"),
    ];
    for (reply, expected) in cases {
        let e = error_for(reply.clone()).await;
        match &e {
            ProviderError::InvalidResponse(m) => {
                assert!(m.contains(expected), "{reply:?}: {m}");
                assert!(m.chars().count() < 600, "{reply:?}: too long");
            }
            other => panic!("{reply:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_body_nested_100000_deep_is_rejected_without_overflowing() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let e = error_for(Reply::status(200, deep)).await;
    assert!(matches!(e, ProviderError::InvalidResponse(_)), "{e:?}");

    // Deep nesting inside the content string is the output parser's business, not the provider's.
    let server = serve([Reply::fault(Fault::DeepNesting)]).await;
    let r = provider(&server).chat(&request()).await.unwrap();
    assert_eq!(r.content.len(), 200_000);
}

#[tokio::test]
async fn ten_megabyte_bodies_are_read_up_to_the_limit() {
    let server = serve([
        Reply::fault(Fault::HugeContent),
        Reply::fault(Fault::HugeContent),
    ])
    .await;
    let r = provider(&server).chat(&request()).await.unwrap();
    assert!(r.content.len() > HUGE_CONTENT_BYTES);

    let small = OpenAiCompatible::builder(server.base_url())
        .max_body_bytes(1024 * 1024)
        .build()
        .unwrap();
    match small.chat(&request()).await.unwrap_err() {
        ProviderError::InvalidResponse(m) => assert!(m.contains("limit of 1048576"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_api_key_never_appears_in_errors_or_debug_output() {
    let echo = json!({"error": {"message": format!("Incorrect API key provided: {KEY}.")}});
    let mut replies: Vec<Reply> = Fault::ALL
        .iter()
        .filter(|f| !matches!(f, Fault::Stall | Fault::SlowFirstByte))
        .map(|f| Reply::fault(*f))
        .collect();
    replies.push(Reply::json(401, &echo));
    replies.push(Reply::status(200, format!("not json {KEY}")));
    replies.push(Reply::status(500, format!("<p>{KEY}</p>")));
    let n = replies.len();
    let server = serve(replies).await;
    let p = provider(&server);
    let mut seen = 0;
    for _ in 0..n {
        let text = match p.chat(&request()).await {
            Ok(r) => format!("{r:?}"),
            Err(e) => {
                seen += 1;
                format!("{e} {e:?}")
            }
        };
        assert!(!text.contains(KEY), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }
    assert!(seen >= 12, "only {seen} errors");
    for r in server.requests() {
        assert!(!format!("{r:?}").contains(KEY));
    }
    let builder = OpenAiCompatible::builder(server.base_url()).api_key(KEY);
    assert!(!format!("{builder:?}").contains(KEY));
    assert!(format!("{p:?}").contains("[redacted]"));
    assert!(!format!("{p:?}").contains(KEY));
}

#[tokio::test]
async fn wrong_keys_are_refused_by_a_server_that_checks_them() {
    let server = ChaosServer::builder()
        .require_api_key(KEY)
        .start()
        .await
        .unwrap();
    let p = OpenAiCompatible::builder(server.base_url())
        .api_key("sk-wrong")
        .build()
        .unwrap();
    let e = p.chat(&request()).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Status { status: 401, .. }),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    provider(&server).chat(&request()).await.unwrap();
}

#[tokio::test]
async fn extra_headers_are_sent_and_never_printed() {
    let server = serve([]).await;
    let builder = OpenAiCompatible::builder(server.base_url())
        .header("OpenAI-Organization", "org-visible")
        .header("api-key", KEY);
    assert!(!format!("{builder:?}").contains(KEY));
    assert!(format!("{builder:?}").contains("api-key"));
    builder.build().unwrap().chat(&request()).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(r.header("openai-organization"), Some("org-visible"));
    assert_eq!(r.header("api-key"), Some("[redacted]"));
    let e = OpenAiCompatible::builder(server.base_url())
        .header("x-bad", format!("{KEY}\n"))
        .build()
        .unwrap_err();
    assert!(!e.0.contains(KEY), "{e}");
}

#[tokio::test]
async fn info_reports_name_address_and_port() {
    let server = serve([]).await;
    let p = OpenAiCompatible::builder(format!("{}/", server.base_url()))
        .name("vllm")
        .build()
        .unwrap();
    let info = p.info();
    assert_eq!(info.name, "vllm");
    assert_eq!(info.address.as_deref(), Some("127.0.0.1"));
    assert_eq!(info.port, Some(server.addr().port()));
    assert_eq!(provider(&server).info().name, "openai");
    p.chat(&request()).await.unwrap();
    assert_eq!(server.requests()[0].path, "/v1/chat/completions");
}

#[test]
fn bad_base_urls_and_keys_are_config_errors() {
    let e = OpenAiCompatible::builder("127.0.0.1:8089")
        .build()
        .unwrap_err();
    assert!(e.0.contains("not a valid URL"), "{e}");
    let e = OpenAiCompatible::builder("file:///etc/passwd")
        .build()
        .unwrap_err();
    assert!(e.0.contains("http or https"), "{e}");
    let e = OpenAiCompatible::builder("http://127.0.0.1/v1")
        .api_key("sk\r\nInjected: 1")
        .build()
        .unwrap_err();
    assert!(!e.0.contains("Injected"), "{e}");
}

/// Against the real local model that `scripts/local-model.sh` starts (llama-server on
/// 127.0.0.1:8089): run with `cargo test -p harness-core --features testing --test integration -- --ignored openai::`.
#[tokio::test]
#[ignore = "needs the local model from scripts/local-model.sh"]
async fn the_local_model_answers_with_json_following_the_schema() {
    let base = std::env::var("OPENAI_BASE_URL")
        .unwrap_or_else(|_| harness_core::engine::DEFAULT_OPENAI_BASE_URL.to_owned());
    let p = OpenAiCompatible::builder(base)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let mut req = request();
    req.model = std::env::var("HARNESS_MODEL").unwrap_or_else(|_| "smollm2-135m".into());
    req.messages = vec![
        Message::system(
            "Classify the review. Answer with JSON: {\"label\": string, \"score\": number}.",
        ),
        Message::user("Review: I love it, works perfectly."),
    ];
    let r = p.chat(&req).await.unwrap();
    assert!(
        !p.schema_rejected(),
        "llama-server should accept json_schema"
    );
    let v: Value =
        serde_json::from_str(&r.content).unwrap_or_else(|e| panic!("{e}: {}", r.content));
    assert!(v["label"].is_string() && v["score"].is_number(), "{v}");
    assert!(
        r.usage.input_tokens > 0 && r.usage.output_tokens > 0,
        "{:?}",
        r.usage
    );
    assert!(r.id.is_some() && r.model.is_some(), "{r:?}");
}
