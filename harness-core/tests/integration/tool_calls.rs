//! Tool calls through the providers, against the chaos server on 127.0.0.1: what goes on the
//! wire (OpenAI `tools`/`tool_calls`/`tool` messages, Anthropic `tool_use`/`tool_result`
//! blocks), what comes back (parallel calls, malformed arguments kept), prompted tools for servers
//! without native ones, and the scripted provider.

use std::time::Duration;

use harness_core::provider::scripted::Scripted;
use harness_core::provider::tool::prompted;
use harness_core::provider::{
    Anthropic, Arguments, ChatRequest, FinishReason, Message, OpenAiCompatible, Provider,
    ResponseFormat, ToolCall, ToolCalling, ToolChoice, ToolDefinition,
};
use harness_core::testing::{ChaosServer, Reply};
use serde_json::{Value, json};

fn lookup() -> ToolDefinition {
    ToolDefinition::new(
        "lookup_order",
        "Looks up an order by id.",
        json!({"type": "object", "properties": {"order_id": {"type": "string"}},
               "required": ["order_id"], "additionalProperties": false}),
    )
}

fn refund() -> ToolDefinition {
    ToolDefinition::new(
        "refund",
        "Refunds an order.",
        json!({"type": "object", "properties": {"order_id": {"type": "string"}, "cents": {"type": "integer"}},
               "required": ["order_id", "cents"]}),
    )
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![
            Message::system("You help customers."),
            Message::user("Where is order A-1?"),
        ],
        tools: vec![lookup(), refund()],
        ..ChatRequest::default()
    }
}

/// The request after one round: the assistant's call and its result.
fn second_round() -> ChatRequest {
    let mut r = request();
    r.messages.push(Message::assistant_tool_calls(
        "",
        vec![ToolCall::new(
            "call_1",
            "lookup_order",
            json!({"order_id": "A-1"}),
        )],
    ));
    r.messages
        .push(Message::tool_result("call_1", r#"{"status":"shipped"}"#));
    r
}

async fn serve(replies: impl IntoIterator<Item = Reply>) -> ChaosServer {
    ChaosServer::builder()
        .script(replies)
        .start()
        .await
        .unwrap()
}

fn openai(server: &ChaosServer, mode: ToolCalling) -> OpenAiCompatible {
    OpenAiCompatible::builder(server.base_url())
        .timeout(Duration::from_secs(10))
        .tool_calling(mode)
        .build()
        .unwrap()
}

fn anthropic(server: &ChaosServer) -> Anthropic {
    Anthropic::builder("k")
        .base_url(server.url())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn body(server: &ChaosServer, i: usize) -> Value {
    server.requests()[i].body.clone().unwrap()
}

#[tokio::test]
async fn openai_sends_tools_and_reads_parallel_calls() {
    let server = serve([Reply::tool_calls([
        ("lookup_order", json!({"order_id": "A-1"})),
        ("refund", json!({"order_id": "A-1", "cents": 500})),
    ])])
    .await;
    let p = openai(&server, ToolCalling::Native);
    assert_eq!(p.tool_calling(), ToolCalling::Native);
    let mut req = request();
    req.tool_choice = Some(ToolChoice::Required);
    let r = p.chat(&req).await.unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        r.tool_calls,
        vec![
            ToolCall::new("call_chaos_0_0", "lookup_order", json!({"order_id": "A-1"})),
            ToolCall::new(
                "call_chaos_0_1",
                "refund",
                json!({"order_id": "A-1", "cents": 500})
            ),
        ]
    );
    let b = body(&server, 0);
    assert_eq!(
        b["tools"][0],
        json!({"type": "function", "function": {"name": "lookup_order",
            "description": "Looks up an order by id.", "parameters": lookup().parameters}})
    );
    assert_eq!(b["tools"].as_array().unwrap().len(), 2);
    assert_eq!(b["tool_choice"], "required");
}

#[tokio::test]
async fn openai_sends_the_tool_turns_back() {
    let server = serve([Reply::json_content("It shipped.")]).await;
    let mut req = second_round();
    req.tool_choice = Some(ToolChoice::Tool("lookup_order".into()));
    let r = openai(&server, ToolCalling::Native)
        .chat(&req)
        .await
        .unwrap();
    assert_eq!(r.content, "It shipped.");
    assert!(r.tool_calls.is_empty());
    let b = body(&server, 0);
    assert_eq!(
        b["messages"][2],
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "lookup_order", "arguments": "{\"order_id\":\"A-1\"}"}}]})
    );
    assert_eq!(
        b["messages"][3],
        json!({"role": "tool", "content": "{\"status\":\"shipped\"}", "tool_call_id": "call_1"})
    );
    assert_eq!(
        b["tool_choice"],
        json!({"type": "function", "function": {"name": "lookup_order"}})
    );
}

#[tokio::test]
async fn a_request_without_tools_has_no_tool_fields_on_the_wire() {
    let server = serve([]).await;
    let req = ChatRequest {
        tools: vec![],
        ..request()
    };
    openai(&server, ToolCalling::Native)
        .chat(&req)
        .await
        .unwrap();
    let b = body(&server, 0);
    assert!(b.get("tools").is_none() && b.get("tool_choice").is_none());
    assert_eq!(
        b["messages"][1],
        json!({"role": "user", "content": "Where is order A-1?"})
    );
    // And the fingerprint is the one of the same request before tools existed.
    let fingerprint_json = serde_json::to_value(&req).unwrap();
    assert!(fingerprint_json.get("tools").is_none());
    assert!(fingerprint_json.get("tool_choice").is_none());
    assert!(fingerprint_json["messages"][0].get("tool_calls").is_none());
}

