//! The lenient parser: finds the JSON value in a model's answer, repairs what models get wrong,
//! and refuses to invent what the answer does not say.
//!
//! `docs/parsing.md` is the contract: every repair and coercion, when it applies, and when the
//! parser rejects instead. In short:
//!
//! 1. **Candidates** (`extract.rs`): the whole answer, every code fence body, every outermost
//!    `{...}`/`[...]` span in prose, and, when the schema's root is an array, every run of spans
//!    with only whitespace or commas between them (read as one list,
//!    [`Repair::CollectedValues`]). At most 32, found in linear time.
//! 2. **Reading** (`lenient.rs`): strict JSON first (serde_json's value); otherwise JSON plus the
//!    repairs models need — trailing commas, comments, unquoted keys (words, numbers, `null`),
//!    single quotes, Python literals, raw control characters, lone surrogates, a quote inside a
//!    string that cannot end it, a bare single word as a value, closing an answer cut off after a
//!    complete value — each recorded as a [`Repair`] with its path. A bare whole answer is read as
//!    the one scalar a scalar schema asks for ([`Repair::ReadBareAnswer`]).
//! 3. **Coercion** (`coerce.rs`), only for a reading that does not fit the schema, only where the
//!    schema leaves one reading, kept only when the whole value then fits.
//! 4. **Choice**: the reading with the fewest schema errors, then the fewest repairs, then the
//!    cheapest ([`Repair::cost`]) wins; two readings with the same score and different values
//!    are [`ParseError::Ambiguous`], never picked by position. [`explain`] shows every reading
//!    considered.
//!
//! Repair kinds can be denied ([`ParseLimits::deny`]): a reading that needs one is rejected
//! ([`ParseError::Denied`]).
//!
//! # Truncation: what may be closed
//!
//! An answer cut off inside arrays or objects is closed only when every value it holds is
//! complete, so closing drops at most the missing tail of a container and never finishes a
//! scalar: after a complete value, `[`, `{` or `,` it is closed; inside a string, a key, a number
//! (even right after a digit: `[1, 2` may have been `[1, 25]`), a literal or a bare word, or after
//! a key or its `:`, it is [`ParseError::Truncated`].
//!
//! # Limits
//!
//! [`ParseLimits::max_bytes`] is checked first. [`ParseLimits::max_depth`] (capped at
//! [`HARD_MAX_DEPTH`], because validating and dropping a `serde_json::Value` recurse) bounds every
//! candidate; the reader uses a heap stack, never recursion, so deep input gives
//! [`ParseError::TooDeep`], never a stack overflow. Work and memory are linear in the input.

mod coerce;
mod explain;
mod extract;
mod lenient;
mod repair;

use serde_json::Value;

pub use explain::{Considered, Explanation, Outcome};
pub use repair::{Repair, RepairKind, RepairSet};

use super::SchemaValidator;
use extract::{Candidate, Origin};
use lenient::{Failure, Mode};

/// The deepest nesting accepted whatever [`ParseLimits::max_depth`] says. serde_json's own
/// recursion limit is the same.
pub const HARD_MAX_DEPTH: usize = 128;

/// Bounds on what the parser accepts, so hostile output cannot exhaust memory or the stack, and
/// the repairs it may not make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest input, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of arrays and objects (at most [`HARD_MAX_DEPTH`]).
    pub max_depth: usize,
    /// Repair kinds not accepted: a reading that needs one is rejected (a coercion of a denied
    /// kind is not tried). Set for every task with `HarnessBuilder::parse_limits`, or per task
    /// with `#[llm_task(..., repairs(deny = ["..."]))]`; the two add up.
    pub deny: RepairSet,
}

impl ParseLimits {
    /// 1 MiB, 64 levels, every repair allowed.
    pub const DEFAULT: ParseLimits = ParseLimits {
        max_bytes: 1024 * 1024,
        max_depth: 64,
        deny: RepairSet::EMPTY,
    };

    /// These limits, also denying `deny`.
    pub const fn denying(mut self, deny: RepairSet) -> ParseLimits {
        self.deny = self.deny.union(deny);
        self
    }
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits::DEFAULT
    }
}

/// A value the parser found, with the repairs it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The JSON value.
    pub value: Value,
    /// Repairs applied, in order: extraction, then reading, then coercion.
    pub repairs: Vec<Repair>,
}

