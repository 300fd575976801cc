//! What the parser changed: one [`Repair`] per change, worded for an audit.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A change the parser made to get a value out of the text.
///
/// Every change is recorded, so an audit can show exactly how far the value the harness used is
/// from what the model wrote. Paths use the same form as [`ValidationError::path`]
/// (`items[2].label`; empty for the whole value).
///
/// [`ValidationError::path`]: crate::output::ValidationError::path
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "repair", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Repair {
    /// The JSON was inside a Markdown code fence.
    ExtractedFromFence,
    /// The JSON was surrounded by prose.
    ExtractedFromProse,
    /// A comma before a closing `]` or `}` was dropped.
    RemovedTrailingComma {
        /// The array or object it was in.
        path: String,
    },
    /// A `//` or `/* */` comment was dropped.
    RemovedComment {
        /// The array or object it was in (empty when outside the value).
        path: String,
    },
    /// An object key without quotes was read as a string.
    QuotedKey {
        /// The member whose key it is.
        path: String,
    },
    /// A string value in single quotes was read as a JSON string.
    ConvertedSingleQuotes {
        /// The string.
        path: String,
    },
    /// An object key in single quotes was read as a JSON string.
    ConvertedSingleQuotedKey {
        /// The member whose key it is.
        path: String,
    },
    /// Python's `True`, `False` or `None` was read as JSON's `true`, `false` or `null`.
    ReplacedPythonLiteral {
        /// Where.
        path: String,
        /// What the model wrote.
        from: String,
        /// The JSON literal used.
        to: String,
    },
    /// A raw control character (such as a line break) inside a string was kept as if escaped.
    EscapedControlCharacter {
        /// The string.
        path: String,
    },
    /// A `\u` escape of half a surrogate pair, which no character has, became U+FFFD.
    ReplacedLoneSurrogate {
        /// The string.
        path: String,
    },
    /// The answer ended inside arrays or objects after a complete value; they were closed.
    ClosedTruncated {
        /// The brackets appended, innermost first, e.g. `]}`.
        closed: String,
    },
    /// A scalar was changed to the type the schema asks for (`"3"` → `3`, `"true"` → `true`).
    Coerced {
        /// Where.
        path: String,
        /// The value the model gave.
        from: Value,
        /// The value used.
        to: Value,
    },
    /// A string matched exactly one enum value when case is ignored and was replaced by it.
    MatchedEnumCase {
        /// Where.
        path: String,
        /// What the model wrote.
        from: String,
        /// The enum value used.
        to: String,
    },
    /// A single value where the schema asks for an array became a one-element array.
    WrappedInArray {
        /// Where.
        path: String,
    },
    /// A key the schema does not allow (a closed object, `additionalProperties: false`) was
    /// dropped with its value.
    DroppedUnknownKey {
        /// The object it was in.
        path: String,
        /// The key.
        key: String,
    },
}

/// `` `items[2]` `` or `the root`.
struct At<'a>(&'a str);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("the root")
        } else {
            write!(f, "`{}`", self.0)
        }
    }
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::ExtractedFromFence => f.write_str("extracted the JSON from a code fence"),
            Repair::ExtractedFromProse => f.write_str("extracted the JSON from surrounding prose"),
            Repair::RemovedTrailingComma { path } => {
                write!(f, "removed a trailing comma in {}", At(path))
            }
            Repair::RemovedComment { path } => write!(f, "removed a comment in {}", At(path)),
            Repair::QuotedKey { path } => write!(f, "quoted the bare key of {}", At(path)),
            Repair::ConvertedSingleQuotes { path } => {
                write!(
                    f,
                    "read the single-quoted string at {} as a JSON string",
                    At(path)
                )
            }
            Repair::ConvertedSingleQuotedKey { path } => {
                write!(
                    f,
                    "read the single-quoted key of {} as a JSON string",
                    At(path)
                )
            }
            Repair::ReplacedPythonLiteral { path, from, to } => {
                write!(f, "read Python `{from}` at {} as JSON `{to}`", At(path))
            }
            Repair::EscapedControlCharacter { path } => write!(
                f,
                "kept a raw control character in the string at {} as if escaped",
                At(path)
            ),
            Repair::ReplacedLoneSurrogate { path } => write!(
                f,
                "replaced a lone surrogate escape in the string at {} with U+FFFD",
                At(path)
            ),
            Repair::ClosedTruncated { closed } => write!(
                f,
                "the answer was cut off after a complete value; closed it with `{closed}`"
            ),
            Repair::Coerced { path, from, to } => write!(
                f,
                "coerced {} from {from} to {to}, the type the schema asks for",
                At(path)
            ),
            Repair::MatchedEnumCase { path, from, to } => write!(
                f,
                "matched {} {from:?} to the enum value {to:?} (case differs)",
                At(path)
            ),
            Repair::WrappedInArray { path } => write!(
                f,
                "wrapped the single value at {} in a list, as the schema asks for an array",
                At(path)
            ),
            Repair::DroppedUnknownKey { path, key } => write!(
                f,
                "dropped the key {key:?} from {}, which the schema does not have",
                At(path)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_as_a_sentence() {
        let r = Repair::Coerced {
            path: "count".into(),
            from: Value::from("3"),
            to: Value::from(3),
        };
        assert_eq!(
            r.to_string(),
            "coerced `count` from \"3\" to 3, the type the schema asks for"
        );
        let r = Repair::RemovedTrailingComma {
            path: String::new(),
        };
        assert_eq!(r.to_string(), "removed a trailing comma in the root");
        let r = Repair::MatchedEnumCase {
            path: "label".into(),
            from: "positive".into(),
            to: "Positive".into(),
        };
        assert_eq!(
            r.to_string(),
            "matched `label` \"positive\" to the enum value \"Positive\" (case differs)"
        );
    }

    #[test]
    fn serializes_with_a_tag_and_round_trips() {
        let r = Repair::WrappedInArray {
            path: "tags".into(),
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"repair": "wrapped_in_array", "path": "tags"})
        );
        assert_eq!(serde_json::from_value::<Repair>(json).unwrap(), r);
    }
}
