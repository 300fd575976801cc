//! The source step, before [`start`](super::Call::start): fetch every context source the task
//! declares, at once, each within its timeout; keep each one's best-ranked documents within its
//! limit and budget; and when one is unavailable (an error, a timeout, a panic, over budget, not
//! registered), walk its `context_unavailable` contract: `retry` fetches again after the step's
//! backoff, `fallback("other")` fetches from another registered source, `proceed` goes on
//! without it, `default`, `escalate` and `fail` end the call before any attempt.
//!
//! Results are read in declaration order, so the documents a request carries do not depend on
//! which source answered first.

use std::sync::Arc;

use tracing::{info, warn};

use crate::context::{
    ContextSource, Document, Estimator, SourceQuery, Sources, TokenCounter, Unavailable,
    fetch_once, rank,
};
use crate::contract::{Action, ActionKind, FailureClass, SourceSpec, TaskContract};
use crate::engine::Harness;
use crate::outcome::{ActionTaken, SourceFetch, SourceReport};
use crate::provider::{Message, Role};
use crate::recovery::Recovery;

/// A source's contract ended the call: with which step, and why.
#[derive(Clone, Debug)]
pub(crate) struct SourceEnd {
    pub(crate) action: ActionKind,
    pub(crate) message: String,
}

/// What the declared sources gave one call.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// One user message per source that gave documents, in declaration order.
    pub(crate) messages: Vec<(&'static str, Message)>,
    pub(crate) reports: Vec<SourceReport>,
    pub(crate) actions: Vec<ActionTaken>,
    /// The first source (in declaration order) whose contract ended the call.
    pub(crate) end: Option<SourceEnd>,
}

impl Fetched {
    /// Adds the documents' messages to `messages`, before the last user message (the question);
    /// at the end when there is none.
    pub(crate) fn insert_into(&self, messages: &mut Vec<Message>) {
        if self.messages.is_empty() {
            return;
        }
        let at = messages
            .iter()
            .rposition(|m| m.role == Role::User)
            .unwrap_or(messages.len());
        let docs = self.messages.iter().map(|(_, m)| m.clone());
        messages.splice(at..at, docs);
    }
}

/// How one source's contract came out.
struct Resolved {
    report: SourceReport,
    actions: Vec<ActionTaken>,
    message: Option<Message>,
    end: Option<SourceEnd>,
}