/// Why no value could be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is larger than [`ParseLimits::max_bytes`].
    #[error("the answer is {len} bytes long, more than the {max} bytes accepted")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nesting deeper than [`ParseLimits::max_depth`].
    #[error("the answer nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// No JSON object or array anywhere in the text.
    #[error("the answer contains no JSON value; reply with a single JSON object")]
    NoJson,
    /// The answer was cut off inside a value, which cannot be completed without guessing.
    #[error(
        "the answer was cut off inside {cut}; a cut-off value cannot be completed, reply with the whole JSON value"
    )]
    Truncated {
        /// What was cut: `a string`, `a number`, `a member before its value`, ...
        cut: String,
    },
    /// JSON-looking text that does not parse.
    #[error("the answer is not valid JSON: {0}")]
    Invalid(String),
    /// Two readings fit equally well; the parser does not pick one.
    #[error(
        "the answer can be read two ways that fit equally well, {first} and {second}; reply with one JSON value"
    )]
    Ambiguous {
        /// One reading: where it was found and the value, shortened.
        first: String,
        /// The other.
        second: String,
    },
    /// The only readings need a repair the task does not accept.
    #[error("the answer could only be read by a repair this task does not accept: {repair}")]
    Denied {
        /// The repair's kind.
        kind: RepairKind,
        /// The repair, as a sentence.
        repair: String,
    },
}

/// How a reading ranks: fewer schema errors, then fewer repairs, then cheaper ones.
type Score = (usize, usize, u32);

/// Finds the JSON value in `text`, repairing and coercing it towards `schema`.
pub fn parse(
    text: &str,
    schema: &SchemaValidator,
    limits: &ParseLimits,
) -> Result<Parsed, ParseError> {
    Search::new(schema, limits, false).run(text)
}

/// Like [`parse`], and says which readings it considered and why it chose (or refused).
pub fn explain(text: &str, schema: &SchemaValidator, limits: &ParseLimits) -> Explanation {
    let mut search = Search::new(schema, limits, true);
    let result = search.run(text);
    Explanation {
        considered: search.considered,
        result,
    }
}

/// One reading that scored.
struct Reading {
    score: Score,
    parsed: Parsed,
    tie: Option<coerce::Tie>,
}

/// The ranked candidate search over one answer.
struct Search<'s> {
    schema: &'s SchemaValidator,
    limits: &'s ParseLimits,
    max_depth: usize,
    /// The JSON types the schema's root allows (found once the quick path has failed).
    root: Vec<&'s str>,
    best: Option<Reading>,
    /// A reading with the best score and another value.
    rival: Option<Reading>,
    failures: Failures,
    explain: bool,
    considered: Vec<Considered>,
}

impl<'s> Search<'s> {
    fn new(schema: &'s SchemaValidator, limits: &'s ParseLimits, explain: bool) -> Self {
        Search {
            schema,
            limits,
            max_depth: limits.max_depth.min(HARD_MAX_DEPTH),
            root: Vec::new(),
            best: None,
            rival: None,
            failures: Failures::default(),
            explain,
            considered: Vec::new(),
        }
    }

    fn run(&mut self, text: &str) -> Result<Parsed, ParseError> {
        if text.len() > self.limits.max_bytes {
            return Err(ParseError::TooLarge {
                len: text.len(),
                max: self.limits.max_bytes,
            });
        }
        if !self.explain {
            // The common case first, before any candidate is looked for: the whole answer is
            // strict JSON that fits. Nothing can beat a valid reading without repairs.
            if let Ok(value) = serde_json::from_str::<Value>(text) {
                if self.shallow(text, &value) && self.schema.is_valid(&value) {
                    return Ok(Parsed {
                        value,
                        repairs: Vec::new(),
                    });
                }
            }
        }
        self.root = coerce::root_types(self.schema.schema());
        let collect = self.root == ["array"];
        let extracted = extract::candidates(text, self.max_depth, collect);
        self.failures.too_deep = extracted.too_deep;
        // Which candidates were rejected as not JSON. A span found inside a span the text ends in
        // is tried only when that outer span was not JSON (a stray bracket in prose); otherwise
        // it is a piece of the outer value, not the answer.
        let mut not_json = vec![false; extracted.candidates.len()];
        for (order, candidate) in extracted.candidates.iter().enumerate() {
            if candidate.within.is_some_and(|w| !not_json[w]) {
                self.note(
                    candidate,
                    Outcome::Skipped("a piece of a value the answer cuts off"),
                );
                continue;
            }
            match self.read(candidate) {
                Ok((value, repairs)) => {
                    if self.score(candidate, value, repairs) {
                        break;
                    }
                }
                Err(failure) => {
                    not_json[order] = matches!(failure, None | Some(Failure::Invalid { .. }));
                    let why = match &failure {
                        None => "not strict JSON, and the schema asks for no bare value".to_owned(),
                        Some(f) => f.to_string(),
                    };
                    self.note(candidate, Outcome::Failed(why));
                    self.failures.record(failure, candidate);
                }
            }
        }
        self.verdict()
    }