#[tokio::test]
async fn malformed_arguments_are_kept_not_a_failure() {
    let server = serve([Reply::tool_call_texts([
        ("lookup_order", "{\"order_id\": \"A-1\""),
        ("refund", ""),
    ])])
    .await;
    let r = openai(&server, ToolCalling::Native)
        .chat(&request())
        .await
        .unwrap();
    assert_eq!(r.tool_calls.len(), 2);
    match &r.tool_calls[0].arguments {
        Arguments::Malformed { raw, error } => {
            assert_eq!(raw, "{\"order_id\": \"A-1\"");
            assert!(!error.is_empty());
        }
        other => panic!("expected malformed arguments, got {other:?}"),
    }
    assert_eq!(r.tool_calls[1].json(), Some(&json!({})));
}

#[tokio::test]
async fn anthropic_sends_tools_and_reads_tool_use_blocks() {
    let server = serve([Reply::tool_calls([
        ("lookup_order", json!({"order_id": "A-1"})),
        ("refund", json!({"order_id": "A-1", "cents": 1})),
    ])])
    .await;
    let mut req = request();
    req.tool_choice = Some(ToolChoice::Required);
    // A response format too: with tools offered, no output tool is forced.
    req.response_format = ResponseFormat::json_schema("Answer", json!({"type": "object"}));
    let r = anthropic(&server).chat(&req).await.unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        r.tool_calls,
        vec![
            ToolCall::new(
                "toolu_chaos_0_0",
                "lookup_order",
                json!({"order_id": "A-1"})
            ),
            ToolCall::new(
                "toolu_chaos_0_1",
                "refund",
                json!({"order_id": "A-1", "cents": 1})
            ),
        ]
    );
    let b = body(&server, 0);
    assert_eq!(
        b["tools"][0],
        json!({"name": "lookup_order", "description": "Looks up an order by id.",
               "input_schema": lookup().parameters})
    );
    assert_eq!(
        b["tools"].as_array().unwrap().len(),
        2,
        "no forced output tool"
    );
    assert_eq!(b["tool_choice"], json!({"type": "any"}));
}

#[tokio::test]
async fn anthropic_sends_tool_results_as_blocks() {
    let server = serve([Reply::json_content("It shipped.")]).await;
    let r = anthropic(&server).chat(&second_round()).await.unwrap();
    assert_eq!(r.content, "It shipped.");
    let b = body(&server, 0);
    assert_eq!(b["system"], "You help customers.");
    assert_eq!(
        b["messages"][1],
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": "call_1",
            "name": "lookup_order", "input": {"order_id": "A-1"}}]})
    );
    assert_eq!(
        b["messages"][2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1",
            "content": "{\"status\":\"shipped\"}"}]})
    );
}

#[tokio::test]
async fn prompted_tools_go_as_a_next_action_schema_and_come_back_as_calls() {
    let server = serve([
        Reply::json_content(
            r#"{"action":"call_tool","tool":"lookup_order","arguments":{"order_id":"A-1"}}"#,
        ),
        Reply::json_content(r#"{"action":"final","answer":"Order A-1 has shipped."}"#),
    ])
    .await;
    let p = openai(&server, ToolCalling::Prompted);
    assert_eq!(p.tool_calling(), ToolCalling::Prompted);
    let first = p.chat(&request()).await.unwrap();
    assert_eq!(
        first.tool_calls,
        vec![ToolCall::new(
            "call_1",
            "lookup_order",
            json!({"order_id": "A-1"})
        )]
    );
    assert_eq!(first.finish_reason, Some(FinishReason::ToolCalls));
    let b = body(&server, 0);
    assert!(b.get("tools").is_none(), "no native tools on the wire");
    assert_eq!(
        b["response_format"]["json_schema"]["name"],
        prompted::SCHEMA_NAME
    );
    let branches = b["response_format"]["json_schema"]["schema"]["anyOf"]
        .as_array()
        .unwrap();
    assert_eq!(branches.len(), 3, "two tools and the final answer");
    let system = b["messages"][0]["content"].as_str().unwrap();
    assert!(system.starts_with("You help customers.\n\nYou can use tools."));
    assert!(system.contains("- refund: Refunds an order."));

    let last = p.chat(&second_round()).await.unwrap();
    assert!(last.tool_calls.is_empty());
    assert_eq!(last.content, "Order A-1 has shipped.");
    let b = body(&server, 1);
    assert_eq!(
        b["messages"][3],
        json!({"role": "user", "content": "Result of tool `lookup_order` (call call_1):\n{\"status\":\"shipped\"}"})
    );
    assert!(
        b["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m.get("tool_calls").is_none() && m["role"] != "tool")
    );
}

#[tokio::test]
async fn a_prompted_answer_that_is_no_action_passes_through() {
    let server = serve([Reply::json_content("Sorry, I cannot help.")]).await;
    let r = openai(&server, ToolCalling::Prompted)
        .chat(&request())
        .await
        .unwrap();
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.content, "Sorry, I cannot help.");
}

#[tokio::test]
async fn scripted_scripts_native_and_prompted_calls() {
    let native = Scripted::new().tool_calls([ToolCall::new("c1", "refund", json!({"cents": 1}))]);
    let r = native.chat(&request()).await.unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(r.tool_calls[0].name, "refund");
    assert_eq!(native.requests()[0].tools.len(), 2);

    let p = Scripted::new().prompted().reply(
        r#"{"action":"call_tool","tool":"refund","arguments":{"order_id":"A-1","cents":5}}"#,
    );
    assert_eq!(p.tool_calling(), ToolCalling::Prompted);
    let r = p.chat(&request()).await.unwrap();
    assert_eq!(
        r.tool_calls,
        vec![ToolCall::new(
            "call_1",
            "refund",
            json!({"order_id": "A-1", "cents": 5})
        )]
    );
}
