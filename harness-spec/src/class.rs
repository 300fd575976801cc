//! [`FailureClass`]: the ways a harnessed call can fail.

use core::fmt;

use crate::ActionKind;

/// A way a harnessed call can fail. Every task must say what happens for each class that can occur.
///
/// Not `#[non_exhaustive]`: a task must declare a contract for every class, so a new class is a
/// breaking change by design, and generated code and the engine match on the classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum FailureClass {
    /// An attempt took longer than the task's per-attempt timeout, or the call's deadline ran out.
    Timeout,
    /// The provider answered 429 (or an equivalent), possibly with `Retry-After`.
    RateLimited,
    /// The provider failed: 5xx, connection errors, a malformed HTTP response, an open circuit breaker.
    ProviderError,
    /// The model answered, but the answer is not valid JSON, does not fit the schema, or breaks a rule.
    InvalidOutput,
    /// The model declined to answer (a refusal message or a content filter).
    Refusal,
    /// The answer is valid but its confidence field is below the task's threshold.
    LowConfidence,
    /// A context source the task declares (retrieval, a lookup) failed, timed out, panicked or
    /// returned more than its budget. Only tasks that declare a source can meet it.
    ContextUnavailable,
}

impl FailureClass {
    /// Every class, in the order contracts are listed and documented.
    pub const ALL: [FailureClass; 7] = [
        FailureClass::Timeout,
        FailureClass::RateLimited,
        FailureClass::ProviderError,
        FailureClass::InvalidOutput,
        FailureClass::Refusal,
        FailureClass::LowConfidence,
        FailureClass::ContextUnavailable,
    ];

    /// The classes every task must cover; the others are conditional:
    /// [`FailureClass::LowConfidence`] only applies to outputs with a confidence field, and
    /// [`FailureClass::ContextUnavailable`] only to tasks that declare a context source.
    pub const ALWAYS: [FailureClass; 5] = [
        FailureClass::Timeout,
        FailureClass::RateLimited,
        FailureClass::ProviderError,
        FailureClass::InvalidOutput,
        FailureClass::Refusal,
    ];

    /// The snake_case name used in attributes, telemetry and audit records (`"rate_limited"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureClass::Timeout => "timeout",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::ProviderError => "provider_error",
            FailureClass::InvalidOutput => "invalid_output",
            FailureClass::Refusal => "refusal",
            FailureClass::LowConfidence => "low_confidence",
            FailureClass::ContextUnavailable => "context_unavailable",
        }
    }

    /// The attribute key that declares this class's contract (`"on_rate_limited"`).
    pub const fn attribute_key(self) -> &'static str {
        match self {
            FailureClass::Timeout => "on_timeout",
            FailureClass::RateLimited => "on_rate_limited",
            FailureClass::ProviderError => "on_provider_error",
            FailureClass::InvalidOutput => "on_invalid_output",
            FailureClass::Refusal => "on_refusal",
            FailureClass::LowConfidence => "on_low_confidence",
            FailureClass::ContextUnavailable => "on_context_unavailable",
        }
    }

    /// The class whose [`attribute_key`](FailureClass::attribute_key) is `key`.
    pub fn from_attribute_key(key: &str) -> Option<FailureClass> {
        FailureClass::ALL
            .into_iter()
            .find(|c| c.attribute_key() == key)
    }

    /// Position in [`FailureClass::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether the class is about a context source rather than a model's attempt: its chain is
    /// run per declared source, before the first attempt, and `retry` and `fallback` there mean
    /// fetching again and fetching from another registered source.
    pub const fn is_context(self) -> bool {
        matches!(self, FailureClass::ContextUnavailable)
    }

    /// Whether `action` makes sense for this class. The macro rejects the others at compile time:
    /// asking the model again (`reask`) cannot cure a timeout, a rate limit, a provider error or a
    /// source that is down, and only a missing source can be done without (`proceed`).
    pub const fn allows(self, action: ActionKind) -> bool {
        match action {
            ActionKind::Reask => matches!(
                self,
                FailureClass::InvalidOutput | FailureClass::Refusal | FailureClass::LowConfidence
            ),
            ActionKind::Proceed => self.is_context(),
            ActionKind::Retry
            | ActionKind::Fallback
            | ActionKind::Escalate
            | ActionKind::Default
            | ActionKind::Fail => true,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_names_and_indices_agree() {
        for (i, c) in FailureClass::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(c.attribute_key(), format!("on_{}", c.as_str()));
            assert_eq!(FailureClass::from_attribute_key(c.attribute_key()), Some(c));
        }
        assert_eq!(FailureClass::from_attribute_key("on_timout"), None);
        assert_eq!(FailureClass::ALWAYS, FailureClass::ALL[..5]);
        assert_eq!(
            FailureClass::from_attribute_key("on_context_unavailable"),
            Some(FailureClass::ContextUnavailable)
        );
    }

    #[test]
    fn proceed_only_answers_a_missing_source() {
        for c in FailureClass::ALL {
            assert_eq!(
                c.allows(ActionKind::Proceed),
                c == FailureClass::ContextUnavailable
            );
            assert_eq!(c.is_context(), c == FailureClass::ContextUnavailable);
        }
    }

    #[test]
    fn reask_only_answers_what_the_model_can_fix() {
        let reaskable: Vec<_> = FailureClass::ALL
            .into_iter()
            .filter(|c| c.allows(ActionKind::Reask))
            .collect();
        assert_eq!(
            reaskable,
            [
                FailureClass::InvalidOutput,
                FailureClass::Refusal,
                FailureClass::LowConfidence
            ]
        );
        for kind in ActionKind::ALL {
            if kind != ActionKind::Reask && kind != ActionKind::Proceed {
                assert!(FailureClass::ALL.into_iter().all(|c| c.allows(kind)));
            }
        }
    }
}
