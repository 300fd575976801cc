//! Scopes and grants: a tool requires a [`Scope`] (`orders:write`); an agent holds [`Grants`]
//! (`orders:read`, `orders:*`, or `*`). A call runs only when a grant covers the tool's scope.

use std::fmt;

use harness_spec::tool::{grant_error, scope_error};

/// Why a scope or grant was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid {what}: {reason}")]
pub struct ScopeError {
    /// The text given.
    pub text: String,
    /// `scope` or `grant`.
    pub what: &'static str,
    /// What is wrong, worded as the fix.
    pub reason: &'static str,
}

/// What a tool requires: `resource:action` (two or more `:`-joined segments of lower-case ASCII
/// letters, digits, `_`, `-`), such as `orders:read` or `billing:refunds:write`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// Checks `text`.
    pub fn new(text: impl Into<String>) -> Result<Scope, ScopeError> {
        let text = text.into();
        match scope_error(&text) {
            None => Ok(Scope(text)),
            Some(reason) => Err(ScopeError {
                text,
                what: "scope",
                reason,
            }),
        }
    }

    /// A scope `#[llm_tool]` already checked at compile time (not re-checked).
    pub(crate) fn checked(text: &'static str) -> Scope {
        Scope(text.to_owned())
    }

    /// The scope as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The scopes an agent was granted. A grant is a scope (exact), a prefix ending in `*`
/// (`orders:*` covers `orders:read` and `orders:refunds:write`, not `orderstats:read`), or `*`
/// (everything; for tests and trusted programs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    grants: Vec<Grant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Grant {
    All,
    Exact(String),
    /// The segments before `*`, with the trailing `:` (`orders:`).
    Prefix(String),
}

impl Grants {
    /// No grants: every call is out of scope.
    pub fn none() -> Self {
        Grants::default()
    }

    /// Checks each grant.
    pub fn new<I, S>(grants: I) -> Result<Grants, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Grants::default();
        for g in grants {
            let g = g.as_ref();
            if let Some(reason) = grant_error(g) {
                return Err(ScopeError {
                    text: g.to_owned(),
                    what: "grant",
                    reason,
                });
            }
            out.grants.push(match g.strip_suffix('*') {
                Some("") => Grant::All,
                Some(prefix) => Grant::Prefix(prefix.to_owned()),
                None => Grant::Exact(g.to_owned()),
            });
        }
        Ok(out)
    }

    /// Whether a grant covers `scope`.
    pub fn allows(&self, scope: &Scope) -> bool {
        let s = scope.as_str();
        self.grants.iter().any(|g| match g {
            Grant::All => true,
            Grant::Exact(e) => e == s,
            Grant::Prefix(p) => s.starts_with(p.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_whole_segments_only() {
        let g = Grants::new(["orders:*", "accounts:read"]).unwrap();
        let allows = |s: &str| g.allows(&Scope::new(s).unwrap());
        assert!(allows("orders:read"));
        assert!(allows("orders:refunds:write"));
        assert!(!allows("orderstats:read"));
        assert!(allows("accounts:read"));
        assert!(!allows("accounts:admin"));
        assert!(!allows("accounts:read:all"));
        assert!(
            Grants::new(["*"])
                .unwrap()
                .allows(&Scope::new("x:y").unwrap())
        );
        assert!(!Grants::none().allows(&Scope::new("x:y").unwrap()));
    }

    #[test]
    fn bad_text_is_refused_with_the_fix() {
        let e = Scope::new("orders").unwrap_err();
        assert_eq!(e.what, "scope");
        assert!(e.to_string().contains("resource:action"), "{e}");
        assert!(Scope::new("orders:*").is_err());
        let e = Grants::new(["orders:read", "Orders:*"]).unwrap_err();
        assert_eq!((e.text.as_str(), e.what), ("Orders:*", "grant"));
    }
}
