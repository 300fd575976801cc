//! Filling a [`ContextPlan`] within a token budget: deterministic, and explained section by section.

use std::collections::BTreeMap;

use serde::Serialize;

use super::tokens::{MESSAGE_OVERHEAD, TokenCounter};
use crate::contract::{ContextPlan, Keep, Section, SectionKind, Truncate, known_window};
use crate::digest::hash_hex;
use crate::memory::{Summary, Turn};
use crate::provider::{Message, Role};

/// A retrieved document.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Document {
    /// Its id (kept and cut documents are reported by id).
    pub id: String,
    /// Its text.
    pub text: String,
    /// Its rank score: higher is better. Equal scores are ordered by id, then text.
    pub score: f64,
    /// Where it came from.
    pub source: String,
}

impl Document {
    /// The text the documents section sends for it: `[id] (source)` and the text. Count this
    /// (e.g. to prime a remote counter) to count what the plan counts.
    pub fn rendered(&self) -> String {
        format!("[{}] ({})\n{}", self.id, self.source, self.text)
    }
}

/// Sorts documents best first: by score (higher first), then id, then text, so documents of
/// equal rank always come in the same order.
pub(crate) fn rank(docs: &mut [Document]) {
    docs.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.text.cmp(&b.text))
    });
}

/// What one section is filled with.
#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Documents(Vec<Document>),
    History(Vec<Turn>, Option<Summary>),
}

/// This call's content for a plan's sections, by section name. The order things are added in
/// does not matter: documents are ranked, history is ordered by turn number.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fill {
    parts: BTreeMap<String, Part>,
}

impl Fill {
    /// Nothing filled yet.
    pub fn new() -> Fill {
        Fill::default()
    }

    /// The text of a system, instructions, tool-state or user-input section.
    pub fn text(mut self, section: &str, text: impl Into<String>) -> Fill {
        self.parts
            .insert(section.to_owned(), Part::Text(text.into()));
        self
    }

    /// The documents of a documents section.
    pub fn documents(mut self, section: &str, documents: Vec<Document>) -> Fill {
        self.parts
            .insert(section.to_owned(), Part::Documents(documents));
        self
    }

    /// The turns (and the newest summary, if any) of a history section.
    pub fn history(mut self, section: &str, turns: &[Turn], summary: Option<&Summary>) -> Fill {
        let mut turns = turns.to_vec();
        turns.sort_by_key(|t| t.seq);
        self.parts
            .insert(section.to_owned(), Part::History(turns, summary.cloned()));
        self
    }
}

/// Why a context could not be assembled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The reply reserve leaves nothing of the window.
    #[error("plan `{plan}`: the reply reserve ({reserve}) is not below the window ({window})")]
    NoRoom {
        /// The plan.
        plan: &'static str,
        /// Its reserve.
        reserve: u32,
        /// The window.
        window: u32,
    },
    /// The required sections alone exceed the budget.
    #[error(
        "plan `{plan}`: the required sections need {required} tokens ({detail}), the budget is {budget} (window {window} − reply reserve)"
    )]
    RequiredOverBudget {
        /// The plan.
        plan: &'static str,
        /// Tokens the required sections need.
        required: u32,
        /// The budget.
        budget: u32,
        /// The window.
        window: u32,
        /// Each required section and its tokens.
        detail: String,
    },
    /// A section was filled with the wrong kind of content, or is not in the plan.
    #[error("plan `{plan}`: {reason}")]
    BadFill {
        /// The plan.
        plan: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// What was done with one item of a section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cut {
    /// The item: a document id, `turn 3`, the section's name for a text, `middle` for a cut.
    pub item: String,
    /// Its tokens.
    pub tokens: u32,
    /// Why it was cut.
    pub reason: &'static str,
}

/// How one section was filled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SectionReport {
    /// The section.
    pub name: &'static str,
    /// Its kind.
    pub kind: SectionKind,
    /// Whether it may be dropped.
    pub keep: Keep,
    /// The tokens it could have had (its own budget, or what was left).
    pub allowed: u32,
    /// Tokens of everything it was filled with.
    pub offered: u32,
    /// Tokens kept.
    pub kept_tokens: u32,
    /// The items kept, in the order sent.
    pub kept: Vec<String>,
    /// The items cut, and why.
    pub cut: Vec<Cut>,
}

