//! What the declared context sources of one call did: [`SourceReport`], one per source, with
//! every fetch it took ([`SourceFetch`]). The engine's source step writes them; the call's report
//! and its audit record carry them.

use serde::{Deserialize, Serialize};

/// One fetch of a source: which source was asked (the declared one, or a fallback), and how it
/// went. Fields in sorted order: audit records serialize it as their canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFetch {
    /// Why it failed (`None` when it gave documents).
    pub error: Option<String>,
    /// The failure's short name: `error`, `timeout`, `panic`, `over_budget`, `not_registered`.
    pub failure: Option<String>,
    /// The registered source that was asked.
    pub source: String,
}

/// What one declared source contributed to a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceReport {
    /// The step of its `context_unavailable` contract that ended its failures: `retry`,
    /// `fallback` (when the answer came from there), `proceed`, `default`, `escalate`, `fail`;
    /// `None` when the first fetch gave documents.
    pub action: Option<String>,
    /// The ids of the documents cut (over the limit or the budget), best ranked first.
    pub cut: Vec<String>,
    /// Every fetch, in order.
    pub fetches: Vec<SourceFetch>,
    /// The ids of the documents sent, best ranked first.
    pub kept: Vec<String>,
    /// The tokens the kept documents take.
    pub kept_tokens: u32,
    /// The declared source.
    pub name: String,
    /// The section its documents were sent under.
    pub section: String,
}

impl SourceReport {
    /// Whether its documents were sent (from it or from a fallback source).
    pub fn is_available(&self) -> bool {
        self.fetches.last().is_some_and(|f| f.error.is_none())
    }
}
