//! A provider that answers from a script, for unit tests of code that uses tasks. Its answers go
//! through the same parse → validate → contract path as a real provider's. It is always
//! compiled (no feature needed), so a user's `#[cfg(test)]` module can use it as it is; the
//! chaos server, for tests over real HTTP, is behind the `testing` feature.
//!
//! ```
//! use harness_core::provider::scripted::Scripted;
//! use harness_core::provider::ProviderError;
//!
//! let script = Scripted::new()
//!     .error(ProviderError::Status { status: 503, message: "overloaded".into() })
//!     .reply(r#"{"label": "Positive", "confidence": 0.9}"#);
//! // `Harness::builder().provider("scripted", script.clone())`; afterwards
//! // `script.requests()` shows exactly what the engine sent.
//! assert_eq!(script.remaining(), 2);
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::tool::{ToolCall, ToolCalling, prompted};
use super::{
    BoxFuture, ChatRequest, ChatResponse, FinishReason, Provider, ProviderError, ProviderInfo,
    Usage,
};

/// One scripted step.
#[derive(Clone, Debug)]
pub enum Step {
    /// Answer with this response.
    Respond(ChatResponse),
    /// Fail with this error.
    Fail(ProviderError),
    /// Wait (on tokio's clock), then do the inner step.
    Delay(Duration, Box<Step>),
}

/// A scripted provider. Cloning shares the script and the request log.
#[derive(Clone, Debug, Default)]
pub struct Scripted {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    name: String,
    steps: Mutex<VecDeque<Step>>,
    repeat: Mutex<Option<Step>>,
    requests: Mutex<Vec<ChatRequest>>,
    /// Answers are "next action" objects, read back into tool calls.
    prompted: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Scripted {
    /// An empty script named `scripted`.
    pub fn new() -> Self {
        Self::named("scripted")
    }

    /// An empty script with a provider name of your choice (for telemetry and routing).
    pub fn named(name: impl Into<String>) -> Self {
        Scripted {
            inner: Arc::new(Inner {
                name: name.into(),
                ..Inner::default()
            }),
        }
    }

    /// Appends a step.
    pub fn step(self, step: Step) -> Self {
        lock(&self.inner.steps).push_back(step);
        self
    }

    /// Appends an answer with this content, `finish_reason: stop` and a small token usage.
    pub fn reply(self, content: impl Into<String>) -> Self {
        self.step(Step::Respond(Self::response(content)))
    }

    /// Appends an answer calling `calls` (in parallel when there are several), with
    /// `finish_reason: tool_calls`.
    pub fn tool_calls(self, calls: impl IntoIterator<Item = ToolCall>) -> Self {
        self.step(Step::Respond(Self::tool_call_response(calls)))
    }

    /// Reads answers as a server without native tools would give them: a request with tools
    /// gets a [`prompted`] "next action" object in its content, turned back into tool calls
    /// (script `{"action":"call_tool",...}` replies with [`Scripted::reply`]).
    pub fn prompted(self) -> Self {
        self.inner.prompted.store(true, Ordering::Relaxed);
        self
    }

    /// Appends a full response.
    pub fn respond(self, response: ChatResponse) -> Self {
        self.step(Step::Respond(response))
    }

    /// Appends a failure.
    pub fn error(self, error: ProviderError) -> Self {
        self.step(Step::Fail(error))
    }

    /// Appends an answer that arrives after `delay`.
    pub fn delayed(self, delay: Duration, content: impl Into<String>) -> Self {
        self.step(Step::Delay(
            delay,
            Box::new(Step::Respond(Self::response(content))),
        ))
    }

    /// What to do once the script is used up (otherwise each further request fails with a
    /// `Config` error naming the exhausted script).
    pub fn then_always(self, step: Step) -> Self {
        *lock(&self.inner.repeat) = Some(step);
        self
    }

    /// A response with `content`, as [`Scripted::reply`] sends it.
    pub fn response(content: impl Into<String>) -> ChatResponse {
        let content = content.into();
        let output_tokens = (content.len() / 4).max(1) as u64;
        ChatResponse {
            content,
            refusal: None,
            finish_reason: Some(FinishReason::Stop),
            model: None,
            id: None,
            usage: Usage::new(10, output_tokens),
            ..Default::default()
        }
    }

    /// A response calling `calls`, as [`Scripted::tool_calls`] sends it.
    pub fn tool_call_response(calls: impl IntoIterator<Item = ToolCall>) -> ChatResponse {
        ChatResponse {
            tool_calls: calls.into_iter().collect(),
            finish_reason: Some(FinishReason::ToolCalls),
            ..Self::response("")
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.inner.requests).clone()
    }

    /// Steps not yet used.
    pub fn remaining(&self) -> usize {
        lock(&self.inner.steps).len()
    }
}

impl Provider for Scripted {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.inner.name.clone(),
            address: None,
            port: None,
        }
    }

    fn tool_calling(&self) -> ToolCalling {
        if self.inner.prompted.load(Ordering::Relaxed) {
            ToolCalling::Prompted
        } else {
            ToolCalling::Native
        }
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            let n = {
                let mut log = lock(&self.inner.requests);
                log.push(request.clone());
                log.len()
            };
            let step = lock(&self.inner.steps)
                .pop_front()
                .or_else(|| lock(&self.inner.repeat).clone());
            let Some(mut step) = step else {
                return Err(ProviderError::Config(format!(
                    "the script of provider `{}` has no step left for request {n}",
                    self.inner.name
                )));
            };
            loop {
                match step {
                    Step::Respond(mut r) => {
                        if r.model.is_none() {
                            r.model = Some(request.model.clone());
                        }
                        if r.id.is_none() {
                            r.id = Some(format!("scripted-{n}"));
                        }
                        if self.inner.prompted.load(Ordering::Relaxed) {
                            if let Some(lowered) = prompted::lower(request) {
                                r = lowered.raise(r);
                            }
                        }
                        return Ok(r);
                    }
                    Step::Fail(e) => return Err(e),
                    Step::Delay(d, inner) => {
                        tokio::time::sleep(d).await;
                        step = *inner;
                    }
                }
            }
        })
    }
}
