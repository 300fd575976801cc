//! Tool calls in the Chat Completions dialect: `tools`, `tool_choice`, the assistant's
//! `tool_calls` and `tool` messages in the request, and `message.tool_calls` in the answer
//! (several when the model calls tools in parallel).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

use crate::provider::{Arguments, Message, ToolCall, ToolChoice, ToolDefinition};

/// One message of the request body. Without tool fields it serializes as `{"role","content"}`,
/// byte for byte what it was before tools.
#[derive(Serialize)]
pub(super) struct BodyMessage<'a> {
    role: &'static str,
    /// `null` for an assistant turn that only calls tools.
    pub(super) content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    /// OpenAI sends and expects the arguments as a JSON string.
    arguments: String,
}

impl<'a> BodyMessage<'a> {
    /// A system message of its own (the schema's instruction when there is no system message).
    pub(super) fn system(text: Cow<'a, str>) -> Self {
        BodyMessage {
            role: "system",
            content: Some(text),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// The body form of `m`.
pub(super) fn body_message(m: &Message) -> BodyMessage<'_> {
    let calls_only = m.content.is_empty() && !m.tool_calls.is_empty();
    BodyMessage {
        role: m.role.as_str(),
        content: (!calls_only).then_some(Cow::Borrowed(m.content.as_str())),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| WireCall {
                id: &c.id,
                kind: "function",
                function: WireFunction {
                    name: &c.name,
                    arguments: c.arguments_text(),
                },
            })
            .collect(),
        tool_call_id: m.tool_call_id.as_deref(),
    }
}

/// `tools`, when the request offers any.
pub(super) fn tools(defs: &[ToolDefinition]) -> Option<Vec<Value>> {
    (!defs.is_empty()).then(|| {
        defs.iter()
            .map(|d| {
                json!({"type": "function", "function": {
                    "name": d.name, "description": d.description, "parameters": d.parameters,
                }})
            })
            .collect()
    })
}

/// `tool_choice`, when the request sets one.
pub(super) fn tool_choice(choice: Option<&ToolChoice>) -> Option<Value> {
    choice.map(|c| match c {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
    })
}

/// The calls in `message.tool_calls`, read leniently: a call without an id gets `call_{i}`,
/// without a name the empty name (which no tool has: the toolbox denies it), arguments given as
/// a JSON string are parsed (kept raw when they are not JSON), given as an object (Ollama) taken
/// as they are. Anything that is not a list is no calls.
pub(super) fn parse_calls(raw: Option<&Value>) -> Vec<ToolCall> {
    let Some(items) = raw.and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let id = item
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("call_{i}"), str::to_owned);
            let function = item.get("function");
            let name = function
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            match function.and_then(|f| f.get("arguments")) {
                Some(Value::String(text)) => ToolCall::from_text(id, name, text),
                None | Some(Value::Null) => ToolCall::new(id, name, json!({})),
                Some(v) => ToolCall {
                    id,
                    name: name.to_owned(),
                    arguments: Arguments::Json(v.clone()),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_read_leniently() {
        let raw = json!([
            {"id": "a", "type": "function", "function": {"name": "lookup", "arguments": "{\"id\":1}"}},
            {"function": {"name": "ping"}},
            {"id": "c", "function": {"name": "obj", "arguments": {"x": true}}},
            {"id": "d", "function": {"name": "bad", "arguments": "{nope"}},
            7,
        ]);
        let calls = parse_calls(Some(&raw));
        assert_eq!(calls.len(), 5);
        assert_eq!(calls[0], ToolCall::new("a", "lookup", json!({"id": 1})));
        assert_eq!(calls[1], ToolCall::new("call_1", "ping", json!({})));
        assert_eq!(calls[2].json(), Some(&json!({"x": true})));
        assert!(calls[3].json().is_none());
        assert_eq!(calls[4].name, "");
        assert!(parse_calls(Some(&json!({"not": "a list"}))).is_empty());
        assert!(parse_calls(None).is_empty());
    }

    #[test]
    fn plain_messages_serialize_as_before() {
        let m = Message::user("hi");
        assert_eq!(
            serde_json::to_string(&body_message(&m)).unwrap(),
            r#"{"role":"user","content":"hi"}"#
        );
        let call =
            Message::assistant_tool_calls("", vec![ToolCall::new("c1", "t", json!({"b":1,"a":2}))]);
        assert_eq!(
            serde_json::to_string(&body_message(&call)).unwrap(),
            r#"{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"t","arguments":"{\"a\":2,\"b\":1}"}}]}"#
        );
        let result = Message::tool_result("c1", "42");
        assert_eq!(
            serde_json::to_string(&body_message(&result)).unwrap(),
            r#"{"role":"tool","content":"42","tool_call_id":"c1"}"#
        );
    }
}
