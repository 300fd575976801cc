//! [`OpenAiCompatible`]: the Chat Completions API, as OpenAI, vLLM, llama.cpp's llama-server,
//! Ollama and LM Studio serve it.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use serde_json::Value;

use super::http::{self, Dialect, HttpClient, HttpOptions, Secret};
use super::tool::{ToolCalling, prompted};
use super::{
    BoxFuture, ChatRequest, ChatResponse, FinishReason, Provider, ProviderError, ProviderInfo,
    ResponseFormat, Usage, WireDigest,
};
use crate::error::ConfigError;

mod strict;
mod tools;

pub use strict::qualifies_for_strict;

/// How a JSON schema is passed to the server. When it goes in `response_format: json_schema`, the
/// server enforces it and the prompt carries no copy; in every other case (JSON mode, prompt-only,
/// or after the server rejected the schema) the system message carries the output type in the
/// compact notation ([`ResponseFormat::instruction`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StructuredOutput {
    /// Send `response_format: json_schema`; if the server answers 400 about `response_format` or
    /// `json_schema`, resend without it and, from then on, never send it again (unless the 400
    /// says "invalid schema": then only that request goes without it).
    #[default]
    Auto,
    /// Always send `response_format: json_schema` (OpenAI, vLLM, recent llama-server).
    JsonSchema,
    /// Send `response_format: {"type": "json_object"}` (JSON mode, no schema).
    JsonObject,
    /// Send no `response_format`; rely on the prompt alone.
    PromptOnly,
}

/// A provider for any server that speaks OpenAI's Chat Completions API.
///
/// One call is one exchange, except when the server answers 400 naming a parameter it does not
/// accept: then the provider adjusts (drops `response_format` in [`StructuredOutput::Auto`], or
/// renames `max_tokens` to `max_completion_tokens`), remembers it, logs a `warn` event, and
/// resends once per adjustment, within the same attempt (see [`Provider`] for what that means to
/// the engine).
///
/// ```no_run
/// # fn demo() -> Result<(), harness_core::ConfigError> {
/// use harness_core::provider::openai::OpenAiCompatible;
/// let local = OpenAiCompatible::builder("http://127.0.0.1:8089/v1").build()?;
/// let openai = OpenAiCompatible::builder("https://api.openai.com/v1")
///     .api_key(std::env::var("OPENAI_API_KEY").unwrap_or_default())
///     .build()?;
/// # Ok(()) }
/// ```
pub struct OpenAiCompatible {
    http: HttpClient,
    mode: StructuredOutput,
    /// Set once the server rejected `response_format` in `Auto` mode.
    schema_rejected: AtomicBool,
    /// Set once the server asked for `max_completion_tokens` instead of `max_tokens` (OpenAI's
    /// reasoning models), or by the builder.
    completion_tokens: AtomicBool,
    /// How tools travel: native `tools`, or the prompted "next action" object.
    tool_calling: ToolCalling,
}

