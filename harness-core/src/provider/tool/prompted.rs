//! Prompted tool calls, for servers without native ones (llama.cpp's server without `--jinja`,
//! small local models such as SmolLM2): the tools are described in the system prompt, the answer
//! is constrained by a JSON schema to one "next action" object,
//!
//! ```json
//! {"action": "call_tool", "tool": "lookup_order", "arguments": {"order_id": "A-1"}}
//! {"action": "final", "answer": "Your order ships tomorrow."}
//! ```
//!
//! and a `call_tool` object comes back as a [`ToolCall`] in [`ChatResponse::tool_calls`], so the
//! code above the provider sees the same thing from every server. The conversation's tool turns
//! are written as text: an assistant turn that called tools as its "next action" objects, a tool
//! result as a user message naming the tool and the call.
//!
//! An answer that is not a readable "next action" is passed up as it is (no tool calls): the
//! engine's output checks then treat it like any other invalid answer.

use serde_json::{Value, json};

use super::{ToolCall, ToolChoice, ToolDefinition};
use crate::output::SchemaValidator;
use crate::output::parse::{ParseLimits, parse};
use crate::provider::{ChatRequest, ChatResponse, FinishReason, Message, ResponseFormat, Role};

/// The name of the "next action" response format.
pub const SCHEMA_NAME: &str = "next_action";