/// The result of an assembly: what was sent and why — the record of context assembly that goes
/// into the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssemblyReport {
    /// The plan's name.
    pub plan: &'static str,
    /// The plan's version.
    pub version: &'static str,
    /// The counter the budget was counted with.
    pub counter: String,
    /// The context window.
    pub window: u32,
    /// Tokens kept for the reply.
    pub reply_reserve: u32,
    /// The window minus the reserve.
    pub budget: u32,
    /// Tokens of the messages sent.
    pub used: u32,
    /// Each section, in plan order.
    pub sections: Vec<SectionReport>,
    /// History turns up to this one were dropped with no summary covering them: summarise them
    /// (and store the summary) so the next assembly can send it in their place.
    pub needs_summary_through: Option<u64>,
    /// SHA-256 of the messages' JSON.
    pub messages_sha256: String,
    /// SHA-256 of the JSON of the leading stable sections' messages (system, instructions).
    pub stable_prefix_sha256: String,
}

/// Messages within budget, with the report of how they were chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Assembled {
    /// The messages, in plan order.
    pub messages: Vec<Message>,
    /// How they were chosen.
    pub report: AssemblyReport,
}

impl Assembled {
    /// As a task body's [`Context`](super::Context), carrying the report into the call's report
    /// (`CallReport::context`) and audit record.
    pub fn into_context(self) -> super::Context {
        super::Context {
            messages: self.messages,
            assembly: Some(self.report),
        }
    }
}

/// One unit a section keeps or cuts: its id, its messages, its tokens.
struct Item {
    id: String,
    messages: Vec<Message>,
    tokens: u32,
}

impl SectionKind {
    /// The role of the message a text section becomes.
    pub const fn role(self) -> Role {
        match self {
            SectionKind::System | SectionKind::Instructions => Role::System,
            _ => Role::User,
        }
    }
}

impl ContextPlan {
    /// Fills the plan for `model` (its window: the plan's, else [`known_window`], else `8192`).
    pub fn assemble_for(
        &self,
        model: &str,
        fill: Fill,
        counter: &dyn TokenCounter,
    ) -> Result<Assembled, ContextError> {
        let window = self.window.or_else(|| known_window(model)).unwrap_or(8_192);
        self.assemble(fill, counter, window)
    }

    /// Fills the plan within `window − reply_reserve` tokens. Required sections are kept whole;
    /// the others are filled in order of priority (ties in plan order), each within its own
    /// budget and what is left, shortened by its policy. The same plan, fill and counter always
    /// give byte-identical messages.
    pub fn assemble(
        &self,
        fill: Fill,
        counter: &dyn TokenCounter,
        window: u32,
    ) -> Result<Assembled, ContextError> {
        let window = self.window.unwrap_or(window);
        if self.reply_reserve >= window {
            return Err(ContextError::NoRoom {
                plan: self.name,
                reserve: self.reply_reserve,
                window,
            });
        }
        let budget = window - self.reply_reserve;
        let mut parts = fill.parts;
        if let Some(extra) = parts
            .keys()
            .find(|k| !self.sections.iter().any(|s| s.name == k.as_str()))
        {
            return Err(self.bad(format!(
                "`{extra}` is filled but is not a section of the plan"
            )));
        }
        let mut filled: Vec<Filled> = Vec::with_capacity(self.sections.len());
        for s in self.sections {
            let part = parts.remove(s.name);
            filled.push(Filled::new(s, self.items(s, part, counter)?));
        }
        let required = self.keep_required(&mut filled, budget, window)?;
        let mut left = budget - required;
        let mut order: Vec<usize> = (0..filled.len())
            .filter(|&i| filled[i].section.keep != Keep::Required)
            .collect();
        order.sort_by_key(|&i| match filled[i].section.keep {
            Keep::Priority(p) => (p, i),
            Keep::Required => (0, i),
        });
        for i in order {
            let f = &mut filled[i];
            let allowed = f.section.budget.map_or(left, |b| b.min(left));
            f.fit(allowed, counter);
            left -= f.report.kept_tokens;
        }
        Ok(self.finish(filled, counter, window, budget))
    }

    fn bad(&self, reason: String) -> ContextError {
        ContextError::BadFill {
            plan: self.name,
            reason,
        }
    }

    /// The items of section `s` from its part, checking the part's kind.
    fn items(
        &self,
        s: &Section,
        part: Option<Part>,
        counter: &dyn TokenCounter,
    ) -> Result<Vec<Item>, ContextError> {
        let cost = |messages: &[Message]| {
            messages
                .iter()
                .map(|m| counter.count_message(m))
                .fold(0u32, u32::saturating_add)
        };
        let item = |id: String, messages: Vec<Message>| Item {
            tokens: cost(&messages),
            id,
            messages,
        };
        Ok(match (s.kind, part) {
            (_, None) => Vec::new(),
            (SectionKind::Documents, Some(Part::Documents(mut docs))) => {
                rank(&mut docs);
                docs.into_iter()
                    .map(|d| {
                        let text = d.rendered();
                        item(d.id, vec![Message::user(text)])
                    })
                    .collect()
            }
            (SectionKind::History, Some(Part::History(turns, summary))) => {
                let mut items: Vec<Item> = turns
                    .into_iter()
                    .map(|t| item(format!("turn {}", t.seq), t.messages))
                    .collect();
                if let Some(sum) = summary {
                    items.insert(
                        0,
                        item(
                            format!("summary through turn {}", sum.through),
                            vec![Message::system(format!(
                                "Summary of the conversation before: {}",
                                sum.text
                            ))],
                        ),
                    );
                }
                items
            }
            (kind, Some(Part::Text(text)))
                if !matches!(kind, SectionKind::Documents | SectionKind::History) =>
            {
                let m = Message::new(kind.role(), text);
                vec![item(s.name.to_owned(), vec![m])]
            }
            (kind, Some(_)) => {
                return Err(self.bad(format!(
                    "section `{}` is {kind:?} and was filled with the wrong kind of content",
                    s.name
                )));
            }
        })
    }