/// The Chat Completions API on the wire.
static DIALECT: Dialect = Dialect {
    base_url_label: "the OpenAI-compatible base URL",
    api_key_label: "the OpenAI API key",
    path: "chat/completions",
    auth: ("authorization", "Bearer "),
    headers: &[("accept", "application/json")],
    rate_limited: &[429],
};

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OpenAiCompatible");
        self.http.debug_fields(&mut d);
        d.field("structured_output", &self.mode)
            .field(
                "schema_rejected",
                &self.schema_rejected.load(Ordering::Relaxed),
            )
            .field(
                "max_completion_tokens",
                &self.completion_tokens.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

/// Builds an [`OpenAiCompatible`].
#[derive(Clone)]
pub struct OpenAiBuilder {
    http: HttpOptions,
    mode: StructuredOutput,
    completion_tokens: bool,
    tool_calling: ToolCalling,
}

impl fmt::Debug for OpenAiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OpenAiBuilder");
        self.http.debug_fields(&mut d);
        d.field("structured_output", &self.mode)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatible {
    /// A builder for the server at `base_url` (the part before `/chat/completions`, e.g.
    /// `https://api.openai.com/v1` or `http://127.0.0.1:8089/v1`).
    pub fn builder(base_url: impl Into<String>) -> OpenAiBuilder {
        OpenAiBuilder {
            http: HttpOptions::new(base_url.into(), None, "openai"),
            mode: StructuredOutput::Auto,
            completion_tokens: false,
            tool_calling: ToolCalling::Native,
        }
    }

    /// Whether `Auto` mode has stopped sending `response_format` because the server rejected it.
    pub fn schema_rejected(&self) -> bool {
        self.schema_rejected.load(Ordering::Relaxed)
    }

    /// The JSON body for `request`, borrowing from it (no copy of the messages or the schema);
    /// `with_format` is false once the server rejected the schema. A request whose schema does
    /// not go in `response_format: json_schema` carries the schema instruction in its system
    /// message instead.
    fn body<'a>(&self, request: &'a ChatRequest, with_format: bool) -> Body<'a> {
        let completion_tokens = self.completion_tokens.load(Ordering::Relaxed);
        let response_format = match (&request.response_format, with_format) {
            (ResponseFormat::JsonSchema { name, schema, .. }, true) => match self.mode {
                StructuredOutput::Auto | StructuredOutput::JsonSchema => Some(Format::JsonSchema {
                    json_schema: JsonSchemaFormat {
                        name: http::schema_name(name),
                        schema,
                        strict: qualifies_for_strict(schema),
                    },
                }),
                StructuredOutput::JsonObject => Some(Format::JsonObject),
                StructuredOutput::PromptOnly => None,
            },
            _ => None,
        };
        let enforced = matches!(response_format, Some(Format::JsonSchema { .. }));
        let instruction = match enforced {
            true => None,
            false => request.response_format.instruction(),
        };
        Body {
            model: &request.model,
            messages: body_messages(&request.messages, instruction),
            temperature: request.temperature,
            max_tokens: request.max_tokens.filter(|_| !completion_tokens),
            max_completion_tokens: request.max_tokens.filter(|_| completion_tokens),
            seed: request.seed,
            response_format,
            tools: tools::tools(&request.tools),
            tool_choice: tools::tool_choice(request.tool_choice.as_ref()),
        }
    }

    /// One exchange; in [`ToolCalling::Prompted`] mode a request with tools goes as a "next
    /// action" request and its answer comes back as tool calls.
    async fn chat_tools(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        if self.tool_calling != ToolCalling::Prompted {
            return self.chat_inner(request).await;
        }
        match prompted::lower(request) {
            Some(lowered) => {
                let response = self.chat_inner(&lowered.request).await?;
                Ok(lowered.raise(response))
            }
            None => self.chat_inner(request).await,
        }
    }

    async fn chat_inner(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let wants_schema = matches!(request.response_format, ResponseFormat::JsonSchema { .. });
        let auto = self.mode == StructuredOutput::Auto;
        // At most one resend per adjustment: the server told us what it does not accept.
        let mut response;
        let mut adjustments = 0;
        let mut skip_format = false;
        loop {
            let with_format = !(auto && (skip_format || self.schema_rejected()));
            response = self.http.post(&self.body(request, with_format)).await?;
            if response.status != 400 || adjustments >= 2 {
                break;
            }
            if auto && with_format && wants_schema && rejects_response_format(&response.body) {
                skip_format = true;
                if mentions(&response.body, "invalid schema") {
                    // This schema, not structured output: only this request goes without it.
                    tracing::warn!(
                        provider = %self.http.name(),
                        "the server rejected this schema in response_format; sending it in the prompt only"
                    );
                } else {
                    self.schema_rejected.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        provider = %self.http.name(),
                        "the server rejected response_format json_schema; sending the schema in the prompt only from now on"
                    );
                }
            } else if request.max_tokens.is_some()
                && !self.completion_tokens.load(Ordering::Relaxed)
                && mentions(&response.body, "max_completion_tokens")
            {
                self.completion_tokens.store(true, Ordering::Relaxed);
                tracing::warn!(
                    provider = %self.http.name(),
                    "the server asked for max_completion_tokens; sending that instead of max_tokens from now on"
                );
            } else {
                break;
            }
            adjustments += 1;
        }
        let response = self.http.success(response)?;
        parse_response(&response.body).map_err(|e| self.http.scrubbed(e))
    }
}

impl OpenAiBuilder {
    /// The API key, sent as `Authorization: Bearer ...`. An empty key sends no header.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.http.key = Secret::new(key.into());
        self
    }

    http::http_setters!("openai");

    /// How the schema is passed to the server; [`StructuredOutput::Auto`] by default.
    pub fn structured_output(mut self, mode: StructuredOutput) -> Self {
        self.mode = mode;
        self
    }

    /// Sends the token limit as `max_completion_tokens` (OpenAI's reasoning models) instead of
    /// `max_tokens`. Without it, the provider switches by itself the first time a server answers
    /// 400 asking for `max_completion_tokens`.
    pub fn max_completion_tokens(mut self, yes: bool) -> Self {
        self.completion_tokens = yes;
        self
    }

    /// How tools travel: [`ToolCalling::Native`] (`tools`/`tool_calls`, the default) or
    /// [`ToolCalling::Prompted`], for servers without native tool calls (llama.cpp's server
    /// without `--jinja`, small local models): the tools are described in the system prompt, the
    /// answer is constrained to a "next action" JSON object, and that object comes back as
    /// [`ChatResponse::tool_calls`](super::ChatResponse::tool_calls).
    pub fn tool_calling(mut self, mode: ToolCalling) -> Self {
        self.tool_calling = mode;
        self
    }

    /// Checks the settings and builds the provider.
    pub fn build(self) -> Result<OpenAiCompatible, ConfigError> {
        Ok(OpenAiCompatible {
            http: self.http.build(&DIALECT)?,
            mode: self.mode,
            schema_rejected: AtomicBool::new(false),
            completion_tokens: AtomicBool::new(self.completion_tokens),
            tool_calling: self.tool_calling,
        })
    }
}

