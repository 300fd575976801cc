//! The Anthropic provider against a real HTTP server on 127.0.0.1 (the chaos server, which answers
//! `/v1/messages` in the Messages format).

use std::time::Duration;

use harness_core::provider::{
    Anthropic, ChatRequest, FinishReason, Message, Provider, ProviderError, ResponseFormat,
};
use harness_core::testing::chaos::REFUSAL_TEXT;
use harness_core::testing::{ChaosServer, Fault, Reply};
use serde_json::{Value, json};

const KEY: &str = "sk-ant-chaos-SECRET-9876543210";

fn schema() -> Value {
    json!({
        "type": "object",
        "description": "The sentiment of a review.",
        "properties": {"label": {"type": "string"}, "score": {"type": "number"}},
        "required": ["label", "score"]
    })
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "claude-test".into(),
        messages: vec![
            Message::system("You classify."),
            Message::system("Answer in JSON."),
            Message::user("Review: great"),
        ],
        response_format: ResponseFormat::json_schema("Sentiment", schema()),
        temperature: Some(0.5),
        max_tokens: None,
        seed: Some(1),
        ..Default::default()
    }
}

fn provider(server: &ChaosServer) -> Anthropic {
    Anthropic::builder(KEY)
        .base_url(server.url())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn serve(replies: impl IntoIterator<Item = Reply>) -> ChaosServer {
    ChaosServer::builder()
        .script(replies)
        .require_api_key(KEY)
        .start()
        .await
        .unwrap()
}

async fn error_for(reply: Reply) -> ProviderError {
    let server = serve([reply]).await;
    provider(&server).chat(&request()).await.unwrap_err()
}

#[tokio::test]
async fn sends_the_messages_api_shape_with_a_forced_tool() {
    let server = serve([]).await;
    provider(&server).chat(&request()).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some("[redacted]"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("authorization"), None);
    let body = r.body.as_ref().unwrap();
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["system"], "You classify.\n\nAnswer in JSON.");
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "Review: great"}])
    );
    assert_eq!(
        body["tools"],
        json!([{"name": "Sentiment", "description": "The sentiment of a review.", "input_schema": schema()}])
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "Sentiment"})
    );
    assert!(body.get("seed").is_none());
}

#[tokio::test]
async fn the_tool_input_is_the_answer() {
    let server =
        serve([Reply::json_content(r#"{"label":"positive","score":0.9}"#).with_usage(21, 9)]).await;
    let r = provider(&server).chat(&request()).await.unwrap();
    let v: Value = serde_json::from_str(&r.content).unwrap();
    assert_eq!(v, json!({"label": "positive", "score": 0.9}));
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (21, 9));
    assert_eq!(r.id.as_deref(), Some("msg_chaos_0"));
    assert_eq!(r.model.as_deref(), Some("claude-test"));
}

#[tokio::test]
async fn a_hand_written_message_is_read() {
    let body = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "text", "text": "Let me record that."},
            {"type": "tool_use", "id": "toolu_1", "name": "Sentiment", "input": {"label": "negative", "score": 0.1}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 6}
    });
    let server = serve([Reply::json(200, &body)]).await;
    let r = provider(&server).chat(&request()).await.unwrap();
    assert_eq!(r.content, r#"{"label":"negative","score":0.1}"#);
    assert_eq!(r.id.as_deref(), Some("msg_01"));
    assert_eq!(r.usage.total(), 11);
}

/// Anthropic reports cached prompt tokens apart from `input_tokens`: the prompt is all three.
#[tokio::test]
async fn cache_reads_and_writes_are_input_tokens_too() {
    let body = json!({
        "id": "msg_1", "model": "claude-sonnet-4-20250514", "stop_reason": "tool_use",
        "content": [{"type": "tool_use", "id": "t", "name": "Sentiment", "input": {"label": "positive", "score": 1}}],
        "usage": {"input_tokens": 14, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 3000, "output_tokens": 40}
    });
    let server = serve([Reply::json(200, &body)]).await;
    let r = provider(&server).chat(&request()).await.unwrap();
    assert_eq!(
        r.usage,
        harness_core::Usage::new(4214, 40).with_cache(3000, 1200)
    );
    assert_eq!(r.usage.uncached_input_tokens(), 14);
    // The forced tool enforces the schema: the system prompt carries no copy of it.
    let sent = server.requests()[0].body.clone().unwrap();
    assert_eq!(sent["system"], "You classify.\n\nAnswer in JSON.");
}

