//! Tool calls in the Messages API: `tools` and `tool_choice`, an assistant turn's `tool_use`
//! blocks, tool results as `tool_result` blocks of a user turn (consecutive results in one
//! turn, as parallel calls need), and `tool_use` blocks in the answer.

use serde_json::{Value, json};

use crate::provider::{ChatRequest, Message, Role, ToolCall, ToolChoice};

/// The `messages` of the body: system messages left out (they go in `system`); a message without
/// tool fields is `{"role","content"}` as before tools.
pub(super) fn messages(request: &ChatRequest) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut results: Vec<Value> = Vec::new();
    for m in request.messages.iter().filter(|m| m.role != Role::System) {
        if m.role == Role::Tool {
            results.push(json!({
                "type": "tool_result",
                "tool_use_id": m.tool_call_id.as_deref().unwrap_or_default(),
                "content": m.content,
            }));
            continue;
        }
        if !results.is_empty() {
            out.push(json!({"role": "user", "content": std::mem::take(&mut results)}));
        }
        out.push(message(m));
    }
    if !results.is_empty() {
        out.push(json!({"role": "user", "content": results}));
    }
    out
}

fn message(m: &Message) -> Value {
    if m.tool_calls.is_empty() {
        return json!({"role": m.role.as_str(), "content": m.content});
    }
    let mut blocks = Vec::new();
    if !m.content.is_empty() {
        blocks.push(json!({"type": "text", "text": m.content}));
    }
    for c in &m.tool_calls {
        // Malformed arguments (from another provider's turn) cannot be an `input` object.
        let input = c.json().cloned().unwrap_or_else(|| json!({}));
        blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}));
    }
    json!({"role": "assistant", "content": blocks})
}

/// Adds `tools` and `tool_choice` when the request offers tools.
pub(super) fn add_tools(body: &mut Value, request: &ChatRequest) {
    if request.tools.is_empty() {
        return;
    }
    body["tools"] = request
        .tools
        .iter()
        .map(
            |t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}),
        )
        .collect();
    if let Some(choice) = &request.tool_choice {
        body["tool_choice"] = match choice {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
        };
    }
}

/// The answer's `tool_use` blocks, except the forced structured-output tool `forced`.
pub(super) fn calls(blocks: &[super::Block], forced: Option<&str>) -> Vec<ToolCall> {
    blocks
        .iter()
        .filter(|b| b.kind.as_deref() == Some("tool_use"))
        .filter(|b| forced.is_none() || b.name.as_deref() != forced)
        .enumerate()
        .map(|(i, b)| {
            ToolCall::new(
                b.id.clone().unwrap_or_else(|| format!("toolu_{i}")),
                b.name.clone().unwrap_or_default(),
                b.input.clone().unwrap_or_else(|| json!({})),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_results_share_one_user_turn() {
        let request = ChatRequest {
            messages: vec![
                Message::system("s"),
                Message::user("u"),
                Message::assistant_tool_calls(
                    "checking",
                    vec![
                        ToolCall::new("t1", "a", json!({"x": 1})),
                        ToolCall::from_text("t2", "b", "{oops"),
                    ],
                ),
                Message::tool_result("t1", "one"),
                Message::tool_result("t2", "two"),
                Message::user("thanks"),
            ],
            ..ChatRequest::default()
        };
        let m = messages(&request);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0], json!({"role": "user", "content": "u"}));
        assert_eq!(
            m[1]["content"],
            json!([{"type": "text", "text": "checking"},
                   {"type": "tool_use", "id": "t1", "name": "a", "input": {"x": 1}},
                   {"type": "tool_use", "id": "t2", "name": "b", "input": {}}])
        );
        assert_eq!(
            m[2],
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "one"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "two"}]})
        );
        assert_eq!(m[3], json!({"role": "user", "content": "thanks"}));
    }
}