    /// Keeps every required section whole; their tokens, or the error when they do not fit.
    fn keep_required(
        &self,
        filled: &mut [Filled],
        budget: u32,
        window: u32,
    ) -> Result<u32, ContextError> {
        let mut required = 0u32;
        let mut detail = Vec::new();
        for f in filled
            .iter_mut()
            .filter(|f| f.section.keep == Keep::Required)
        {
            let tokens = f.offered();
            f.keep_all(tokens);
            required = required.saturating_add(tokens);
            detail.push(format!("{} {tokens}", f.section.name));
        }
        if required > budget {
            return Err(ContextError::RequiredOverBudget {
                plan: self.name,
                required,
                budget,
                window,
                detail: detail.join(", "),
            });
        }
        Ok(required)
    }

    fn finish(
        &self,
        filled: Vec<Filled>,
        counter: &dyn TokenCounter,
        window: u32,
        budget: u32,
    ) -> Assembled {
        let mut messages = Vec::new();
        let mut prefix_len = 0;
        let mut in_prefix = true;
        let mut sections = Vec::with_capacity(filled.len());
        let mut needs_summary = None;
        for f in filled {
            messages.extend(f.kept_messages);
            if in_prefix && f.section.kind.is_stable() {
                prefix_len = messages.len();
            } else {
                in_prefix = false;
            }
            needs_summary = needs_summary.or(f.needs_summary);
            sections.push(f.report);
        }
        let used = sections
            .iter()
            .map(|s| s.kept_tokens)
            .fold(0u32, u32::saturating_add);
        let json = |m: &[Message]| serde_json::to_string(m).unwrap_or_default();
        let report = AssemblyReport {
            plan: self.name,
            version: self.version,
            counter: counter.name(),
            window,
            reply_reserve: self.reply_reserve,
            budget,
            used,
            sections,
            needs_summary_through: needs_summary,
            messages_sha256: hash_hex(json(&messages).as_bytes()),
            stable_prefix_sha256: hash_hex(json(&messages[..prefix_len]).as_bytes()),
        };
        Assembled { messages, report }
    }
}

/// A section being filled.
struct Filled {
    section: &'static Section,
    items: Vec<Item>,
    kept_messages: Vec<Message>,
    needs_summary: Option<u64>,
    report: SectionReport,
}

impl Filled {
    fn new(section: &'static Section, items: Vec<Item>) -> Filled {
        let offered = items
            .iter()
            .map(|i| i.tokens)
            .fold(0u32, u32::saturating_add);
        Filled {
            section,
            items,
            kept_messages: Vec::new(),
            needs_summary: None,
            report: SectionReport {
                name: section.name,
                kind: section.kind,
                keep: section.keep,
                allowed: 0,
                offered,
                kept_tokens: 0,
                kept: Vec::new(),
                cut: Vec::new(),
            },
        }
    }

    fn offered(&self) -> u32 {
        self.report.offered
    }

    fn keep_all(&mut self, allowed: u32) {
        self.report.allowed = allowed;
        for item in std::mem::take(&mut self.items) {
            self.keep(item);
        }
    }

    fn keep(&mut self, item: Item) {
        self.report.kept_tokens = self.report.kept_tokens.saturating_add(item.tokens);
        self.report.kept.push(item.id);
        self.kept_messages.extend(item.messages);
    }

    fn cut(&mut self, item: &Item, reason: &'static str) {
        self.report.cut.push(Cut {
            item: item.id.clone(),
            tokens: item.tokens,
            reason,
        });
    }

