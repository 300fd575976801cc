//! The lenient parser: finds the JSON value in a model's answer, repairs what models get wrong,
//! and refuses to invent what the answer does not say.
//!
//! # Stages
//!
//! 1. **Candidates**: the whole answer, the body of every Markdown code fence (an unclosed last
//!    fence runs to the end), and every outermost `{...}` / `[...]` span in the prose (brackets
//!    inside strings do not count; a span the answer ends inside is a candidate too). A span found
//!    inside a span the answer ends inside is tried only when that outer span is not JSON at all
//!    (a stray bracket in prose), never when it is a cut-off value: a complete piece of a cut-off
//!    answer is not the answer. A whole answer that does not start with `{` or `[` counts only as
//!    strict JSON (`42`, `"yes"`), so prose such as "None of these" is not read as Python's
//!    `None`. At most 32 candidates, found in time linear in the answer.
//! 2. **Reading**: each candidate is read as JSON plus these repairs, each recorded
//!    as a [`Repair`] with its path:
//!    - trailing commas (`[1, 2,]`, `{"a": 1,}`) → [`Repair::RemovedTrailingComma`];
//!    - `//` and `/* */` comments → [`Repair::RemovedComment`];
//!    - unquoted keys (`{name: "x"}`) → [`Repair::QuotedKey`];
//!    - single-quoted strings and keys (`{'a': 'b'}`) → [`Repair::ConvertedSingleQuotes`],
//!      [`Repair::ConvertedSingleQuotedKey`];
//!    - Python `True`, `False`, `None` → [`Repair::ReplacedPythonLiteral`];
//!    - raw control characters (line breaks) inside strings → [`Repair::EscapedControlCharacter`];
//!    - `\u` escapes of a lone surrogate (no character has one; serde_json rejects them) →
//!      U+FFFD, [`Repair::ReplacedLoneSurrogate`];
//!    - an answer cut off after a complete value → closing brackets,
//!      [`Repair::ClosedTruncated`] (see the rule below).
//!
//!    Anything else that is not JSON (a missing comma, `NaN`, a bare word as a value, a bad escape)
//!    rejects the candidate.
//! 3. **Coercion**, only for a candidate that does not fit the schema, only where the
//!    schema allows one reading (following `$ref`/`$defs`, and `anyOf` of one schema plus `null`):
//!    a string of integer or number syntax where the schema wants only an integer or a number
//!    (`"3"` → `3`), `"true"`/`"false"` where it wants only a boolean, a single value where it wants
//!    only an array (`"a"` → `["a"]`), and a string that matches exactly one enum value when case is
//!    ignored (`"positive"` → `"Positive"`). Recorded as [`Repair::Coerced`],
//!    [`Repair::WrappedInArray`] and [`Repair::MatchedEnumCase`]. A coercion is kept only when it
//!    leaves fewer schema errors.
//! 4. **Choice**: the candidate with the fewest schema errors wins; on a tie the one with fewer
//!    repairs (so an unrepaired value beats a repaired one), then the earlier one (whole answer,
//!    then fences, then prose). The winner is returned even if it still breaks the schema: the
//!    engine validates after the parser and reports those errors.
//!
//! # Truncation: what may be closed
//!
//! An answer cut off (by a token limit) inside arrays or objects is closed only when **every value
//! it holds is complete**, so that closing drops at most the missing tail of a container and never
//! finishes a scalar. Precisely, at the end of the text:
//!
//! - after a complete value, after `[` or `{`, or after a `,`: closed (the comma dropped), e.g.
//!   `{"a": 1, "b": [1, 2,` → `{"a":1,"b":[1,2]}`, and `{"a": 1, "b": [1, 2]` → `{"a":1,"b":[1,2]}`;
//! - inside a string or key: rejected (`{"a": 1, "b": "hel` must not become `"hel"`);
//! - inside a number, *including right after its last digit*: rejected, because a cut number is a
//!   different number (`[1, 2` may have been `[1, 25]`); a number is complete only once a `,` or a
//!   bracket follows it (trailing whitespace does not count: candidates are trimmed);
//! - inside a literal (`tru`): rejected; a whole literal (`true`) is complete;
//! - after a key or its `:` with no value: rejected (the member would need an invented value).
//!
//! A rejected cut-off gives [`ParseError::Truncated`]. A closed object may lack required fields;
//! the schema check after parsing reports them.
//!
//! # Limits
//!
//! [`ParseLimits::max_bytes`] is checked first. [`ParseLimits::max_depth`] (capped at
//! [`HARD_MAX_DEPTH`], because validating and dropping a `serde_json::Value` recurse) bounds every
//! candidate; the reader uses a heap stack, never recursion, so deep input gives
//! [`ParseError::TooDeep`], never a stack overflow. Work and memory are linear in the input.

