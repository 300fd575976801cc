//! [`Anthropic`]: the Messages API (`POST {base}/v1/messages`).
//!
//! Structured output forces a tool whose `input_schema` is the output schema; the `tool_use`
//! block's `input`, serialized, becomes the answer's content.

use std::fmt;

use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Dialect, HttpClient, HttpOptions, Secret};
use super::{
    BoxFuture, ChatRequest, ChatResponse, FinishReason, Provider, ProviderError, ProviderInfo,
    ResponseFormat, Role, Usage, WireDigest,
};
use crate::error::ConfigError;

mod tools;

/// The API version sent in `anthropic-version`.
pub const API_VERSION: &str = "2023-06-01";

/// The base URL used when none is given.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// `max_tokens` when the request does not set it (the API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The property a non-object schema is wrapped in (tool inputs must be objects).
const WRAP_KEY: &str = "value";

/// A provider for Anthropic's Messages API.
///
/// ```no_run
/// # fn demo() -> Result<(), harness_core::ConfigError> {
/// use harness_core::provider::anthropic::Anthropic;
/// let claude = Anthropic::builder(std::env::var("ANTHROPIC_API_KEY").unwrap_or_default()).build()?;
/// # Ok(()) }
/// ```
pub struct Anthropic {
    http: HttpClient,
    default_max_tokens: u32,
}

/// The Messages API on the wire.
static DIALECT: Dialect = Dialect {
    base_url_label: "the Anthropic base URL",
    api_key_label: "the Anthropic API key",
    path: "v1/messages",
    auth: ("x-api-key", ""),
    headers: &[("anthropic-version", API_VERSION)],
    rate_limited: &[429, 529],
};

impl fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Anthropic");
        self.http.debug_fields(&mut d);
        d.finish_non_exhaustive()
    }
}

/// Builds an [`Anthropic`] provider.
#[derive(Clone)]
pub struct AnthropicBuilder {
    http: HttpOptions,
    default_max_tokens: u32,
}

impl fmt::Debug for AnthropicBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AnthropicBuilder");
        self.http.debug_fields(&mut d);
        d.finish_non_exhaustive()
    }
}

impl Anthropic {
    /// A builder with the API key (sent as `x-api-key`).
    pub fn builder(api_key: impl Into<String>) -> AnthropicBuilder {
        AnthropicBuilder {
            http: HttpOptions::new(
                DEFAULT_BASE_URL.to_owned(),
                Secret::new(api_key.into()),
                "anthropic",
            ),
            default_max_tokens: DEFAULT_MAX_TOKENS,
        }
    }

    /// The JSON body for `request`, and the forced tool's name and whether its schema was wrapped.
    fn body(&self, request: &ChatRequest) -> (Value, Option<(String, bool)>) {
        // With tools offered there is no forced output tool, so the schema's instruction rides in
        // the system prompt.
        let with_instruction = (!request.tools.is_empty()).then(|| request.prompted_messages());
        let system_source = with_instruction.as_deref().unwrap_or(&request.messages);
        let system: Vec<&str> = system_source
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let messages = tools::messages(request);
        let mut body = json!({
            "model": request.model,
            "max_tokens": request.max_tokens.unwrap_or(self.default_max_tokens),
            "messages": messages,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        let mut tool = None;
        // With tools offered, the model must be free to call them: no forced output tool (the
        // schema's instruction goes in the system prompt instead).
        if let (ResponseFormat::JsonSchema { name, schema, .. }, true) =
            (&request.response_format, request.tools.is_empty())
        {
            let tool_name = http::schema_name(name);
            let is_object = schema.get("type") == Some(&json!("object"));
            let input_schema = if is_object {
                Value::clone(schema)
            } else {
                json!({"type": "object", "properties": {WRAP_KEY: **schema}, "required": [WRAP_KEY]})
            };
            let description = schema
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("Records the answer in the required JSON structure.");
            body["tools"] = json!([{
                "name": tool_name,
                "description": description,
                "input_schema": input_schema,
            }]);
            body["tool_choice"] = json!({"type": "tool", "name": tool_name});
            tool = Some((tool_name, !is_object));
        }
        tools::add_tools(&mut body, request);
        (body, tool)
    }

    async fn chat_inner(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let (body, tool) = self.body(request);
        let response = self.http.success(self.http.post(&body).await?)?;
        parse_response(&response.body, tool.as_ref().map(|(n, w)| (n.as_str(), *w)))
            .map_err(|e| self.http.scrubbed(e))
    }
}

impl AnthropicBuilder {
    /// The base URL (the part before `/v1/messages`); `https://api.anthropic.com` by default.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.http.base_url = url.into();
        self
    }

    http::http_setters!("anthropic");

    /// `max_tokens` for requests that do not set it (1024 by default).
    pub fn default_max_tokens(mut self, n: u32) -> Self {
        self.default_max_tokens = n;
        self
    }

    /// Checks the settings and builds the provider.
    pub fn build(self) -> Result<Anthropic, ConfigError> {
        Ok(Anthropic {
            http: self.http.build(&DIALECT)?,
            default_max_tokens: self.default_max_tokens,
        })
    }
}

impl Provider for Anthropic {
    fn info(&self) -> ProviderInfo {
        self.http.info()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(self.chat_inner(request))
    }

