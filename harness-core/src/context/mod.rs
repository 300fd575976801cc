//! Context assembly: the messages of the first attempt, from the contract's template or the task
//! body; [`ContextPlan`]s that fill typed sections (system, instructions, documents, history,
//! tool state, user input) within a token budget, counted by a [`TokenCounter`], and say what
//! they kept and cut; and the text of a reask ([`reask`]).

mod assemble;
pub mod reask;
mod source;
pub mod tokens;

pub use crate::contract::{
    ContextPlan, Keep, PLAN_COLUMNS, Section, SectionKind, Truncate, known_window,
};
pub(crate) use assemble::rank;
pub use assemble::{Assembled, AssemblyReport, ContextError, Cut, Document, Fill, SectionReport};
pub use reask::{echo, reask_message};
pub(crate) use source::fetch_once;
pub use source::{
    ContextSource, FnSource, SourceError, SourceQuery, Sources, Unavailable, source_fn,
};
pub use tokens::{Estimator, TokenCounter};

use crate::contract::{TaskContract, render_prompt};
use crate::provider::Message;

/// The messages a task sends. Built from `system` + `prompt`, or returned by the task's body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The messages, in order.
    pub messages: Vec<Message>,
    /// How a [`ContextPlan`] chose them, when one did: it goes into the call's report and its
    /// audit record.
    pub assembly: Option<AssemblyReport>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a system message.
    pub fn system(mut self, content: impl Into<String>) -> Self {
        self.messages.push(Message::system(content));
        self
    }
    /// Adds a user message.
    pub fn user(mut self, content: impl Into<String>) -> Self {
        self.messages.push(Message::user(content));
        self
    }
    /// Adds an assistant message (e.g. a few-shot example answer).
    pub fn assistant(mut self, content: impl Into<String>) -> Self {
        self.messages.push(Message::assistant(content));
        self
    }
}

/// What a task body may return to build its context.
pub trait IntoContext {
    /// Converts into a context.
    fn into_context(self) -> Context;
}

impl IntoContext for Context {
    fn into_context(self) -> Context {
        self
    }
}
impl IntoContext for String {
    fn into_context(self) -> Context {
        Context::new().user(self)
    }
}
impl IntoContext for &str {
    fn into_context(self) -> Context {
        Context::new().user(self)
    }
}
impl IntoContext for Vec<Message> {
    fn into_context(self) -> Context {
        Context {
            messages: self,
            assembly: None,
        }
    }
}

/// The first attempt's messages: the task's system message (or the body's), then the rendered
/// prompt (or the body's other messages). The schema is not in them: the request's
/// `response_format` carries it, and a provider that cannot have the server enforce it adds its
/// instruction to the system message ([`ChatRequest::prompted_messages`](crate::provider::ChatRequest::prompted_messages)).
pub(crate) fn initial_messages(
    contract: &TaskContract,
    inputs: &[(&'static str, String)],
    context: Option<Context>,
) -> Vec<Message> {
    match context {
        Some(c) => c.messages,
        None => {
            let mut m = Vec::with_capacity(2);
            if let Some(system) = contract.system {
                m.push(Message::system(system));
            }
            if let Some(prompt) = contract.prompt {
                m.push(Message::user(render_prompt(prompt, inputs)));
            }
            m
        }
    }
}