impl Provider for OpenAiCompatible {
    fn info(&self) -> ProviderInfo {
        self.http.info()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(self.chat_tools(request))
    }

    fn tool_calling(&self) -> ToolCalling {
        self.tool_calling
    }

    fn wire_digest(&self, request: &ChatRequest) -> Option<WireDigest> {
        // The same lowering and body as `chat_tools` → `chat_inner` in the provider's current
        // state (after a downgrade, without response_format).
        let lowered = match self.tool_calling {
            ToolCalling::Prompted => prompted::lower(request),
            _ => None,
        };
        let request = lowered.as_ref().map_or(request, |l| &l.request);
        let with_format = !(self.mode == StructuredOutput::Auto && self.schema_rejected());
        let mut body = self.body(request, with_format);
        let bytes = serde_json::to_vec(&body).ok()?;
        // The instruction may have opened the body with a system message of its own.
        let extra = body.messages.len().saturating_sub(request.messages.len());
        let cut = request
            .messages
            .iter()
            .rposition(|m| m.role == super::Role::User)
            .unwrap_or(request.messages.len());
        body.messages.truncate(cut + extra);
        let prefix = serde_json::to_vec(&body).ok()?;
        Some(WireDigest::of(&bytes, &prefix))
    }
}

/// Whether a 400 body complains about structured output.
fn rejects_response_format(body: &[u8]) -> bool {
    mentions(body, "response_format") || mentions(body, "json_schema")
}

/// Whether the first 64 KiB of `body` contain `word` (ASCII, case-insensitive).
fn mentions(body: &[u8], word: &str) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).to_ascii_lowercase();
    text.contains(word)
}

/// The messages on the wire; `instruction`, when given, follows the first system message's text
/// (or opens the conversation as a system message of its own), as
/// [`ChatRequest::prompted_messages`] says.
fn body_messages<'a>(
    messages: &'a [super::Message],
    instruction: Option<Cow<'a, str>>,
) -> Vec<tools::BodyMessage<'a>> {
    let mut out: Vec<tools::BodyMessage<'a>> = Vec::with_capacity(messages.len() + 1);
    let mut instruction = instruction;
    for m in messages {
        let mut message = tools::body_message(m);
        if m.role == super::Role::System
            && let Some(text) = instruction.take()
        {
            message.content = Some(Cow::Owned(format!("{}\n\n{text}", m.content)));
        }
        out.push(message);
    }
    if let Some(text) = instruction {
        out.insert(0, tools::BodyMessage::system(text));
    }
    out
}

#[derive(Deserialize)]
struct Completion {
    id: Option<String>,
    model: Option<String>,
    choices: Option<Vec<Choice>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<WireMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    refusal: Option<String>,
    /// Read leniently by `tools::parse_calls`.
    #[serde(default)]
    tool_calls: Option<Value>,
}

/// `content` is a string, or (some servers) a list of parts.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

/// `usage.prompt_tokens_details`: how many prompt tokens the cache served.
#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// `usage.completion_tokens_details`: how many completion tokens went to reasoning.
#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

/// Reads a Chat Completions body.
pub(crate) fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let completion: Completion = http::decode(body, "a chat completion")?;
    let choice = completion
        .choices
        .and_then(|c| c.into_iter().next())
        .ok_or_else(|| http::invalid_body("the completion has no choices", body))?;
    let message = choice
        .message
        .ok_or_else(|| http::invalid_body("the first choice has no message", body))?;
    let content = match message.content {
        None => String::new(),
        Some(Content::Text(t)) => t,
        Some(Content::Parts(parts)) => parts.into_iter().filter_map(|p| p.text).collect(),
    };
    let usage = completion.usage.map_or(Usage::default(), |u| {
        // `prompt_tokens` already counts the cached ones; `completion_tokens` the reasoning ones.
        let cached = u.prompt_tokens_details.and_then(|d| d.cached_tokens);
        let reasoning = u.completion_tokens_details.and_then(|d| d.reasoning_tokens);
        Usage::new(
            u.prompt_tokens.unwrap_or(0),
            u.completion_tokens.unwrap_or(0),
        )
        .with_cache(cached.unwrap_or(0), 0)
        .with_reasoning(reasoning.unwrap_or(0))
    });
    Ok(ChatResponse {
        content,
        refusal: message.refusal.filter(|r| !r.is_empty()),
        finish_reason: choice.finish_reason.as_deref().map(FinishReason::parse),
        model: completion.model,
        id: completion.id,
        usage,
        tool_calls: tools::parse_calls(message.tool_calls.as_ref()),
    })
}