    /// Reads one candidate; `None` for a bare answer that is no value.
    fn read(&self, candidate: &Candidate<'_>) -> Result<(Value, Vec<Repair>), Option<Failure>> {
        let mode = Mode {
            bare_items: candidate.origin != Origin::Prose,
            sequence: candidate.sequence,
        };
        if candidate.sequence {
            let (value, mut repairs) =
                lenient::read(candidate.text, self.max_depth, mode).map_err(Some)?;
            let count = value.as_array().map_or(0, Vec::len);
            if count < 2 {
                return Err(None);
            }
            repairs.insert(0, Repair::CollectedValues { count });
            return Ok((value, repairs));
        }
        // Strict JSON first: serde_json's value is the one the lenient reader gives for it (the
        // differential tests and fuzz target check that), at serde_json's speed.
        if let Ok(v) = serde_json::from_str::<Value>(candidate.text) {
            if self.shallow(candidate.text, &v) {
                return Ok((v, Vec::new()));
            }
        }
        if candidate.origin == Origin::Whole && !starts_structure(candidate.text) {
            // A bare answer (`42`, `"yes"`) is strict JSON, or the one scalar the schema asks
            // for; so prose such as "None of these" is not read as Python's `None`.
            return self.bare(candidate.text, mode);
        }
        lenient::read(candidate.text, self.max_depth, mode).map_err(Some)
    }

    /// Whether `value`, read from `text`, nests no deeper than the limit (without walking it when
    /// the text has too few brackets to be that deep).
    fn shallow(&self, text: &str, value: &Value) -> bool {
        let brackets = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
        brackets <= self.max_depth || depth(value) <= self.max_depth
    }

    /// A whole answer without JSON syntax, when the schema's root is one scalar type.
    fn bare(&self, text: &str, mode: Mode) -> Result<(Value, Vec<Repair>), Option<Failure>> {
        let scalar = |t: &&str| matches!(*t, "string" | "boolean" | "number" | "integer");
        if self.root.is_empty() || !self.root.iter().all(scalar) {
            return Err(None);
        }
        if text.contains(['\n', '{', '[', '`']) {
            return Err(None);
        }
        if text.starts_with(['"', '\'']) {
            return lenient::read(text, self.max_depth, mode).map_err(Some);
        }
        let lower = text.to_lowercase();
        let value = match self.root.as_slice() {
            ["boolean"] if lower == "true" => Value::Bool(true),
            ["boolean"] if lower == "false" => Value::Bool(false),
            ["string"] if !lenient::is_literal_like(&lower) && !text.contains('"') => {
                Value::String(text.to_owned())
            }
            _ => return Err(None),
        };
        let from = text.to_owned();
        Ok((value, vec![Repair::ReadBareAnswer { from }]))
    }

    /// Ranks a read candidate; returns whether nothing later can beat it.
    fn score(&mut self, candidate: &Candidate<'_>, value: Value, reading: Vec<Repair>) -> bool {
        let mut repairs = Vec::with_capacity(reading.len() + 1);
        match candidate.origin {
            Origin::Whole => {}
            Origin::Fence => repairs.push(Repair::ExtractedFromFence),
            Origin::Prose => repairs.push(Repair::ExtractedFromProse),
        }
        repairs.extend(reading);
        if let Some(denied) = self.limits.deny.first_in(&repairs) {
            self.failures.denied.get_or_insert_with(|| denied.clone());
            self.note(candidate, Outcome::Denied(denied.clone()));
            return false;
        }
        let (value, repairs, errors, tie) = fit(value, repairs, self.schema, self.limits.deny);
        let cost = repairs.iter().map(Repair::cost).sum();
        let score = (errors, repairs.len(), cost);
        self.note(
            candidate,
            Outcome::Read {
                value: explain::short(&value),
                schema_errors: errors,
                repairs: repairs.clone(),
            },
        );
        let done = errors == 0 && repairs.is_empty();
        let reading = Reading {
            score,
            parsed: Parsed { value, repairs },
            tie,
        };
        match &self.best {
            Some(best) if best.score < score => {}
            Some(best) if best.score == score => {
                if best.parsed.value != reading.parsed.value && self.rival.is_none() {
                    self.rival = Some(reading);
                }
            }
            _ => {
                self.best = Some(reading);
                self.rival = None;
            }
        }
        done
    }

