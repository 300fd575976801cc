//! Declared context sources: a [`ContextSource`] is what a task's `source(name, ...)` fetches
//! documents from (retrieval, a database lookup, a user profile). It is registered on the harness
//! by name ([`HarnessBuilder::source`](crate::HarnessBuilder::source)); the engine asks it once
//! per call, before the first attempt, with a [`SourceQuery`], and keeps its best-ranked
//! documents within the declared limit and budget.
//!
//! A source that fails is [`FailureClass::ContextUnavailable`](crate::FailureClass): an error it
//! returns, a timeout, a panic, or documents of which not even the best fits the budget. Each is
//! an [`Unavailable`], and the source's contract decides what happens (see `docs/context.md`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::Document;
use crate::provider::BoxFuture;

/// What a source is asked: which task and declared source, the call's rendered inputs, and the
/// text of the request's last user message (the question, for a retrieval source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceQuery {
    /// The task being called.
    pub task: &'static str,
    /// The source as the task declares it (a fallback source is asked with the declared name).
    pub source: &'static str,
    /// The task's inputs, rendered, in signature order.
    pub inputs: Vec<(&'static str, String)>,
    /// The last user message of the first request, before any document is added.
    pub text: String,
    /// The most documents the task keeps: a source may return more, the best-ranked are kept.
    pub limit: u32,
}

impl SourceQuery {
    /// The rendered value of input `name`, if the task has one.
    pub fn input(&self, name: &str) -> Option<&str> {
        self.inputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a source could not answer, as the source says it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    message: String,
}

impl SourceError {
    /// An error saying `message` (keep secrets out: it goes into reports and audit records).
    pub fn new(message: impl Into<String>) -> SourceError {
        SourceError {
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A source of documents for a task's context. Implement it for your retrieval or lookup, or
/// wrap an async closure with [`source_fn`].
///
/// ```
/// use harness_core::context::{Document, source_fn};
///
/// let kb = source_fn(|query| async move {
///     Ok(vec![Document {
///         id: "refunds".into(),
///         text: format!("Refunds take five days (asked: {}).", query.text),
///         score: 1.0,
///         source: "kb".into(),
///     }])
/// });
/// let harness = harness_core::Harness::builder().source("kb", kb);
/// # let _ = harness;
/// ```
pub trait ContextSource: Send + Sync + 'static {
    /// The documents for `query`, in any order: the engine ranks them (score, then id, then
    /// text) and keeps what fits.
    fn fetch<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<Vec<Document>, SourceError>>;
}

impl<S: ContextSource + ?Sized> ContextSource for Arc<S> {
    fn fetch<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<Vec<Document>, SourceError>> {
        (**self).fetch(query)
    }
}

/// A source made of an async closure over an owned [`SourceQuery`]; see [`source_fn`].
pub struct FnSource<F>(F);

/// A [`ContextSource`] from an async closure.
pub fn source_fn<F, Fut>(f: F) -> FnSource<F>
where
    F: Fn(SourceQuery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Document>, SourceError>> + Send + 'static,
{
    FnSource(f)
}

impl<F, Fut> ContextSource for FnSource<F>
where
    F: Fn(SourceQuery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Document>, SourceError>> + Send + 'static,
{
    fn fetch<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<Vec<Document>, SourceError>> {
        Box::pin((self.0)(query.clone()))
    }
}

/// Why one fetch of a source gave nothing usable: the typed form of `context_unavailable`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// The source returned an error.
    #[error("source `{source_name}` failed: {message}")]
    Failed {
        /// The registered source asked.
        source_name: String,
        /// What it said.
        message: String,
    },
    /// The fetch took longer than the declared timeout.
    #[error("source `{source_name}` did not answer within {timeout:?}")]
    TimedOut {
        /// The registered source asked.
        source_name: String,
        /// The declared timeout.
        timeout: Duration,
    },
    /// The fetch panicked (the panic is caught; its message is not kept).
    #[error("source `{source_name}` panicked")]
    Panicked {
        /// The registered source asked.
        source_name: String,
    },
    /// Not even the best-ranked document fits the declared budget.
    #[error(
        "source `{source_name}` returned more than its budget: its best document takes {tokens} tokens, the budget is {budget}"
    )]
    OverBudget {
        /// The registered source asked.
        source_name: String,
        /// The best document's tokens.
        tokens: u32,
        /// The declared budget.
        budget: u32,
    },
    /// No source is registered under the name (a harness set-up error, handled by the contract
    /// like any other unavailability so a drill can take a source away).
    #[error("no source `{source_name}` is registered on the harness")]
    NotRegistered {
        /// The name asked for.
        source_name: String,
    },
}

impl Unavailable {
    /// The short name records use: `error`, `timeout`, `panic`, `over_budget`, `not_registered`.
    pub fn kind(&self) -> &'static str {
        match self {
            Unavailable::Failed { .. } => "error",
            Unavailable::TimedOut { .. } => "timeout",
            Unavailable::Panicked { .. } => "panic",
            Unavailable::OverBudget { .. } => "over_budget",
            Unavailable::NotRegistered { .. } => "not_registered",
        }
    }
}

/// The registered sources of a harness, by name.
#[derive(Clone, Default)]
pub struct Sources {
    by_name: std::collections::BTreeMap<String, Arc<dyn ContextSource>>,
}

impl Sources {
    /// Registers `source` under `name`, replacing any source of that name.
    pub fn insert(&mut self, name: impl Into<String>, source: impl ContextSource) {
        self.by_name.insert(name.into(), Arc::new(source));
    }

    /// The source registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn ContextSource>> {
        self.by_name.get(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// A copy without the source `name` (what a drill uses to take a source down).
    pub fn without(&self, name: &str) -> Sources {
        let mut by_name = self.by_name.clone();
        by_name.remove(name);
        Sources { by_name }
    }
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// One fetch of the source `source` for `query`, in its own task so a panic is caught, cut off
/// at `timeout` (on tokio's clock).
pub(crate) async fn fetch_once(
    source_name: &str,
    source: Option<Arc<dyn ContextSource>>,
    query: Arc<SourceQuery>,
    timeout: Duration,
) -> Result<Vec<Document>, Unavailable> {
    let Some(source) = source else {
        return Err(Unavailable::NotRegistered {
            source_name: source_name.to_owned(),
        });
    };
    let mut handle = tokio::spawn(async move { source.fetch(&query).await });
    match tokio::time::timeout(timeout, &mut handle).await {
        Err(_) => {
            handle.abort();
            Err(Unavailable::TimedOut {
                source_name: source_name.to_owned(),
                timeout,
            })
        }
        Ok(Err(join)) if join.is_panic() => Err(Unavailable::Panicked {
            source_name: source_name.to_owned(),
        }),
        Ok(Err(join)) => Err(Unavailable::Failed {
            source_name: source_name.to_owned(),
            message: join.to_string(),
        }),
        Ok(Ok(Err(e))) => Err(Unavailable::Failed {
            source_name: source_name.to_owned(),
            message: e.message,
        }),
        Ok(Ok(Ok(docs))) => Ok(docs),
    }
}
