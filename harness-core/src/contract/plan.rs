//! A context plan: the typed sections of a prompt, what each may cost, and how each is shortened.
//!
//! A plan is `const` data, so it lives with the contracts: a task names it
//! (`#[llm_task(plan = PLAN, ...)]`) and it is then in the task's [`TaskContract`](super::TaskContract),
//! its docs and its audit records. [`ContextPlan::assemble`](crate::context::ContextPlan::assemble)
//! (in `context`) fills it with this call's texts, documents and history within a token budget.

use serde::Serialize;

/// What a section holds, which decides how it is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    /// The system prompt (a system message).
    System,
    /// Standing instructions (a system message).
    Instructions,
    /// Retrieved documents, ranked (one user message listing them).
    Documents,
    /// The conversation so far: whole turns, with a summary of older ones.
    History,
    /// State of tools or the program the model should see (a user message).
    ToolState,
    /// What the user just said (a user message).
    UserInput,
}

impl SectionKind {
    /// Whether the section is the same from call to call (system text, instructions): a plan's
    /// leading stable sections are the prefix providers' prompt caches key on.
    pub const fn is_stable(self) -> bool {
        matches!(self, SectionKind::System | SectionKind::Instructions)
    }
}

/// Whether a section may be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// Never dropped or shortened; a plan whose required sections do not fit is an error.
    Required,
    /// Filled in order of priority (1 first) from what the required sections leave.
    Priority(u8),
}

/// How a section that does not fit its budget is shortened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncate {
    /// All or nothing: dropped whole when it does not fit.
    Never,
    /// History: the oldest whole turns go first, so the newest turns stay contiguous.
    DropOldestTurns,
    /// Documents: kept in rank order while they fit; those that do not are dropped.
    DropLowestRanked,
    /// Text: the middle is cut out and replaced with a marker saying how much was cut.
    CutMiddle,
    /// History: like `DropOldestTurns`, with the stored summary of the dropped turns in their place
    /// (when no summary covers them yet, the report says which turns need one).
    Summarise,
}

/// One section of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Its name, the key its content is filled under.
    pub name: &'static str,
    /// What it holds.
    pub kind: SectionKind,
    /// Whether it may be dropped.
    pub keep: Keep,
    /// Its own budget in tokens, if it has one.
    pub budget: Option<u32>,
    /// How it is shortened.
    pub truncate: Truncate,
}

impl Section {
    /// A required section: never dropped or shortened.
    pub const fn required(name: &'static str, kind: SectionKind) -> Section {
        Section {
            name,
            kind,
            keep: Keep::Required,
            budget: None,
            truncate: Truncate::Never,
        }
    }

    /// A section filled at `priority` (1 first), shortened by `truncate` when it does not fit.
    pub const fn optional(
        name: &'static str,
        kind: SectionKind,
        priority: u8,
        truncate: Truncate,
    ) -> Section {
        Section {
            name,
            kind,
            keep: Keep::Priority(priority),
            budget: None,
            truncate,
        }
    }

    /// With a budget of its own, in tokens.
    pub const fn with_budget(mut self, tokens: u32) -> Section {
        self.budget = Some(tokens);
        self
    }
}

/// The sections of a prompt, in the order they are sent, with a reserve for the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ContextPlan {
    /// Its name, in reports.
    pub name: &'static str,
    /// Its version: change it when the plan changes, so records say which plan built a prompt.
    pub version: &'static str,
    /// The sections, in the order they are sent.
    pub sections: &'static [Section],
    /// Tokens kept free for the model's reply.
    pub reply_reserve: u32,
    /// The context window, when the plan fixes it (else the model's known window, or the caller's).
    pub window: Option<u32>,
}

impl ContextPlan {
    /// A plan of `sections`, reserving `reply_reserve` tokens for the reply.
    pub const fn new(
        name: &'static str,
        version: &'static str,
        sections: &'static [Section],
        reply_reserve: u32,
    ) -> ContextPlan {
        ContextPlan {
            name,
            version,
            sections,
            reply_reserve,
            window: None,
        }
    }

    /// With a fixed context window.
    pub const fn with_window(mut self, tokens: u32) -> ContextPlan {
        self.window = Some(tokens);
        self
    }

