//! Providers: one request/response exchange with a model service.
//!
//! The engine sees only [`Provider`]. Implementations: [`OpenAiCompatible`](openai) (OpenAI, vLLM,
//! llama.cpp's llama-server, Ollama, LM Studio), [`Anthropic`](anthropic) and, for users' tests,
//! [`Scripted`](scripted), which goes through the same parse/validate/contract path as the others.

pub mod anthropic;
pub(crate) mod http;
pub mod openai;
pub mod scripted;
pub mod tool;
mod usage;

pub use anthropic::{Anthropic, AnthropicBuilder};
pub use http::parse_retry_after;
pub use openai::{OpenAiBuilder, OpenAiCompatible, StructuredOutput};
pub use tool::{Arguments, ToolCall, ToolCalling, ToolChoice, ToolDefinition};
pub use usage::Usage;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::contract::FailureClass;

/// A boxed, sendable future (what [`Provider::chat`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The user (or the harness speaking for it, in a reask).
    User,
    /// The model.
    Assistant,
    /// The result of a tool call (the message's `tool_call_id` names the call).
    Tool,
}

impl Role {
    /// `"system"`, `"user"`, `"assistant"` or `"tool"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One chat message. The tool fields are left out of its JSON when empty, so a conversation
/// without tools serializes (and fingerprints) as it did before tools existed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
    /// The tool calls of an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a [`Role::Tool`] message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message without tool fields.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message::new(Role::System, content)
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message::new(Role::User, content)
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::new(Role::Assistant, content)
    }
    /// The assistant's turn that asked for `calls` (with whatever text came with them).
    pub fn assistant_tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Message {
            tool_calls: calls,
            ..Message::new(Role::Assistant, content)
        }
    }
    /// The result of the call `call_id` (its output, or the tool error the model should see).
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(call_id.into()),
            ..Message::new(Role::Tool, content)
        }
    }
}

/// How the answer should be shaped.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    #[default]
    Text,
    /// JSON following `schema`. Build it with [`ResponseFormat::json_schema`]. A provider whose
    /// server enforces the schema sends it there and the prompt carries no copy of it; one that
    /// cannot (prompt-only mode, or after a server rejected the schema) adds the
    /// [`instruction`](ResponseFormat::instruction) to the system message instead
    /// ([`ChatRequest::prompted_messages`]).
    #[non_exhaustive]
    JsonSchema {
        /// A name for the schema (the output type's).
        name: String,
        /// The JSON schema as the server gets it (see [`wire_schema`](crate::output::wire_schema)),
        /// shared: a request and its clones do not copy it.
        schema: Arc<serde_json::Value>,
        /// The text a prompted request adds to its system message: the output type in the compact
        /// notation ([`prompt_instruction`](crate::contract::notation::prompt_instruction)).
        /// `None` renders it from `schema` when needed.
        #[serde(skip_serializing_if = "Option::is_none")]
        instruction: Option<Arc<str>>,
    },
}

impl ResponseFormat {
    /// JSON following `schema`, named `name`, with the instruction rendered from the schema when
    /// a request needs it.
    pub fn json_schema(name: impl Into<String>, schema: impl Into<Arc<serde_json::Value>>) -> Self {
        ResponseFormat::JsonSchema {
            name: name.into(),
            schema: schema.into(),
            instruction: None,
        }
    }

    /// With this instruction for prompted requests (the engine passes the one it rendered once
    /// per output type). No effect on [`ResponseFormat::Text`].
    pub fn with_instruction(mut self, text: impl Into<Arc<str>>) -> Self {
        if let ResponseFormat::JsonSchema { instruction, .. } = &mut self {
            *instruction = Some(text.into());
        }
        self
    }

    /// The schema, for [`ResponseFormat::JsonSchema`].
    pub fn schema(&self) -> Option<&serde_json::Value> {
        match self {
            ResponseFormat::JsonSchema { schema, .. } => Some(schema),
            ResponseFormat::Text => None,
        }
    }

    /// What a request that does not send the schema to the server adds to its system message;
    /// `None` for text.
    pub fn instruction(&self) -> Option<Cow<'_, str>> {
        match self {
            ResponseFormat::JsonSchema {
                instruction: Some(text),
                ..
            } => Some(Cow::Borrowed(text)),
            ResponseFormat::JsonSchema { schema, .. } => Some(Cow::Owned(
                crate::contract::notation::prompt_instruction(schema),
            )),
            ResponseFormat::Text => None,
        }
    }
}