    fn wire_digest(&self, request: &ChatRequest) -> Option<WireDigest> {
        let (mut body, _) = self.body(request);
        let bytes = serde_json::to_vec(&body).ok()?;
        // Anthropic's messages hold no system turn; tool results ride in user turns, so the
        // stable prefix ends before the last user turn of the body itself.
        if let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) {
            let cut = messages
                .iter()
                .rposition(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .unwrap_or(messages.len());
            messages.truncate(cut);
        }
        let prefix = serde_json::to_vec(&body).ok()?;
        Some(WireDigest::of(&bytes, &prefix))
    }
}

#[derive(Deserialize)]
struct WireMessage {
    id: Option<String>,
    model: Option<String>,
    content: Option<Vec<Block>>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

/// Reads a Messages API body. `tool` is the forced tool's name and whether its input wraps the
/// answer in `{"value": ...}`.
pub(crate) fn parse_response(
    body: &[u8],
    tool: Option<(&str, bool)>,
) -> Result<ChatResponse, ProviderError> {
    let message: WireMessage = http::decode(body, "a message")?;
    let blocks = message
        .content
        .ok_or_else(|| http::invalid_body("the message has no content", body))?;
    let tool_input = tool.and_then(|(name, wrapped)| {
        let block = blocks
            .iter()
            .find(|b| b.kind.as_deref() == Some("tool_use") && b.name.as_deref() == Some(name))?;
        let input = block.input.clone()?;
        Some(if wrapped {
            input.get(WRAP_KEY).cloned().unwrap_or(input)
        } else {
            input
        })
    });
    let used_tool = tool_input.is_some();
    let content = match tool_input {
        Some(input) => serde_json::to_string(&input).map_err(|e| {
            ProviderError::InvalidResponse(format!("the tool input could not be serialized: {e}"))
        })?,
        None => blocks
            .iter()
            .filter(|b| b.kind.as_deref() == Some("text"))
            .filter_map(|b| b.text.as_deref())
            .collect(),
    };
    let finish_reason = message.stop_reason.as_deref().map(|r| match r {
        // The forced tool is how a structured answer ends.
        "tool_use" if used_tool => FinishReason::Stop,
        other => FinishReason::parse(other),
    });
    let usage = message.usage.map_or(Usage::default(), |u| {
        // Anthropic's `input_tokens` are only the uncached ones: the prompt is all three.
        let read = u.cache_read_input_tokens.unwrap_or(0);
        let write = u.cache_creation_input_tokens.unwrap_or(0);
        let uncached = u.input_tokens.unwrap_or(0);
        Usage::new(
            uncached.saturating_add(read).saturating_add(write),
            u.output_tokens.unwrap_or(0),
        )
        .with_cache(read, write)
    });
    Ok(ChatResponse {
        content,
        refusal: None,
        finish_reason,
        model: message.model,
        id: message.id,
        usage,
        tool_calls: tools::calls(&blocks, tool.map(|(name, _)| name)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_input_becomes_the_content() {
        let body = br#"{"id":"msg_1","model":"claude-x","stop_reason":"tool_use",
            "content":[{"type":"text","text":"thinking"},{"type":"tool_use","id":"t","name":"Out","input":{"a":1}}],
            "usage":{"input_tokens":3,"output_tokens":4}}"#;
        let r = parse_response(body, Some(("Out", false))).unwrap();
        assert_eq!(r.content, r#"{"a":1}"#);
        assert_eq!(r.finish_reason, Some(FinishReason::Stop));
        assert_eq!(r.usage, Usage::new(3, 4));
        let wrapped =
            br#"{"content":[{"type":"tool_use","name":"L","input":{"value":"positive"}}]}"#;
        assert_eq!(
            parse_response(wrapped, Some(("L", true))).unwrap().content,
            r#""positive""#
        );
    }

    #[test]
    fn cached_prompt_tokens_count_as_input_and_are_split_out() {
        let body = br#"{"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn",
            "usage":{"input_tokens":12,"cache_read_input_tokens":900,"cache_creation_input_tokens":80,"output_tokens":5}}"#;
        let u = parse_response(body, None).unwrap().usage;
        assert_eq!(u, Usage::new(992, 5).with_cache(900, 80));
        assert_eq!(u.uncached_input_tokens(), 12);
    }

    #[test]
    fn text_blocks_are_joined_and_stop_reasons_mapped() {
        let body = br#"{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"stop_reason":"max_tokens"}"#;
        let r = parse_response(body, None).unwrap();
        assert_eq!(r.content, "ab");
        assert_eq!(r.finish_reason, Some(FinishReason::Length));
        let refusal = br#"{"content":[],"stop_reason":"refusal"}"#;
        assert_eq!(
            parse_response(refusal, None).unwrap().finish_reason,
            Some(FinishReason::ContentFilter)
        );
    }

    #[test]
    fn odd_bodies_are_invalid_responses() {
        for body in [&b""[..], b"{}", b"[]", b"\xfe", b"{\"content\":5}"] {
            assert!(matches!(
                parse_response(body, None),
                Err(ProviderError::InvalidResponse(_))
            ));
        }
    }
}