#[tokio::test]
async fn non_object_schemas_are_wrapped_and_unwrapped() {
    let server = serve([Reply::json_content(r#""positive""#)]).await;
    let mut req = request();
    req.response_format = ResponseFormat::json_schema(
        "Label",
        json!({"type": "string", "enum": ["positive", "negative"]}),
    );
    let r = provider(&server).chat(&req).await.unwrap();
    assert_eq!(r.content, r#""positive""#);
    let body = server.requests()[0].body.clone().unwrap();
    assert_eq!(
        body["tools"][0]["input_schema"],
        json!({"type": "object", "properties": {"value": {"type": "string", "enum": ["positive", "negative"]}}, "required": ["value"]})
    );
}

#[tokio::test]
async fn text_requests_send_no_tools_and_read_text_blocks() {
    let server = serve([Reply::json_content("plain words")]).await;
    let mut req = request();
    req.response_format = ResponseFormat::Text;
    req.max_tokens = Some(77);
    let r = provider(&server).chat(&req).await.unwrap();
    assert_eq!(r.content, "plain words");
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    let body = server.requests()[0].body.clone().unwrap();
    assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
    assert_eq!(body["max_tokens"], 77);
}

#[tokio::test]
async fn stop_reasons_map_to_finish_reasons() {
    let server = serve([
        Reply::fault(Fault::Length),
        Reply::fault(Fault::Refusal),
        Reply::fault(Fault::ContentFilter),
    ])
    .await;
    let p = provider(&server);
    let r = p.chat(&request()).await.unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::Length));
    let r = p.chat(&request()).await.unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::ContentFilter));
    assert_eq!(r.content, REFUSAL_TEXT);
    let r = p.chat(&request()).await.unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::ContentFilter));
}

#[tokio::test]
async fn rate_limits_and_overload_are_rate_limited() {
    let e = error_for(Reply::fault(Fault::RateLimitedRetryAfter)).await;
    assert_eq!(
        e,
        ProviderError::RateLimited {
            status: 429,
            retry_after: Some(Duration::from_secs(1))
        }
    );
    let overloaded =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let e = error_for(Reply::json(529, &overloaded)).await;
    assert_eq!(
        e,
        ProviderError::RateLimited {
            status: 529,
            retry_after: None
        }
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn statuses_map_like_openai() {
    let e = error_for(Reply::fault(Fault::Http500)).await;
    assert!(
        matches!(&e, ProviderError::Status { status: 500, message } if message.contains("chaos")),
        "{e:?}"
    );
    assert!(e.is_retryable());
    for status in [400u16, 401, 403, 404] {
        let body = json!({"type": "error", "error": {"type": "invalid_request_error", "message": format!("bad {status}")}});
        let e = error_for(Reply::json(status, &body)).await;
        assert_eq!(
            e,
            ProviderError::Status {
                status,
                message: format!("bad {status}")
            }
        );
        assert!(!e.is_retryable());
    }
}

#[tokio::test]
async fn broken_bodies_and_stalls_are_errors() {
    for (fault, expected) in [
        (Fault::InvalidUtf8, "UTF-8"),
        (Fault::TruncatedBody, "cut off"),
        (Fault::NotJson, "not a message"),
    ] {
        match error_for(Reply::fault(fault)).await {
            ProviderError::InvalidResponse(m) => assert!(m.contains(expected), "{fault}: {m}"),
            other => panic!("{fault}: {other:?}"),
        }
    }
    let server = serve([Reply::fault(Fault::Stall)]).await;
    let p = Anthropic::builder(KEY)
        .base_url(server.url())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(
        p.chat(&request()).await.unwrap_err(),
        ProviderError::Timeout(Duration::from_millis(200))
    );
    let e = error_for(Reply::fault(Fault::ConnectionReset)).await;
    assert!(matches!(e, ProviderError::Connection(_)), "{e:?}");
}

#[tokio::test]
async fn the_key_is_checked_by_the_server_and_never_printed() {
    let server = serve([]).await;
    let wrong = Anthropic::builder("sk-ant-wrong")
        .base_url(server.url())
        .build()
        .unwrap();
    let e = wrong.chat(&request()).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Status { status: 401, .. }),
        "{e:?}"
    );

    let echo = json!({"type": "error", "error": {"type": "authentication_error", "message": format!("invalid x-api-key {KEY}")}});
    let e = error_for(Reply::json(401, &echo)).await;
    let text = format!("{e} {e:?}");
    assert!(!text.contains(KEY), "{text}");
    assert!(text.contains("[redacted]"), "{text}");

    let p = provider(&server);
    assert!(!format!("{p:?}").contains(KEY));
    assert!(!format!("{:?}", Anthropic::builder(KEY)).contains(KEY));
    assert_eq!(p.info().name, "anthropic");
    assert_eq!(p.info().port, Some(server.addr().port()));
    assert_eq!(p.info().address.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn the_wire_digest_is_of_the_exact_bytes_the_server_received() {
    let server = ChaosServer::start().await.unwrap();
    let p = provider(&server);
    let req = request();
    p.chat(&req).await.unwrap();
    let wire = p.wire_digest(&req).unwrap();
    let received = &server.requests()[0];
    assert_eq!(wire.body_sha256, received.body_sha256);
    assert_eq!(wire.body_bytes, received.body_len);
    // Another last question after the same system prompt, tool and turns: same prefix.
    let mut other = req.clone();
    if let Some(last) = other.messages.last_mut() {
        last.content.push_str(" (and one more thing)");
    }
    let other_wire = p.wire_digest(&other).unwrap();
    assert_ne!(other_wire.body_sha256, wire.body_sha256);
    assert_eq!(other_wire.prefix_sha256, wire.prefix_sha256);
}
