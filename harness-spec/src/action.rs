//! [`ActionKind`]: what a contract can do about a failure.

use core::fmt;

/// The kind of a contract step, without its parameters.
///
/// Not `#[non_exhaustive]`: the engine and the metrics match on every kind, and a new kind needs
/// new grammar in the macro anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum ActionKind {
    /// Send the same request again after a backoff.
    Retry,
    /// Send the request again with the previous answer and what was wrong with it.
    Reask,
    /// Switch to another model (and possibly provider).
    Fallback,
    /// Stop and hand the call to a human: a typed outcome, never a model answer.
    Escalate,
    /// Stop and return the task's default value.
    Default,
    /// Stop and return an error of the failure's class.
    Fail,
    /// Go on without the context source that failed (only for `context_unavailable`): the call
    /// continues with the other sources' documents.
    Proceed,
}

impl ActionKind {
    /// Every kind, in the order the grammar lists them.
    pub const ALL: [ActionKind; 7] = [
        ActionKind::Retry,
        ActionKind::Reask,
        ActionKind::Fallback,
        ActionKind::Escalate,
        ActionKind::Default,
        ActionKind::Fail,
        ActionKind::Proceed,
    ];

    /// The name as written in the attribute.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionKind::Retry => "retry",
            ActionKind::Reask => "reask",
            ActionKind::Fallback => "fallback",
            ActionKind::Escalate => "escalate",
            ActionKind::Default => "default",
            ActionKind::Fail => "fail",
            ActionKind::Proceed => "proceed",
        }
    }

    /// The kind written as `name` in an attribute.
    pub fn from_name(name: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Terminal actions end the chain: nothing may follow them.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            ActionKind::Escalate | ActionKind::Default | ActionKind::Fail | ActionKind::Proceed
        )
    }

    /// Whether the action makes another request to a provider.
    pub const fn makes_attempt(self) -> bool {
        matches!(
            self,
            ActionKind::Retry | ActionKind::Reask | ActionKind::Fallback
        )
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ActionKind;

    #[test]
    fn names_round_trip_and_terminals_make_no_attempt() {
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::from_name(k.as_str()), Some(k));
            assert!(!(k.is_terminal() && k.makes_attempt()));
            assert!(k.is_terminal() || k.makes_attempt());
        }
        assert_eq!(ActionKind::from_name("retyr"), None);
    }
}