/// One request to a model. The tool fields are left out of its JSON when empty, so the
/// [`fingerprint`](ChatRequest::fingerprint) of a request without tools is what it was before
/// tools existed (recorded audit trails still replay).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The model name the provider understands.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Output shape.
    pub response_format: ResponseFormat,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Maximum output tokens.
    pub max_tokens: Option<u32>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// The tools offered to the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    /// Whether the model must call one (`None`: the API's default, auto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
}

impl ChatRequest {
    /// The SHA-256 (lower-case hex) of this request as JSON: what the audit trail and replay use
    /// to recognise the same request again.
    pub fn fingerprint(&self) -> String {
        crate::digest::hash_hex(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// The messages as a request that carries its schema in the prompt sends them: the
    /// [`instruction`](ResponseFormat::instruction) after the first system message's text (or as
    /// a system message of its own, first). Unchanged for a text request.
    pub fn prompted_messages(&self) -> Cow<'_, [Message]> {
        let Some(instruction) = self.response_format.instruction() else {
            return Cow::Borrowed(&self.messages);
        };
        let mut messages = self.messages.clone();
        match messages.iter_mut().find(|m| m.role == Role::System) {
            Some(system) => {
                system.content.push_str("\n\n");
                system.content.push_str(&instruction);
            }
            None => messages.insert(0, Message::system(instruction.into_owned())),
        }
        Cow::Owned(messages)
    }
}

/// What one attempt put on the wire, for reproducing it and for prompt caches: the SHA-256 of
/// the exact request body a provider sends, and of its **stable prefix** — the same body with
/// the messages from the last user message on left out (tools, response format, system prompt
/// and earlier turns: what providers' prompt caches key on, so two calls with equal prefix
/// hashes can share a cached prefix). Its fields are in alphabetical order: audit records hash
/// their canonical, key-sorted JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireDigest {
    /// The body's length in bytes.
    pub body_bytes: usize,
    /// SHA-256 (hex) of the body's bytes, exactly as sent.
    pub body_sha256: String,
    /// SHA-256 (hex) of the body without the messages from the last user message on.
    pub prefix_sha256: String,
}

impl WireDigest {
    /// The digest of a body and of its stable prefix's bytes.
    pub fn of(body: &[u8], prefix: &[u8]) -> WireDigest {
        WireDigest {
            body_bytes: body.len(),
            body_sha256: crate::digest::hash_hex(body),
            prefix_sha256: crate::digest::hash_hex(prefix),
        }
    }
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end.
    Stop,
    /// The token limit cut the answer off.
    Length,
    /// A content filter stopped it (treated as a refusal).
    ContentFilter,
    /// The model called a tool.
    ToolCalls,
    /// Anything else the provider said.
    Other(String),
}

impl FinishReason {
    /// Maps the provider's string.
    pub fn parse(s: &str) -> Self {
        match s {
            "stop" | "end_turn" | "stop_sequence" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "content_filter" | "refusal" => FinishReason::ContentFilter,
            "tool_calls" | "tool_use" => FinishReason::ToolCalls,
            other => FinishReason::Other(other.to_owned()),
        }
    }

    /// The name as the OpenTelemetry GenAI conventions spell it.
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(s) => s,
        }
    }
}

/// One answer from a model.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChatResponse {
    /// The text of the answer (may be empty).
    pub content: String,
    /// A refusal message, when the provider reports one separately (OpenAI's `message.refusal`).
    pub refusal: Option<String>,
    /// Why the model stopped.
    pub finish_reason: Option<FinishReason>,
    /// The model that answered, as the provider names it.
    pub model: Option<String>,
    /// The provider's response id.
    pub id: Option<String>,
    /// Tokens billed.
    pub usage: Usage,
    /// The tool calls the model asked for, in order (several when it calls tools in parallel).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// Why a provider exchange failed. Never contains an API key or an authorization header.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No answer within the time allowed.
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    /// 429, or an equivalent such as Anthropic's 529 overload.
    #[error("rate limited by the provider (HTTP {status}){}", retry_after.map(|d| format!("; retry after {d:?}")).unwrap_or_default())]
    RateLimited {
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// Any other non-success status.
    #[error("the provider answered HTTP {status}: {message}")]
    Status {
        /// The status code.
        status: u16,
        /// The error message from the body (truncated), never request headers.
        message: String,
    },
    /// The connection could not be made or broke.
    #[error("connection to the provider failed: {0}")]
    Connection(String),
    /// The HTTP exchange completed, but the body is not a response we can read.
    #[error("the provider's response could not be read: {0}")]
    InvalidResponse(String),
    /// The harness's own rate or concurrency limit refused the attempt: no request was sent.
    #[error("shed by the harness's {limit} limit; no request was sent{}", retry_after.map(|d| format!("; it fits in {d:?}")).unwrap_or_default())]
    Shed {
        /// Which limit: `requests`, `tokens`, `concurrency` or `retry_after`.
        limit: &'static str,
        /// When the attempt would fit.
        retry_after: Option<Duration>,
    },
    /// The circuit breaker for this provider and model is open: no request was sent.
    #[error("the circuit breaker for {0} is open; no request was sent")]
    CircuitOpen(String),
    /// The harness is misconfigured for this request (unknown provider, missing key, bad URL).
    #[error("configuration error: {0}")]
    Config(String),
}