    fn verdict(&mut self) -> Result<Parsed, ParseError> {
        let Some(best) = self.best.take() else {
            return Err(std::mem::take(&mut self.failures).into_error(self.max_depth));
        };
        if let Some(rival) = self.rival.take() {
            return Err(ParseError::Ambiguous {
                first: describe(&best),
                second: describe(&rival),
            });
        }
        if let (Some(tie), true) = (&best.tie, best.score.0 > 0) {
            let at = if tie.path.is_empty() {
                "the root".to_owned()
            } else {
                format!("`{}`", tie.path)
            };
            return Err(ParseError::Ambiguous {
                first: format!("{} at {at}", explain::short(&tie.readings.0)),
                second: format!("{} at {at}", explain::short(&tie.readings.1)),
            });
        }
        Ok(best.parsed)
    }

    fn note(&mut self, candidate: &Candidate<'_>, outcome: Outcome) {
        if self.explain {
            self.considered.push(Considered::new(candidate, outcome));
        }
    }
}

/// `{"k":"v1"} (found in prose)`.
fn describe(reading: &Reading) -> String {
    let place = match reading.parsed.repairs.first() {
        Some(Repair::ExtractedFromFence) => "in a code fence",
        Some(Repair::ExtractedFromProse) => "in the prose",
        _ => "the whole answer",
    };
    format!("{} ({place})", explain::short(&reading.parsed.value))
}

/// Coerces an invalid value when that makes it fit the schema; returns the errors left and a tie
/// the coercion could not break.
fn fit(
    value: Value,
    repairs: Vec<Repair>,
    schema: &SchemaValidator,
    deny: RepairSet,
) -> (Value, Vec<Repair>, usize, Option<coerce::Tie>) {
    if schema.is_valid(&value) {
        return (value, repairs, 0, None);
    }
    let errors = schema.errors(&value).len();
    let mut coerced = value.clone();
    let coercion = coerce::coerce(&mut coerced, schema.schema());
    let denied = deny.first_in(&coercion.repairs).is_some();
    if !coercion.repairs.is_empty() && !denied && schema.is_valid(&coerced) {
        let mut repairs = repairs;
        repairs.extend(coercion.repairs);
        return (coerced, repairs, 0, None);
    }
    (value, repairs, errors, coercion.tie)
}

/// How deeply `value` nests arrays and objects, without recursion.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|c| (c, d + 1))),
            _ => continue,
        }
        deepest = deepest.max(d + 1);
    }
    deepest
}

fn starts_structure(text: &str) -> bool {
    text.starts_with(['{', '['])
}

/// Why candidates failed, to pick the most useful error when none was read.
#[derive(Default)]
struct Failures {
    too_deep: bool,
    truncated: Option<&'static str>,
    invalid: Option<String>,
    denied: Option<Repair>,
}

impl Failures {
    fn record(&mut self, failure: Option<Failure>, candidate: &Candidate<'_>) {
        match failure {
            None => {}
            Some(Failure::TooDeep) => self.too_deep = true,
            Some(Failure::Truncated(cut)) => {
                self.truncated.get_or_insert(cut);
            }
            Some(Failure::Invalid { message, .. })
                if self.invalid.is_none() && looks_like_json(candidate) =>
            {
                self.invalid = Some(message);
            }
            Some(Failure::Invalid { .. }) => {}
        }
    }

    /// A denied repair, then too deep, then cut off, then invalid JSON, then no JSON at all.
    fn into_error(self, max_depth: usize) -> ParseError {
        if let Some(repair) = self.denied {
            ParseError::Denied {
                kind: repair.kind(),
                repair: repair.to_string(),
            }
        } else if self.too_deep {
            ParseError::TooDeep { max: max_depth }
        } else if let Some(cut) = self.truncated {
            ParseError::Truncated {
                cut: cut.to_owned(),
            }
        } else if let Some(message) = self.invalid {
            ParseError::Invalid(message)
        } else {
            ParseError::NoJson
        }
    }
}

/// Whether a candidate that failed was meant as JSON (so the answer is broken JSON, not prose
/// that happens to hold a bracket, such as "I can't [do that]").
fn looks_like_json(candidate: &Candidate<'_>) -> bool {
    let text = candidate.text;
    match candidate.origin {
        Origin::Fence => true,
        _ if text.starts_with('{') => text.contains([':', '"']),
        _ if text.starts_with('[') => text[1..].trim_start().starts_with(|c: char| {
            c == '{' || c == '[' || c == '"' || c == '-' || c.is_ascii_digit()
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