    /// Keeps what fits in `allowed` tokens by the section's policy.
    fn fit(&mut self, allowed: u32, counter: &dyn TokenCounter) {
        self.report.allowed = allowed;
        let items = std::mem::take(&mut self.items);
        if self.section.kind == SectionKind::History {
            // Even when everything fits: a summary is sent only in place of dropped turns.
            return self.fit_history(items, allowed);
        }
        if self.offered() <= allowed {
            self.items = items;
            self.keep_all(allowed);
            return;
        }
        match self.section.truncate {
            Truncate::Never => items
                .iter()
                .for_each(|i| self.cut(i, "the section does not fit and may not be shortened")),
            Truncate::DropLowestRanked => self.fit_ranked(items, allowed),
            Truncate::DropOldestTurns | Truncate::Summarise => self.fit_history(items, allowed),
            Truncate::CutMiddle => self.fit_middle(items, allowed, counter),
        }
    }

    fn fit_ranked(&mut self, items: Vec<Item>, allowed: u32) {
        let mut used = 0u32;
        for item in items {
            if used.saturating_add(item.tokens) <= allowed {
                used += item.tokens;
                self.keep(item);
            } else {
                self.cut(&item, "lower-ranked than what filled the budget");
            }
        }
    }

    /// The newest turns that fit, contiguous; under `Summarise`, the stored summary first when it
    /// covers every dropped turn.
    fn fit_history(&mut self, mut items: Vec<Item>, allowed: u32) {
        let summarise = self.section.truncate == Truncate::Summarise;
        let summary = match items.first() {
            Some(i) if i.id.starts_with("summary through turn ") => Some(items.remove(0)),
            _ => None,
        };
        let room = |reserve: u32| allowed.saturating_sub(reserve);
        let newest = |items: &[Item], room: u32| {
            let mut used = 0u32;
            let mut n = 0;
            for item in items.iter().rev() {
                if used.saturating_add(item.tokens) > room {
                    break;
                }
                used += item.tokens;
                n += 1;
            }
            items.len() - n
        };
        let through_of = |s: &Item| {
            s.id.trim_start_matches("summary through turn ")
                .parse::<u64>()
                .unwrap_or(0)
        };
        let turn_seq = |i: &Item| i.id.trim_start_matches("turn ").parse::<u64>().unwrap_or(0);
        // With a usable summary, turns fit in what the summary leaves.
        let with_summary = summary
            .as_ref()
            .filter(|s| summarise && s.tokens <= allowed)
            .map(|s| (s.tokens, through_of(s)));
        let first_kept = newest(&items, room(with_summary.map_or(0, |(t, _)| t)));
        let last_cut = first_kept.checked_sub(1).map(|i| turn_seq(&items[i]));
        let covered =
            matches!((with_summary, last_cut), (Some((_, through)), Some(cut)) if through >= cut);
        let (first_kept, summary_kept, summary_unsent) = if covered {
            (first_kept, summary, None)
        } else {
            // No summary covers the cut: use the whole room for turns.
            (newest(&items, allowed), None, summary)
        };
        if let Some(s) = summary_kept {
            self.keep(s);
        }
        if let Some(s) = summary_unsent {
            self.cut(
                &s,
                "not sent: every turn fits, or it does not cover the dropped turns",
            );
        }
        let mut rest = items.into_iter();
        for item in rest.by_ref().take(first_kept) {
            self.cut(&item, "an older turn beyond the history budget");
            if summarise && !covered {
                self.needs_summary = Some(turn_seq(&item));
            }
        }
        rest.for_each(|item| self.keep(item));
    }

    /// The text with its middle cut out, head and tail kept, and a marker between.
    fn fit_middle(&mut self, items: Vec<Item>, allowed: u32, counter: &dyn TokenCounter) {
        for item in items {
            let Some(m) = item.messages.first() else {
                continue;
            };
            let text = &m.content;
            let fits = |keep: usize| {
                let cut = cut_middle(text, keep);
                counter.count(&cut).saturating_add(MESSAGE_OVERHEAD) <= allowed
            };
            // The most characters that fit, by bisection over the kept length.
            let (mut lo, mut hi) = (0usize, text.chars().count());
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if fits(mid) { lo = mid } else { hi = mid - 1 }
            }
            if lo == 0 && !fits(0) {
                self.cut(&item, "even the marker alone does not fit");
                continue;
            }
            let content = cut_middle(text, lo);
            let tokens = counter.count(&content).saturating_add(MESSAGE_OVERHEAD);
            self.report.cut.push(Cut {
                item: format!("{} (middle)", item.id),
                tokens: item.tokens.saturating_sub(tokens),
                reason: "the middle of a text over budget",
            });
            self.keep(Item {
                id: item.id,
                messages: vec![Message::new(m.role, content)],
                tokens,
            });
        }
    }
}

/// `text` keeping `keep` characters, half from the head and half from the tail, with a marker.
fn cut_middle(text: &str, keep: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if keep >= chars.len() {
        return text.to_owned();
    }
    let head = keep.div_ceil(2);
    let tail = keep - head;
    let cut = chars.len() - keep;
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&format!("\n[… {cut} characters cut …]\n"));
    out.extend(&chars[chars.len() - tail..]);
    out
}
