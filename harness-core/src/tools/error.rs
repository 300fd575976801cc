//! [`ToolError`]: why a tool call was denied (never run) or failed (ran, and did not succeed).

use std::fmt;

/// What went wrong with a tool call; [`ToolError::kind`] returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ToolErrorKind {
    /// No tool of that name is in the toolbox.
    UnknownTool,
    /// The tool exists but was not offered in this request.
    NotOffered,
    /// No grant covers the tool's scope.
    OutOfScope,
    /// The arguments are not JSON.
    MalformedArguments,
    /// The arguments do not fit the tool's schema (or its argument type).
    InvalidArguments,
    /// An argument that needs a trusted value holds one from a tool's output (or from nowhere).
    Untrusted,
    /// The tool's rate limit is used up.
    RateLimited,
    /// An approval does not match the call it names (its arguments were altered).
    ApprovalMismatch,
    /// The tool ran past its timeout (and was dropped).
    Timeout,
    /// The tool panicked (caught; the program goes on).
    Panicked,
    /// The tool answered with an error.
    Failed,
}

impl ToolErrorKind {
    /// The stable snake_case name (audit records, metrics, the message to the model).
    pub const fn as_str(self) -> &'static str {
        match self {
            ToolErrorKind::UnknownTool => "unknown_tool",
            ToolErrorKind::NotOffered => "not_offered",
            ToolErrorKind::OutOfScope => "out_of_scope",
            ToolErrorKind::MalformedArguments => "malformed_arguments",
            ToolErrorKind::InvalidArguments => "invalid_arguments",
            ToolErrorKind::Untrusted => "untrusted_argument",
            ToolErrorKind::RateLimited => "rate_limited",
            ToolErrorKind::ApprovalMismatch => "approval_mismatch",
            ToolErrorKind::Timeout => "timeout",
            ToolErrorKind::Panicked => "panicked",
            ToolErrorKind::Failed => "failed",
        }
    }

    /// Whether the call was refused before the tool ran (a denial), as opposed to a failure of
    /// a tool that ran.
    pub const fn is_denial(self) -> bool {
        !matches!(
            self,
            ToolErrorKind::Timeout | ToolErrorKind::Panicked | ToolErrorKind::Failed
        )
    }
}

impl fmt::Display for ToolErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A denied or failed tool call: its kind, the tool's name as the model wrote it, and a message
/// meant for the model (it goes back as the call's result) and for logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tool `{tool}`: {kind}: {message}")]
pub struct ToolError {
    kind: ToolErrorKind,
    tool: String,
    message: String,
    class: Option<String>,
}

impl ToolError {
    pub(crate) fn new(kind: ToolErrorKind, tool: &str, message: impl Into<String>) -> Self {
        ToolError {
            kind,
            tool: tool.to_owned(),
            message: message.into(),
            class: None,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ToolErrorKind {
        self.kind
    }

    /// The tool's name, as the model wrote it.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// What was wrong, for the model and for logs.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For [`ToolErrorKind::Failed`], the tool's own error class (`not_found`, ...).
    pub fn class(&self) -> Option<&str> {
        self.class.as_deref()
    }

    /// Whether the tool never ran.
    pub fn is_denial(&self) -> bool {
        self.kind.is_denial()
    }
}

/// How a tool itself fails: an error class it declared in its spec (`not_found`) and a message
/// for the model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct ToolFailure {
    /// The error class.
    pub class: String,
    /// What happened.
    pub message: String,
}

impl ToolFailure {
    /// A failure of class `class`.
    pub fn new(class: impl Into<String>, message: impl Into<String>) -> Self {
        ToolFailure {
            class: class.into(),
            message: message.into(),
        }
    }

    pub(crate) fn into_error(self, tool: &str) -> ToolError {
        ToolError {
            class: Some(self.class),
            ..ToolError::new(ToolErrorKind::Failed, tool, self.message)
        }
    }
}