    /// The plan as Markdown, for a task's docs: [`summary`](Self::summary), a blank line, and a
    /// table of [`PLAN_COLUMNS`] with one row per section ([`rows`](Self::rows)).
    pub fn doc(&self) -> String {
        let mut out = format!("{}\n\n|", self.summary());
        for c in PLAN_COLUMNS {
            out.push_str(&format!(" {c} |"));
        }
        out.push('\n');
        out.push_str(&"|---".repeat(PLAN_COLUMNS.len()));
        out.push_str("|\n");
        for row in self.rows() {
            out.push('|');
            for cell in row {
                out.push_str(&format!(" {cell} |"));
            }
            out.push('\n');
        }
        out
    }

    /// One line: the plan's name, version, reply reserve and fixed window.
    pub fn summary(&self) -> String {
        format!(
            "Context plan `{}` (version {}), {} tokens reserved for the reply{}:",
            self.name,
            self.version,
            self.reply_reserve,
            self.window
                .map(|w| format!(", window {w}"))
                .unwrap_or_default()
        )
    }

    /// One row per section, cells in the order of [`PLAN_COLUMNS`].
    pub fn rows(&self) -> impl Iterator<Item = [String; 5]> + '_ {
        self.sections.iter().map(|s| {
            let keep = match s.keep {
                Keep::Required => "required".to_owned(),
                Keep::Priority(p) => format!("priority {p}"),
            };
            let budget = s.budget.map_or("—".to_owned(), |b| b.to_string());
            [
                s.name.to_owned(),
                format!("{:?}", s.kind),
                keep,
                budget,
                format!("{:?}", s.truncate),
            ]
        })
    }
}

/// The columns of a plan's table ([`ContextPlan::rows`]).
pub const PLAN_COLUMNS: [&str; 5] = ["section", "kind", "keep", "budget", "when over budget"];

/// The context window of a model we know, by name (prefix match, longest first), in tokens.
pub fn known_window(model: &str) -> Option<u32> {
    const WINDOWS: &[(&str, u32)] = &[
        ("gpt-4.1", 1_047_576),
        ("gpt-4o", 128_000),
        ("gpt-4-turbo", 128_000),
        ("gpt-4", 8_192),
        ("gpt-3.5-turbo", 16_385),
        ("o1", 200_000),
        ("o3", 200_000),
        ("o4-mini", 200_000),
        ("claude-", 200_000),
        ("smollm2", 8_192),
        ("llama-3.1", 131_072),
        ("llama-3.2", 131_072),
        ("llama-3", 8_192),
        ("mistral", 32_768),
        ("qwen2.5", 32_768),
    ];
    let model = model.to_ascii_lowercase();
    WINDOWS
        .iter()
        .filter(|(prefix, _)| model.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|&(_, w)| w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_match_the_longest_prefix() {
        assert_eq!(known_window("gpt-4o-mini"), Some(128_000));
        assert_eq!(known_window("gpt-4-0613"), Some(8_192));
        assert_eq!(known_window("gpt-4.1-nano"), Some(1_047_576));
        assert_eq!(known_window("Llama-3.1-8B"), Some(131_072));
        assert_eq!(known_window("claude-sonnet-4-5"), Some(200_000));
        assert_eq!(known_window("unknown"), None);
    }

    #[test]
    fn the_doc_is_the_summary_and_one_row_per_section() {
        const PLAN: ContextPlan = ContextPlan::new(
            "support",
            "2",
            &[
                Section::required("system", SectionKind::System),
                Section::optional(
                    "docs",
                    SectionKind::Documents,
                    1,
                    Truncate::DropLowestRanked,
                )
                .with_budget(800),
            ],
            512,
        )
        .with_window(8192);
        assert_eq!(
            PLAN.doc(),
            "Context plan `support` (version 2), 512 tokens reserved for the reply, window 8192:\n\n\
             | section | kind | keep | budget | when over budget |\n|---|---|---|---|---|\n\
             | system | System | required | — | Never |\n\
             | docs | Documents | priority 1 | 800 | DropLowestRanked |\n"
        );
    }
}
