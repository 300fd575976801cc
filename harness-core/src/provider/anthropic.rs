//! [`Anthropic`]: the Messages API (`POST {base}/v1/messages`).
//!
//! Structured output forces a tool whose `input_schema` is the output schema; the `tool_use`
//! block's `input`, serialized, becomes the answer's content.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Secret, Timeouts};
use super::{
    BoxFuture, ChatRequest, ChatResponse, FinishReason, Provider, ProviderError, ProviderInfo,
    ResponseFormat, Role, Usage,
};
use crate::error::ConfigError;

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
    client: reqwest::Client,
    endpoint: reqwest::Url,
    base_url: reqwest::Url,
    key: Option<Secret>,
    name: String,
    default_max_tokens: u32,
    timeouts: Timeouts,
    max_body: usize,
}

impl fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anthropic")
            .field("name", &self.name)
            .field("base_url", &http::display_url(&self.base_url))
            .field("api_key", &self.key.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// Builds an [`Anthropic`] provider.
#[derive(Clone)]
pub struct AnthropicBuilder {
    base_url: String,
    key: Option<Secret>,
    name: String,
    default_max_tokens: u32,
    timeouts: Timeouts,
    max_body: usize,
    headers: Vec<(String, String)>,
}

impl fmt::Debug for AnthropicBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicBuilder")
            .field("name", &self.name)
            .field("api_key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("headers", &http::header_names(&self.headers))
            .finish_non_exhaustive()
    }
}

impl Anthropic {
    /// A builder with the API key (sent as `x-api-key`).
    pub fn builder(api_key: impl Into<String>) -> AnthropicBuilder {
        AnthropicBuilder {
            base_url: DEFAULT_BASE_URL.to_owned(),
            key: Secret::new(api_key.into()),
            name: "anthropic".to_owned(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
            timeouts: Timeouts {
                connect: http::DEFAULT_CONNECT_TIMEOUT,
                total: None,
            },
            max_body: http::DEFAULT_MAX_BODY_BYTES,
            headers: Vec::new(),
        }
    }

    /// The JSON body for `request`, and the forced tool's name and whether its schema was wrapped.
    fn body(&self, request: &ChatRequest) -> (Value, Option<(String, bool)>) {
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let messages: Vec<Value> = request
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
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
        if let ResponseFormat::JsonSchema { name, schema } = &request.response_format {
            let tool_name = http::schema_name(name);
            let is_object = schema.get("type") == Some(&json!("object"));
            let input_schema = if is_object {
                schema.clone()
            } else {
                json!({"type": "object", "properties": {WRAP_KEY: schema}, "required": [WRAP_KEY]})
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
        (body, tool)
    }

    async fn chat_inner(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let (body, tool) = self.body(request);
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| ProviderError::Config(format!("the request could not be encoded: {e}")))?;
        let mut req = self
            .client
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("anthropic-version", API_VERSION)
            .body(bytes);
        if let Some(key) = &self.key {
            req = req.header("x-api-key", key.header("")?);
        }
        let response = http::send(req, self.max_body, self.timeouts).await?;
        if !(200..300).contains(&response.status) {
            return Err(http::status_error(
                &response,
                &[429, 529],
                self.key.as_ref(),
            ));
        }
        parse_response(&response.body, tool.as_ref().map(|(n, w)| (n.as_str(), *w))).map_err(|e| {
            match e {
                ProviderError::InvalidResponse(m) => {
                    ProviderError::InvalidResponse(http::scrub(self.key.as_ref(), m))
                }
                other => other,
            }
        })
    }
}

impl AnthropicBuilder {
    /// The base URL (the part before `/v1/messages`); `https://api.anthropic.com` by default.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The provider name in telemetry; `anthropic` by default.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// `max_tokens` for requests that do not set it (1024 by default).
    pub fn default_max_tokens(mut self, n: u32) -> Self {
        self.default_max_tokens = n;
        self
    }

    /// The time allowed to open a connection (10 s by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// A limit on the whole exchange. None by default: the engine bounds each attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.total = Some(timeout);
        self
    }

    /// A header sent with every request (e.g. `OpenAI-Organization`, or a gateway's own key). Its
    /// value is treated as a secret: never printed, logged or recorded.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The largest response body accepted (16 MiB by default).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Checks the settings and builds the provider.
    pub fn build(self) -> Result<Anthropic, ConfigError> {
        let base_url = http::parse_base_url(&self.base_url, "the Anthropic base URL")?;
        if let Some(k) = &self.key {
            k.check("the Anthropic API key")?;
        }
        Ok(Anthropic {
            client: http::client(self.timeouts, &self.headers)?,
            endpoint: http::endpoint(&base_url, "v1/messages"),
            base_url,
            key: self.key,
            name: self.name,
            default_max_tokens: self.default_max_tokens,
            timeouts: self.timeouts,
            max_body: self.max_body,
        })
    }
}

impl Provider for Anthropic {
    fn info(&self) -> ProviderInfo {
        let (address, port) = http::address(&self.base_url);
        ProviderInfo {
            name: self.name.clone(),
            address,
            port,
        }
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(self.chat_inner(request))
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
}

/// Reads a Messages API body. `tool` is the forced tool's name and whether its input wraps the
/// answer in `{"value": ...}`.
pub(crate) fn parse_response(
    body: &[u8],
    tool: Option<(&str, bool)>,
) -> Result<ChatResponse, ProviderError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ProviderError::InvalidResponse(format!(
            "the body is not valid UTF-8 (at byte {}): {}",
            e.valid_up_to(),
            http::excerpt(body)
        ))
    })?;
    let message: WireMessage = serde_json::from_str(text).map_err(|e| {
        ProviderError::InvalidResponse(format!(
            "the body is not a message ({e}): {}",
            http::excerpt(body)
        ))
    })?;
    let blocks = message.content.ok_or_else(|| {
        ProviderError::InvalidResponse(format!(
            "the message has no content: {}",
            http::excerpt(body)
        ))
    })?;
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
    let usage = message.usage.map_or(Usage::default(), |u| Usage {
        input_tokens: u.input_tokens.unwrap_or(0),
        output_tokens: u.output_tokens.unwrap_or(0),
    });
    Ok(ChatResponse {
        content,
        refusal: None,
        finish_reason,
        model: message.model,
        id: message.id,
        usage,
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
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 3,
                output_tokens: 4
            }
        );
        let wrapped =
            br#"{"content":[{"type":"tool_use","name":"L","input":{"value":"positive"}}]}"#;
        assert_eq!(
            parse_response(wrapped, Some(("L", true))).unwrap().content,
            r#""positive""#
        );
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