mod coerce;
mod extract;
mod lenient;
mod repair;

use serde_json::Value;

pub use repair::Repair;

use super::SchemaValidator;
use extract::Origin;
use lenient::Failure;

/// The deepest nesting accepted whatever [`ParseLimits::max_depth`] says. serde_json's own
/// recursion limit is the same.
pub const HARD_MAX_DEPTH: usize = 128;

/// Bounds on what the parser accepts, so hostile output cannot exhaust memory or the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest input, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of arrays and objects (at most [`HARD_MAX_DEPTH`]).
    pub max_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bytes: 1024 * 1024,
            max_depth: 64,
        }
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
}

/// The best candidate so far: (schema errors, repairs made reading and coercing, order).
type Score = (usize, usize, usize);

/// Finds the JSON value in `text`, repairing and coercing it towards `schema`.
pub fn parse(
    text: &str,
    schema: &SchemaValidator,
    limits: &ParseLimits,
) -> Result<Parsed, ParseError> {
    if text.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            len: text.len(),
            max: limits.max_bytes,
        });
    }
    let max_depth = limits.max_depth.min(HARD_MAX_DEPTH);
    let extracted = extract::candidates(text, max_depth);
    let mut best: Option<(Score, Parsed)> = None;
    let mut failures = Failures {
        too_deep: extracted.too_deep,
        ..Failures::default()
    };
    // Which candidates were rejected as not JSON. A span found inside a span the text ends in is
    // tried only when that outer span was not JSON (a stray bracket in prose); otherwise it is a
    // piece of the outer value, not the answer.
    let mut not_json = vec![false; extracted.candidates.len()];
    for (order, candidate) in extracted.candidates.iter().enumerate() {
        if candidate.within.is_some_and(|w| !not_json[w]) {
            continue;
        }
        let read = if candidate.origin == Origin::Whole && !starts_structure(candidate.text) {
            // A bare scalar answer (`42`, `"yes"`) counts only as strict JSON, so prose such as
            // "None of these" is not read as Python's `None`.
            serde_json::from_str::<Value>(candidate.text)
                .map(|v| (v, Vec::new()))
                .map_err(|_| None)
        } else {
            lenient::read(candidate.text, max_depth).map_err(Some)
        };
        let (value, repairs) = match read {
            Ok(ok) => ok,
            Err(failure) => {
                not_json[order] = matches!(failure, None | Some(Failure::Invalid { .. }));
                failures.record(failure, candidate);
                continue;
            }
        };
        let (value, repairs, errors) = fit(value, repairs, schema);
        let score = (errors, repairs.len(), order);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            let mut all = Vec::with_capacity(repairs.len() + 1);
            match candidate.origin {
                Origin::Whole => {}
                Origin::Fence => all.push(Repair::ExtractedFromFence),
                Origin::Prose => all.push(Repair::ExtractedFromProse),
            }
            all.extend(repairs);
            best = Some((
                score,
                Parsed {
                    value,
                    repairs: all,
                },
            ));
        }
        if score.0 == 0 && score.1 == 0 {
            // Nothing later can beat a valid, unrepaired value.
            break;
        }
    }
    match best {
        Some((_, parsed)) => Ok(parsed),
        None => Err(failures.into_error(max_depth)),
    }
}

/// Coerces an invalid value when that lowers its schema errors; returns the errors left.
fn fit(
    value: Value,
    repairs: Vec<Repair>,
    schema: &SchemaValidator,
) -> (Value, Vec<Repair>, usize) {
    if schema.is_valid(&value) {
        return (value, repairs, 0);
    }
    let errors = schema.errors(&value).len();
    let mut coerced = value.clone();
    let mut coercions = Vec::new();
    coerce::coerce(&mut coerced, schema.schema(), &mut coercions);
    if coercions.is_empty() {
        return (value, repairs, errors);
    }
    let after = if schema.is_valid(&coerced) {
        0
    } else {
        schema.errors(&coerced).len()
    };
    if after < errors {
        let mut repairs = repairs;
        repairs.extend(coercions);
        (coerced, repairs, after)
    } else {
        (value, repairs, errors)
    }
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
}

impl Failures {
    fn record(&mut self, failure: Option<Failure>, candidate: &extract::Candidate<'_>) {
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

    /// Too deep, then cut off, then invalid JSON, then no JSON at all.
    fn into_error(self, max_depth: usize) -> ParseError {
        if self.too_deep {
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
fn looks_like_json(candidate: &extract::Candidate<'_>) -> bool {
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
