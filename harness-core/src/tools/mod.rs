//! Tools with permission scopes, enforced by the harness, never by the model.
//!
//! A [`Tool`] has a [`ToolSpec`]: the [`Scope`] it requires (`orders:write`), whether each call
//! needs a person's approval, a [`Rate`] limit, a timeout, the arguments that need trusted values
//! and its error classes. A [`Toolbox`] holds the program's tools and the agent's [`Grants`] and
//! decides, for each [`ToolCall`](crate::provider::ToolCall) a model asks for, what happens
//! ([`Dispatch`]): denied (unknown, not offered, out of scope, malformed or invalid arguments,
//! an untrusted value, rate limited: the tool never runs, the model gets a tool error),
//! pending (approval), executed, or failed (the tool's own error, a timeout, a panic).
//! Each outcome has a tool-result [`Message`](crate::provider::Message) for the model.
//! `#[llm_tool]` turns a function into a [`Tool`]. See `docs/tools.md`.

mod error;
mod provenance;
mod scope;
mod spec;
mod tool;
mod toolbox;

pub use error::{ToolError, ToolErrorKind, ToolFailure};
pub use provenance::Provenance;
pub use scope::{Grants, Scope, ScopeError};
pub use spec::{DEFAULT_TIMEOUT, Rate, ToolSpec, parameters_for};
pub use tool::Tool;
pub use toolbox::{Dispatch, Pending, Toolbox, ToolboxError};