impl ProviderError {
    /// The failure class the contract answers this error with.
    pub fn class(&self) -> FailureClass {
        match self {
            ProviderError::Timeout(_) => FailureClass::Timeout,
            ProviderError::RateLimited { .. } | ProviderError::Shed { .. } => {
                FailureClass::RateLimited
            }
            _ => FailureClass::ProviderError,
        }
    }

    /// Whether the same request can succeed if sent again: never for 4xx other than 408/409/429,
    /// configuration errors, or an open breaker.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Timeout(_)
            | ProviderError::RateLimited { .. }
            | ProviderError::Shed { .. }
            | ProviderError::Connection(_)
            | ProviderError::InvalidResponse(_) => true,
            ProviderError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 409
            }
            ProviderError::CircuitOpen(_) | ProviderError::Config(_) => false,
        }
    }

    /// The `Retry-After` delay the server asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. }
            | ProviderError::Shed { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short, low-cardinality name for `error.type` in telemetry.
    pub fn type_name(&self) -> &'static str {
        match self {
            ProviderError::Timeout(_) => "timeout",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Shed { .. } => "shed",
            ProviderError::Status { .. } => "http_status",
            ProviderError::Connection(_) => "connection",
            ProviderError::InvalidResponse(_) => "invalid_response",
            ProviderError::CircuitOpen(_) => "circuit_open",
            ProviderError::Config(_) => "config",
        }
    }
}

/// Static facts about a provider, for routing and telemetry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderInfo {
    /// `gen_ai.provider.name`: `openai`, `anthropic`, or what the user registered.
    pub name: String,
    /// `server.address`.
    pub address: Option<String>,
    /// `server.port`.
    pub port: Option<u16>,
}

/// A model service. One [`chat`](Provider::chat) is one attempt: the engine counts it once,
/// bounds it with the attempt's timeout and runs it inside the attempt's span (`chat {model}`).
///
/// Recovery is the engine's job, driven by the task's contract: a provider does not retry a
/// failure, wait out a rate limit or switch models. It may do one thing more than a single
/// exchange: when the server answers 400 naming a request parameter it does not accept, re-send
/// the same request once with that parameter adjusted, and remember the adjustment for later
/// requests. [`OpenAiCompatible`] does this for `response_format` (in
/// [`StructuredOutput::Auto`], the schema then travels in the prompt only) and for
/// `max_tokens` → `max_completion_tokens`, so one attempt sends at most three requests. Such a
/// re-send is visible: the provider logs a `warn` event naming itself inside the attempt's span,
/// the attempt's latency covers every request it sent, and [`OpenAiCompatible::schema_rejected`]
/// says whether the downgrade is in force.
pub trait Provider: Send + Sync + 'static {
    /// Name and address, for routing and telemetry.
    fn info(&self) -> ProviderInfo;

    /// Sends one request.
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>>;

    /// How this provider carries the [`ChatRequest::tools`] of a request: natively by default;
    /// a provider for servers without native tool calls answers [`ToolCalling::Prompted`]
    /// (and turns the "next action" object back into [`ChatResponse::tool_calls`] itself).
    fn tool_calling(&self) -> ToolCalling {
        ToolCalling::Native
    }

    /// The [`WireDigest`] of the body this provider sends for `request` (the engine records it
    /// on every attempt that was sent). `None` for providers that send no bytes (`Scripted`).
    fn wire_digest(&self, request: &ChatRequest) -> Option<WireDigest> {
        let _ = request;
        None
    }
}

/// A shared provider is a provider: register an `Arc<P>` (or an `Arc<dyn Provider>`) you also
/// keep, e.g. to read a [`Scripted`](scripted::Scripted) log or a replay provider's misses.
impl<P: Provider + ?Sized> Provider for std::sync::Arc<P> {
    fn info(&self) -> ProviderInfo {
        (**self).info()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        (**self).chat(request)
    }

    fn tool_calling(&self) -> ToolCalling {
        (**self).tool_calling()
    }

    fn wire_digest(&self, request: &ChatRequest) -> Option<WireDigest> {
        (**self).wire_digest(request)
    }
}

impl fmt::Debug for dyn Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.info();
        f.debug_struct("Provider")
            .field("name", &info.name)
            .field("address", &info.address)
            .finish()
    }
}