/// Fetches every source `contract` declares for a call whose last user message is `text`.
pub(crate) async fn fetch_all(
    harness: &Harness,
    contract: &'static TaskContract,
    inputs: &[(&'static str, String)],
    text: String,
) -> Fetched {
    let mut fetched = Fetched::default();
    if contract.sources.is_empty() {
        return fetched;
    }
    let counter: Arc<dyn TokenCounter> = harness
        .token_counter()
        .unwrap_or_else(|| Arc::new(Estimator::default()));
    let handles: Vec<_> = contract
        .sources
        .iter()
        .map(|spec| {
            let query = Arc::new(SourceQuery {
                task: contract.name,
                source: spec.name,
                inputs: inputs.to_vec(),
                text: text.clone(),
                limit: spec.limit,
            });
            let job = Job {
                spec,
                steps: contract.source_steps(spec),
                sources: harness.sources(),
                recovery: harness.recovery_arc(),
                counter: counter.clone(),
                query,
            };
            tokio::spawn(job.run())
        })
        .collect();
    for (spec, handle) in contract.sources.iter().zip(handles) {
        let resolved = match handle.await {
            Ok(r) => r,
            // Only the token counter (user code) can panic in there.
            Err(_) => Resolved::failed_inside(spec),
        };
        for a in &resolved.actions {
            info!(
                task = contract.name,
                source = spec.name,
                failure_class = FailureClass::ContextUnavailable.as_str(),
                action = a.action.as_str(),
                detail = %a.detail,
                "harness decision"
            );
        }
        if let Some(m) = resolved.message {
            fetched.messages.push((spec.name, m));
        }
        fetched.reports.push(resolved.report);
        fetched.actions.extend(resolved.actions);
        if fetched.end.is_none() {
            fetched.end = resolved.end;
        }
    }
    fetched
}

/// One declared source's fetches, owned so it runs in a task of its own.
struct Job {
    spec: &'static SourceSpec,
    steps: &'static [Action],
    sources: Arc<Sources>,
    recovery: Arc<Recovery>,
    counter: Arc<dyn TokenCounter>,
    query: Arc<SourceQuery>,
}

impl Job {
    async fn run(self) -> Resolved {
        let spec = self.spec;
        let mut report = SourceReport {
            action: None,
            cut: Vec::new(),
            fetches: Vec::new(),
            kept: Vec::new(),
            kept_tokens: 0,
            name: spec.name.to_owned(),
            section: spec.section.to_owned(),
        };
        let mut actions = Vec::new();
        let mut target: &'static str = spec.name;
        let (mut step, mut used) = (0usize, 0u32);
        loop {
            let source: Option<Arc<dyn ContextSource>> = self.sources.get(target).cloned();
            let result = fetch_once(target, source, self.query.clone(), spec.timeout)
                .await
                .and_then(|docs| self.fit(target, docs));
            let failure = match result {
                Ok((kept, cut, tokens)) => {
                    report.fetches.push(SourceFetch {
                        error: None,
                        failure: None,
                        source: target.to_owned(),
                    });
                    report.cut = cut;
                    report.kept = kept.iter().map(|d| d.id.clone()).collect();
                    report.kept_tokens = tokens;
                    let message = (!kept.is_empty()).then(|| render(spec, &kept));
                    return Resolved {
                        report,
                        actions,
                        message,
                        end: None,
                    };
                }
                Err(u) => u,
            };
            warn!(source = spec.name, asked = target, error = %failure, "context source unavailable");
            report.fetches.push(SourceFetch {
                error: Some(failure.to_string()),
                failure: Some(failure.kind().to_owned()),
                source: target.to_owned(),
            });
            // Details as for an attempt's failure: the backoff slept, the fallback target, or
            // the reason for a terminal step (which names the source).
            let mut take = |action: ActionKind, detail: String| {
                report.action = Some(action.as_str().to_owned());
                actions.push(ActionTaken {
                    after_attempt: 0,
                    class: FailureClass::ContextUnavailable,
                    action,
                    detail,
                });
            };
            let next = self.next_step(&mut step, &mut used);
            match next {
                Next::Retry(delay) => {
                    take(ActionKind::Retry, format!("after {delay:?}"));
                    tokio::time::sleep(delay).await;
                }
                Next::Fallback(other) => {
                    take(ActionKind::Fallback, other.to_owned());
                    target = other;
                }
                Next::Proceed => {
                    take(ActionKind::Proceed, failure.to_string());
                    return Resolved {
                        report,
                        actions,
                        message: None,
                        end: None,
                    };
                }
                Next::End(action) => {
                    let message = failure.to_string();
                    take(action, message.clone());
                    return Resolved {
                        report,
                        actions,
                        message: None,
                        end: Some(SourceEnd { action, message }),
                    };
                }
            }
        }
    }

    /// The next step of the source's chain after a failure: `step` is the chain's cursor and
    /// `used` the retries spent at it (a spent retry and steps that mean nothing for a source
    /// move the cursor on; the end of the chain fails).
    fn next_step(&self, step: &mut usize, used: &mut u32) -> Next {
        loop {
            let Some(&s) = self.steps.get(*step) else {
                return Next::End(ActionKind::Fail);
            };
            match s {
                Action::Retry { times, backoff } if *used < times => {
                    *used += 1;
                    return Next::Retry(self.recovery.backoff(&backoff, *used, None));
                }
                Action::FallbackSource { source: other } => {
                    *step += 1;
                    *used = 0;
                    return Next::Fallback(other);
                }
                Action::Proceed => return Next::Proceed,
                Action::Default => return Next::End(ActionKind::Default),
                Action::Escalate => return Next::End(ActionKind::Escalate),
                Action::Fail => return Next::End(ActionKind::Fail),
                // A spent retry, and steps that mean nothing for a source (the macro rejects
                // `reask` and a model fallback here).
                Action::Retry { .. } | Action::Reask { .. } | Action::Fallback(_) => {
                    *step += 1;
                    *used = 0;
                }
            }
        }
    }

    /// The documents kept (best first, within the limit and the budget), the ids cut, and the
    /// kept documents' tokens; over budget when not even the best one fits.
    #[allow(clippy::type_complexity)]
    fn fit(
        &self,
        target: &str,
        mut docs: Vec<Document>,
    ) -> Result<(Vec<Document>, Vec<String>, u32), Unavailable> {
        let spec = self.spec;
        rank(&mut docs);
        let mut kept = Vec::new();
        let mut cut = Vec::new();
        let mut used = 0u32;
        let mut best = None;
        for (i, doc) in docs.into_iter().enumerate() {
            if i >= spec.limit as usize {
                cut.push(doc.id);
                continue;
            }
            let tokens = self.counter.count_message(&Message::user(doc.rendered()));
            best.get_or_insert(tokens);
            if used.saturating_add(tokens) <= spec.budget {
                used += tokens;
                kept.push(doc);
            } else {
                cut.push(doc.id);
            }
        }
        match best {
            Some(tokens) if kept.is_empty() => Err(Unavailable::OverBudget {
                source_name: target.to_owned(),
                tokens,
                budget: spec.budget,
            }),
            _ => Ok((kept, cut, used)),
        }
    }
}

enum Next {
    Retry(std::time::Duration),
    Fallback(&'static str),
    Proceed,
    End(ActionKind),
}

impl Resolved {
    /// The source's job itself panicked (its token counter did): the call fails with the class.
    fn failed_inside(spec: &SourceSpec) -> Resolved {
        let message = format!("source `{}`: counting its documents panicked", spec.name);
        Resolved {
            report: SourceReport {
                action: Some(ActionKind::Fail.as_str().to_owned()),
                cut: Vec::new(),
                fetches: Vec::new(),
                kept: Vec::new(),
                kept_tokens: 0,
                name: spec.name.to_owned(),
                section: spec.section.to_owned(),
            },
            actions: vec![ActionTaken {
                after_attempt: 0,
                class: FailureClass::ContextUnavailable,
                action: ActionKind::Fail,
                detail: message.clone(),
            }],
            message: None,
            end: Some(SourceEnd {
                action: ActionKind::Fail,
                message,
            }),
        }
    }
}

/// The user message carrying a source's documents: the section's name, then each document as
/// the documents section of a context plan renders it.
fn render(spec: &SourceSpec, docs: &[Document]) -> Message {
    let body: Vec<String> = docs.iter().map(Document::rendered).collect();
    Message::user(format!("{}:\n\n{}", spec.section, body.join("\n\n")))
}
