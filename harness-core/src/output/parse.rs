//! The lenient parser: finds the JSON in a model's answer.
//!
//! This first version extracts JSON from code fences and surrounding prose. The repairs and the
//! schema-guided coercions of issue #3 extend it; every repair applied is recorded as a [`Repair`].

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::SchemaValidator;

/// Bounds on what the parser accepts, so hostile output cannot exhaust memory or the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest input, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of arrays and objects.
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

/// A change the parser made to get a value out of the text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "repair", rename_all = "snake_case")]
pub enum Repair {
    /// The JSON was inside a Markdown code fence.
    ExtractedFromFence,
    /// The JSON was surrounded by prose.
    ExtractedFromProse,
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::ExtractedFromFence => f.write_str("extracted the JSON from a code fence"),
            Repair::ExtractedFromProse => f.write_str("extracted the JSON from surrounding prose"),
        }
    }
}

/// A value the parser found, with the repairs it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The JSON value.
    pub value: Value,
    /// Repairs applied, in order.
    pub repairs: Vec<Repair>,
}

/// Why no value could be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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
    /// JSON-looking text that does not parse.
    #[error("the answer is not valid JSON: {0}")]
    Invalid(String),
}

/// Finds the JSON value in `text`.
pub fn parse(
    text: &str,
    _schema: &SchemaValidator,
    limits: &ParseLimits,
) -> Result<Parsed, ParseError> {
    if text.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            len: text.len(),
            max: limits.max_bytes,
        });
    }
    let depth = max_depth(text);
    if depth > limits.max_depth {
        return Err(ParseError::TooDeep {
            max: limits.max_depth,
        });
    }
    let trimmed = text.trim();
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        return Ok(Parsed {
            value,
            repairs: Vec::new(),
        });
    }
    let mut repairs = Vec::new();
    let mut body = trimmed;
    if let Some(start) = trimmed.find("```") {
        let after = &trimmed[start + 3..];
        let after = after.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
        if let Some(end) = after.find("```") {
            body = after[..end].trim();
            repairs.push(Repair::ExtractedFromFence);
        }
    }
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        return Ok(Parsed { value, repairs });
    }
    let start = body.find(['{', '[']).ok_or(ParseError::NoJson)?;
    let mut stream = serde_json::Deserializer::from_str(&body[start..]).into_iter::<Value>();
    match stream.next() {
        Some(Ok(value)) => {
            if repairs.is_empty() {
                repairs.push(Repair::ExtractedFromProse);
            }
            Ok(Parsed { value, repairs })
        }
        Some(Err(e)) => Err(ParseError::Invalid(e.to_string())),
        None => Err(ParseError::NoJson),
    }
}

/// The deepest bracket nesting outside strings (a cheap pre-check before serde_json recurses).
fn max_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}