/// The JSON schema of the "next action" object: one `call_tool` branch per tool the model may call
/// (its name a `const`, its `arguments` the tool's schema) and, unless a tool call is required, a
/// `final` branch whose `answer` follows `answer`.
pub fn next_action_schema(
    tools: &[ToolDefinition],
    choice: Option<&ToolChoice>,
    answer: &Value,
) -> Value {
    let mut branches: Vec<Value> = offered(tools, choice)
        .map(|t| {
            json!({
                "type": "object",
                "properties": {
                    "action": {"const": "call_tool"},
                    "tool": {"const": t.name},
                    "arguments": t.parameters,
                },
                "required": ["action", "tool", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    if may_answer(choice) {
        branches.push(json!({
            "type": "object",
            "properties": {"action": {"const": "final"}, "answer": answer},
            "required": ["action", "answer"],
            "additionalProperties": false,
        }));
    }
    json!({"anyOf": branches})
}

/// The system prompt's paragraph that describes the tools and the "next action" object.
pub fn instruction(tools: &[ToolDefinition], choice: Option<&ToolChoice>) -> String {
    let mut text = String::from(
        "You can use tools. Reply with exactly one JSON object and nothing else:\n\
         {\"action\": \"call_tool\", \"tool\": \"<tool name>\", \"arguments\": {...}} to call a tool \
         (its result comes back in the next message)",
    );
    if may_answer(choice) {
        text.push_str(",\nor {\"action\": \"final\", \"answer\": ...} when you have the answer");
    }
    text.push_str(".\nTools:");
    for t in offered(tools, choice) {
        text.push_str(&format!(
            "\n- {}: {} Arguments (JSON schema): {}",
            t.name, t.description, t.parameters
        ));
    }
    text
}

fn offered<'a>(
    tools: &'a [ToolDefinition],
    choice: Option<&'a ToolChoice>,
) -> impl Iterator<Item = &'a ToolDefinition> {
    tools.iter().filter(move |t| match choice {
        Some(ToolChoice::Tool(name)) => &t.name == name,
        _ => true,
    })
}

fn may_answer(choice: Option<&ToolChoice>) -> bool {
    !matches!(choice, Some(ToolChoice::Required | ToolChoice::Tool(_)))
}

/// A request rewritten for a server without native tools, and how to read its answer.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// What is sent: no tools, tool turns as text, and (when a next action is expected) the
    /// "next action" schema as the response format and its instruction in the system prompt.
    pub request: ChatRequest,
    /// Whether the answer is a "next action" object (false when `tool_choice` is `none`).
    expects_action: bool,
    /// Whether the final answer is free text (a string `answer` becomes the content as it is).
    text_answer: bool,
    /// The number of the next call id (`call_{n}`), after the conversation's calls.
    next_call: usize,
}

/// Rewrites `request` for prompted tools; `None` when it has neither tools nor tool turns (then it
/// goes as it is).
pub fn lower(request: &ChatRequest) -> Option<Lowered> {
    let tool_turns = request
        .messages
        .iter()
        .any(|m| !m.tool_calls.is_empty() || m.role == Role::Tool);
    if request.tools.is_empty() && !tool_turns {
        return None;
    }
    let choice = request.tool_choice.as_ref();
    let expects_action = !request.tools.is_empty() && choice != Some(&ToolChoice::None);
    let mut messages = rewrite_turns(&request.messages);
    let mut lowered = ChatRequest {
        messages: Vec::new(),
        tools: Vec::new(),
        tool_choice: None,
        ..request.clone()
    };
    let text_answer = matches!(request.response_format, ResponseFormat::Text);
    if expects_action {
        let answer = match &request.response_format {
            ResponseFormat::JsonSchema { schema, .. } => serde_json::Value::clone(schema),
            ResponseFormat::Text => json!({"type": "string"}),
        };
        let paragraph = instruction(&request.tools, choice);
        match messages.iter_mut().find(|m| m.role == Role::System) {
            Some(system) => {
                system.content.push_str("\n\n");
                system.content.push_str(&paragraph);
            }
            None => messages.insert(0, Message::system(paragraph)),
        }
        lowered.response_format = ResponseFormat::json_schema(
            SCHEMA_NAME,
            next_action_schema(&request.tools, choice, &answer),
        );
    }
    lowered.messages = messages;
    let next_call = request
        .messages
        .iter()
        .map(|m| m.tool_calls.len())
        .sum::<usize>()
        + 1;
    Some(Lowered {
        request: lowered,
        expects_action,
        text_answer,
        next_call,
    })
}

/// The conversation with its tool turns written as text.
fn rewrite_turns(messages: &[Message]) -> Vec<Message> {
    messages
        .iter()
        .map(|m| {
            if !m.tool_calls.is_empty() {
                let mut parts: Vec<String> = Vec::new();
                if !m.content.is_empty() {
                    parts.push(m.content.clone());
                }
                for c in &m.tool_calls {
                    parts.push(format!(
                        "{{\"action\":\"call_tool\",\"tool\":{},\"arguments\":{}}}",
                        Value::from(c.name.as_str()),
                        c.arguments_text()
                    ));
                }
                Message::assistant(parts.join("\n"))
            } else if m.role == Role::Tool {
                let id = m.tool_call_id.as_deref().unwrap_or("?");
                let name = messages
                    .iter()
                    .flat_map(|m| &m.tool_calls)
                    .find(|c| c.id == id)
                    .map_or("?", |c| c.name.as_str());
                Message::user(format!(
                    "Result of tool `{name}` (call {id}):\n{}",
                    m.content
                ))
            } else {
                m.clone()
            }
        })
        .collect()
}

/// What a "next action" object asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum NextAction {
    /// Call `tool` with `arguments`.
    CallTool {
        /// The tool's name.
        tool: String,
        /// Its arguments (`{}` when the object has none).
        arguments: Value,
    },
    /// The final answer.
    Final(Value),
}

/// Reads a "next action" object from `text` with the lenient parser (fences, prose around it,
/// the usual repairs); `None` when there is none.
pub fn parse_action(text: &str) -> Option<NextAction> {
    let schema = SchemaValidator::new(json!({
        "type": "object",
        "properties": {"action": {"enum": ["call_tool", "final"]}},
        "required": ["action"],
    }));
    let value = parse(text, &schema, &ParseLimits::default()).ok()?.value;
    match value.get("action").and_then(Value::as_str)? {
        "call_tool" => Some(NextAction::CallTool {
            tool: value.get("tool")?.as_str()?.to_owned(),
            arguments: value.get("arguments").cloned().unwrap_or_else(|| json!({})),
        }),
        "final" => Some(NextAction::Final(
            value.get("answer").cloned().unwrap_or(Value::Null),
        )),
        _ => None,
    }
}

impl Lowered {
    /// The server's answer as the caller expects it: a `call_tool` object becomes one
    /// [`ToolCall`] (id `call_{n}`, counting the conversation's calls, finish reason
    /// `tool_calls`, empty content); a `final` object its answer (a string as it is when the
    /// request wanted text, otherwise JSON); anything else is left as it is.
    pub fn raise(&self, mut response: ChatResponse) -> ChatResponse {
        if !self.expects_action {
            return response;
        }
        match parse_action(&response.content) {
            Some(NextAction::CallTool { tool, arguments }) => {
                response.tool_calls = vec![ToolCall::new(
                    format!("call_{}", self.next_call),
                    tool,
                    arguments,
                )];
                response.content = String::new();
                response.finish_reason = Some(FinishReason::ToolCalls);
            }
            Some(NextAction::Final(answer)) => {
                response.content = match answer {
                    Value::String(s) if self.text_answer => s,
                    other => other.to_string(),
                };
            }
            None => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup() -> ToolDefinition {
        ToolDefinition::new(
            "lookup_order",
            "Looks up an order.",
            json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}),
        )
    }

    fn request() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![Message::system("You help."), Message::user("Where is A-1?")],
            tools: vec![lookup()],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn the_schema_has_a_branch_per_tool_and_one_final() {
        let s = next_action_schema(&[lookup()], None, &json!({"type": "string"}));
        let branches = s["anyOf"].as_array().unwrap();
        assert_eq!(branches.len(), 2);
        assert_eq!(
            branches[0]["properties"]["tool"],
            json!({"const": "lookup_order"})
        );
        assert_eq!(
            branches[1]["properties"]["action"],
            json!({"const": "final"})
        );
        let v = SchemaValidator::new(s);
        assert!(v.is_valid(&json!({"action": "call_tool", "tool": "lookup_order", "arguments": {"order_id": "A-1"}})));
        assert!(
            !v.is_valid(&json!({"action": "call_tool", "tool": "delete_account", "arguments": {}}))
        );
        assert!(v.is_valid(&json!({"action": "final", "answer": "ok"})));
        let required = next_action_schema(&[lookup()], Some(&ToolChoice::Required), &json!({}));
        assert_eq!(required["anyOf"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn lowering_moves_tools_into_the_prompt_and_the_schema() {
        let l = lower(&request()).unwrap();
        assert!(l.request.tools.is_empty());
        assert!(
            l.request.messages[0]
                .content
                .starts_with("You help.\n\nYou can use tools.")
        );
        assert!(
            l.request.messages[0]
                .content
                .contains("- lookup_order: Looks up an order.")
        );
        assert!(
            matches!(&l.request.response_format, ResponseFormat::JsonSchema { name, .. } if name == SCHEMA_NAME)
        );
        let plain = ChatRequest {
            tools: vec![],
            ..request()
        };
        assert!(lower(&plain).is_none());
    }

    #[test]
    fn tool_turns_become_text() {
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
        let l = lower(&r).unwrap();
        let m = &l.request.messages;
        assert_eq!(m[2].role, Role::Assistant);
        assert_eq!(
            m[2].content,
            r#"{"action":"call_tool","tool":"lookup_order","arguments":{"order_id":"A-1"}}"#
        );
        assert_eq!(m[3].role, Role::User);
        assert_eq!(
            m[3].content,
            "Result of tool `lookup_order` (call call_1):\n{\"status\":\"shipped\"}"
        );
        assert!(
            m.iter()
                .all(|m| m.tool_calls.is_empty() && m.tool_call_id.is_none())
        );
        assert_eq!(l.next_call, 2);
    }

    #[test]
    fn answers_are_raised_into_tool_calls_or_the_final_answer() {
        let l = lower(&request()).unwrap();
        let call = l.raise(ChatResponse {
            content: "```json\n{\"action\": \"call_tool\", \"tool\": \"lookup_order\", \"arguments\": {\"order_id\": \"A-1\"}}\n```".into(),
            ..ChatResponse::default()
        });
        assert_eq!(
            call.tool_calls,
            vec![ToolCall::new(
                "call_1",
                "lookup_order",
                json!({"order_id": "A-1"})
            )]
        );
        assert_eq!(call.finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(call.content, "");
        let done = l.raise(ChatResponse {
            content: r#"{"action":"final","answer":"It shipped."}"#.into(),
            ..ChatResponse::default()
        });
        assert!(done.tool_calls.is_empty());
        assert_eq!(done.content, "It shipped.");
        let prose = l.raise(ChatResponse {
            content: "I think it shipped.".into(),
            ..ChatResponse::default()
        });
        assert_eq!(prose.content, "I think it shipped.");
        assert!(prose.tool_calls.is_empty());
    }
}