/// The Chat Completions request body, serialized straight from borrowed parts.
#[derive(serde::Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<tools::BodyMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Format<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

#[derive(serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Format<'a> {
    JsonSchema { json_schema: JsonSchemaFormat<'a> },
    JsonObject,
}

#[derive(serde::Serialize)]
struct JsonSchemaFormat<'a> {
    name: String,
    schema: &'a Value,
    strict: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_never_panics_on_odd_bodies() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"{}",
            b"{\"choices\":null}",
            b"{\"choices\":[{}]}",
            b"{\"choices\":[{\"message\":{\"content\":5}}]}",
            b"\xff",
        ] {
            assert!(matches!(
                parse_response(body),
                Err(ProviderError::InvalidResponse(_))
            ));
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_response(deep.as_bytes()).is_err());
    }

    /// What the `Provider` doc promises about the downgrade: one `chat` sends the request, gets a
    /// 400 rejecting `json_schema`, re-sends it once without `response_format`, and logs a warning
    /// naming the provider inside the caller's (the engine's attempt) span.
    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn the_json_schema_downgrade_resends_once_and_warns_inside_the_attempt_span() {
        use std::fmt::Write as _;
        use std::sync::{Arc, Mutex};
        use tracing::Instrument as _;
        use tracing::instrument::WithSubscriber as _;
        use tracing_subscriber::layer::SubscriberExt as _;

        /// Every event as `level span: field=value ...`.
        struct Events(Arc<Mutex<Vec<String>>>);
        impl<S> tracing_subscriber::Layer<S> for Events
        where
            S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
        {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                ctx: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let span = ctx.event_span(event).map(|s| s.name()).unwrap_or("-");
                let mut line = format!("{} {span}:", event.metadata().level());
                event.record(&mut |f: &tracing::field::Field, v: &dyn fmt::Debug| {
                    let _ = write!(line, " {}={v:?}", f.name());
                });
                self.0.lock().unwrap().push(line);
            }
        }

        let rejection = serde_json::json!({"error": {"message":
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported."}});
        let server = crate::testing::ChaosServer::builder()
            .script([crate::testing::Reply::json(400, &rejection)])
            .start()
            .await
            .unwrap();
        let p = OpenAiCompatible::builder(server.base_url())
            .name("local")
            .build()
            .unwrap();
        let request = ChatRequest {
            model: "m".into(),
            messages: vec![super::super::Message::user("hi")],
            response_format: ResponseFormat::json_schema(
                "Out",
                serde_json::json!({"type": "object"}),
            ),
            temperature: None,
            max_tokens: None,
            seed: None,
            ..Default::default()
        };
        let events = Arc::new(Mutex::new(Vec::new()));
        let dispatch =
            tracing::Dispatch::new(tracing_subscriber::registry().with(Events(events.clone())));
        // Opened under the capturing subscriber, as the engine opens its attempt span.
        let span = tracing::dispatcher::with_default(&dispatch, || tracing::info_span!("attempt"));
        let answer = p
            .chat(&request)
            .instrument(span)
            .with_subscriber(dispatch)
            .await;
        assert!(answer.is_ok(), "{answer:?}");

        let formats: Vec<bool> = server
            .requests()
            .iter()
            .map(|r| r.body.as_ref().unwrap().get("response_format").is_some())
            .collect();
        assert_eq!(
            formats,
            [true, false],
            "one re-send, without response_format"
        );
        assert!(p.schema_rejected());
        let events = events.lock().unwrap();
        let warnings: Vec<&String> = events.iter().filter(|e| e.starts_with("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{events:?}");
        assert!(
            warnings[0].starts_with("WARN attempt:") && warnings[0].contains("provider=local"),
            "{warnings:?}"
        );
    }

    #[test]
    fn cached_and_reasoning_tokens_are_read_from_the_details() {
        let r = parse_response(
            br#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":2006,"completion_tokens":300,
                "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
                "completion_tokens_details":{"reasoning_tokens":256}}}"#,
        )
        .unwrap();
        assert_eq!(
            r.usage,
            Usage::new(2006, 300)
                .with_cache(1920, 0)
                .with_reasoning(256)
        );
        let bare = parse_response(
            br#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":null}}"#,
        )
        .unwrap();
        assert_eq!(bare.usage, Usage::new(5, 1));
    }

    #[test]
    fn content_parts_are_joined() {
        let r = parse_response(
            br#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}"#,
        )
        .unwrap();
        assert_eq!(r.content, "ab");
    }
}
