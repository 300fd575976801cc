//! What the candidate search considered, for `harness parse --explain` and for tests.

use std::fmt;

use serde_json::Value;

use super::extract::{Candidate, Origin};
use super::{ParseError, Parsed, Repair};

/// Longest excerpt of a text or value shown in an explanation, in characters.
const EXCERPT: usize = 80;

/// Every reading the search considered, and its verdict.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Explanation {
    /// The candidates in the order they were tried.
    pub considered: Vec<Considered>,
    /// What [`parse`](super::parse) returns for the same input.
    pub result: Result<Parsed, ParseError>,
}

/// One candidate and what became of it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Considered {
    /// Where it was found: `whole answer`, `code fence`, `prose`, or `values` for a run of
    /// top-level values read as a list.
    pub source: &'static str,
    /// The candidate's text, shortened.
    pub text: String,
    /// What reading it gave.
    pub outcome: Outcome,
}

/// What reading a candidate gave.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// Not tried, for this reason.
    Skipped(&'static str),
    /// Not readable: why.
    Failed(String),
    /// Readable only through a repair the task denies.
    Denied(Repair),
    /// A value, ranked by its schema errors, then its repairs' count, then their cost.
    Read {
        /// The value, shortened.
        value: String,
        /// How many schema errors it has.
        schema_errors: usize,
        /// The repairs it took.
        repairs: Vec<Repair>,
    },
}

impl Considered {
    pub(super) fn new(candidate: &Candidate<'_>, outcome: Outcome) -> Self {
        let source = match (candidate.sequence, candidate.origin) {
            (true, _) => "values",
            (false, Origin::Whole) => "whole answer",
            (false, Origin::Fence) => "code fence",
            (false, Origin::Prose) => "prose",
        };
        Considered {
            source,
            text: cut(candidate.text),
            outcome,
        }
    }
}

/// A value as compact JSON, shortened.
pub(super) fn short(value: &Value) -> String {
    cut(&value.to_string())
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(EXCERPT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.considered.iter().enumerate() {
            writeln!(f, "{}. {} {:?}", i + 1, c.source, c.text)?;
            match &c.outcome {
                Outcome::Skipped(why) => writeln!(f, "   skipped: {why}")?,
                Outcome::Failed(why) => writeln!(f, "   not read: {why}")?,
                Outcome::Denied(r) => writeln!(f, "   denied: it needs `{}` ({r})", r.kind())?,
                Outcome::Read {
                    value,
                    schema_errors,
                    repairs,
                } => {
                    let cost: u32 = repairs.iter().map(Repair::cost).sum();
                    writeln!(
                        f,
                        "   read {value} with {schema_errors} schema error(s), {} repair(s) costing {cost}",
                        repairs.len()
                    )?;
                    for r in repairs {
                        writeln!(f, "     - {}: {r}", r.kind())?;
                    }
                }
            }
        }
        match &self.result {
            Ok(p) => write!(f, "chosen: {}", short(&p.value)),
            Err(e) => write!(f, "rejected: {e}"),
        }
    }
}
