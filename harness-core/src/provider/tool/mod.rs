//! Tool calling on the wire: the tools a request offers ([`ToolDefinition`], [`ToolChoice`]),
//! the calls a model answers with ([`ToolCall`]), and how a provider carries them
//! ([`ToolCalling`]: natively, or [prompted] through a JSON "next action" object for
//! servers without native tool calls).
//!
//! This layer only carries tool calls. Whether a call may run — the tool exists, was offered,
//! its scope is granted, its arguments fit its schema — is decided by [`crate::tools`], never
//! here and never by the model.

pub mod prompted;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::{canonical_json, hash_hex};

/// A tool a request offers to the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// The name the model calls it by (`[A-Za-z0-9_-]{1,64}` on every API).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// The JSON schema of its arguments (an object schema).
    pub parameters: Value,
}

impl ToolDefinition {
    /// A tool definition.
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        ToolDefinition {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }
}

/// Whether, and which, tool the model must call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the APIs' default).
    #[default]
    Auto,
    /// No tool call: answer in text.
    None,
    /// At least one tool call (OpenAI `required`, Anthropic `any`).
    Required,
    /// This tool.
    Tool(String),
}

/// How a provider carries tool calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolCalling {
    /// The API's own tool calls (OpenAI `tools`/`tool_calls`, Anthropic `tool_use`).
    #[default]
    Native,
    /// A JSON-schema-constrained "next action" object in the answer, for servers without native
    /// tool calls (see [`prompted`]).
    Prompted,
}

/// The arguments of a [`ToolCall`]: JSON, or the raw text when the model's arguments are not
/// JSON (kept, never a panic; the toolbox answers it as a tool error).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arguments {
    /// Parsed JSON.
    Json(Value),
    /// Text that is not JSON.
    Malformed {
        /// What the model sent.
        raw: String,
        /// Why it is not JSON.
        error: String,
    },
}

/// One tool call the model asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, which its result names (`tool_call_id`, Anthropic's `tool_use_id`).
    pub id: String,
    /// The tool's name, as the model wrote it.
    pub name: String,
    /// The arguments.
    pub arguments: Arguments,
}

impl ToolCall {
    /// A call with JSON arguments.
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: Value) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: Arguments::Json(arguments),
        }
    }

    /// A call whose arguments arrived as text (OpenAI's `function.arguments`): parsed as JSON;
    /// blank text is `{}`; anything else is kept as [`Arguments::Malformed`].
    pub fn from_text(id: impl Into<String>, name: impl Into<String>, text: &str) -> Self {
        let arguments = if text.trim().is_empty() {
            Arguments::Json(Value::Object(Default::default()))
        } else {
            match serde_json::from_str(text) {
                Ok(v) => Arguments::Json(v),
                Err(e) => Arguments::Malformed {
                    raw: text.to_owned(),
                    error: e.to_string(),
                },
            }
        };
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
        }
    }

    /// The JSON arguments, or `None` when they are malformed.
    pub fn json(&self) -> Option<&Value> {
        match &self.arguments {
            Arguments::Json(v) => Some(v),
            Arguments::Malformed { .. } => None,
        }
    }

    /// The arguments as text, as they go back on the wire: compact JSON with sorted keys, or the
    /// raw text the model sent.
    pub fn arguments_text(&self) -> String {
        match &self.arguments {
            Arguments::Json(v) => String::from_utf8(canonical_json(v)).unwrap_or_default(),
            Arguments::Malformed { raw, .. } => raw.clone(),
        }
    }

    /// The SHA-256 (lower-case hex) of the arguments' canonical JSON (keys sorted at every
    /// level, so `{"a":1,"b":2}` and `{"b":2,"a":1}` hash alike), or of the raw text when they
    /// are malformed. An approval names this hash.
    pub fn arguments_hash(&self) -> String {
        arguments_hash(&self.arguments)
    }
}

/// The SHA-256 of `arguments` as [`ToolCall::arguments_hash`] computes it.
pub fn arguments_hash(arguments: &Arguments) -> String {
    match arguments {
        Arguments::Json(v) => hash_hex(&canonical_json(v)),
        Arguments::Malformed { raw, .. } => hash_hex(raw.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_arguments_parse_or_are_kept() {
        let ok = ToolCall::from_text("c1", "lookup", r#"{"id": 7}"#);
        assert_eq!(ok.json(), Some(&json!({"id": 7})));
        let blank = ToolCall::from_text("c2", "ping", "  ");
        assert_eq!(blank.json(), Some(&json!({})));
        let bad = ToolCall::from_text("c3", "lookup", r#"{"id": 7"#);
        assert!(bad.json().is_none());
        assert_eq!(bad.arguments_text(), r#"{"id": 7"#);
        assert!(
            matches!(bad.arguments, Arguments::Malformed { ref error, .. } if error.contains("EOF"))
        );
    }

    #[test]
    fn the_hash_ignores_key_order_and_whitespace() {
        let a = ToolCall::from_text("1", "t", r#"{"b": [1, {"y": 2, "x": 1}], "a": "z"}"#);
        let b = ToolCall::new("2", "t", json!({"a": "z", "b": [1, {"x": 1, "y": 2}]}));
        assert_eq!(a.arguments_hash(), b.arguments_hash());
        assert_eq!(a.arguments_text(), r#"{"a":"z","b":[1,{"x":1,"y":2}]}"#);
        let c = ToolCall::new("3", "t", json!({"a": "z", "b": [1, {"x": 1, "y": 3}]}));
        assert_ne!(a.arguments_hash(), c.arguments_hash());
        assert_eq!(a.arguments_hash().len(), 64);
    }
}
