//! What the parser changed: one [`Repair`] per change, worded for an audit.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use harness_spec::RepairKind;

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
    /// A quote inside a string that cannot end it (what follows it cannot follow a string) was
    /// kept as a character: `{"q": "say "hi" now"}` → `say "hi" now`.
    EscapedInnerQuote {
        /// The string.
        path: String,
    },
    /// An unquoted single word where a value goes was read as a string: `{"status": active}`.
    QuotedBareValue {
        /// Where.
        path: String,
        /// The word.
        word: String,
    },
    /// The whole answer had no JSON syntax and was read as the one scalar the schema asks for:
    /// `TWO` for an enum, `True` for a boolean, `hello` for a string.
    ReadBareAnswer {
        /// The answer, trimmed.
        from: String,
    },
    /// Several top-level values, with nothing but whitespace or commas between them, were read
    /// as the list the schema asks for.
    CollectedValues {
        /// How many values.
        count: usize,
    },
    /// The answer ended inside arrays or objects after a complete value; they were closed.
    ClosedTruncated {
        /// The brackets appended, innermost first, e.g. `]}`.
        closed: String,
    },
    /// A scalar was changed to the type the schema asks for (`"3"` → `3`, `"true"` → `true`,
    /// `5531` → `"5531"`).
    Coerced {
        /// Where.
        path: String,
        /// The value the model gave.
        from: Value,
        /// The value used.
        to: Value,
    },
    /// A string matched exactly one enum value once case and surrounding whitespace are ignored,
    /// and was replaced by it.
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

impl Repair {
    /// Its kind, whose [`RepairKind::name`] is the stable machine name (the `repair` tag of its
    /// JSON form).
    pub fn kind(&self) -> RepairKind {
        match self {
            Repair::ExtractedFromFence => RepairKind::ExtractedFromFence,
            Repair::ExtractedFromProse => RepairKind::ExtractedFromProse,
            Repair::RemovedTrailingComma { .. } => RepairKind::RemovedTrailingComma,
            Repair::RemovedComment { .. } => RepairKind::RemovedComment,
            Repair::QuotedKey { .. } => RepairKind::QuotedKey,
            Repair::ConvertedSingleQuotes { .. } => RepairKind::ConvertedSingleQuotes,
            Repair::ConvertedSingleQuotedKey { .. } => RepairKind::ConvertedSingleQuotedKey,
            Repair::ReplacedPythonLiteral { .. } => RepairKind::ReplacedPythonLiteral,
            Repair::EscapedControlCharacter { .. } => RepairKind::EscapedControlCharacter,
            Repair::ReplacedLoneSurrogate { .. } => RepairKind::ReplacedLoneSurrogate,
            Repair::EscapedInnerQuote { .. } => RepairKind::EscapedInnerQuote,
            Repair::QuotedBareValue { .. } => RepairKind::QuotedBareValue,
            Repair::ReadBareAnswer { .. } => RepairKind::ReadBareAnswer,
            Repair::CollectedValues { .. } => RepairKind::CollectedValues,
            Repair::ClosedTruncated { .. } => RepairKind::ClosedTruncated,
            Repair::Coerced { .. } => RepairKind::Coerced,
            Repair::MatchedEnumCase { .. } => RepairKind::MatchedEnumCase,
            Repair::WrappedInArray { .. } => RepairKind::WrappedInArray,
            Repair::DroppedUnknownKey { .. } => RepairKind::DroppedUnknownKey,
        }
    }

    /// How far the repair takes the value from what the model wrote, for ranking readings:
    /// 1 for layout (fences, commas, comments), 2 for spelling (quotes, literals, a bare word),
    /// 3 for changes the schema guides and for quotes and cut-offs, whose reading depends on what
    /// follows.
    pub fn cost(&self) -> u32 {
        match self.kind() {
            RepairKind::ExtractedFromFence
            | RepairKind::ExtractedFromProse
            | RepairKind::RemovedTrailingComma
            | RepairKind::RemovedComment
            | RepairKind::EscapedControlCharacter => 1,
            RepairKind::QuotedKey
            | RepairKind::ConvertedSingleQuotes
            | RepairKind::ConvertedSingleQuotedKey
            | RepairKind::ReplacedPythonLiteral
            | RepairKind::ReplacedLoneSurrogate
            | RepairKind::QuotedBareValue
            | RepairKind::MatchedEnumCase
            | RepairKind::WrappedInArray => 2,
            _ => 3,
        }
    }
}

/// A set of [`RepairKind`]s, e.g. the kinds a task does not accept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RepairSet(u32);

impl RepairSet {
    /// No kind.
    pub const EMPTY: RepairSet = RepairSet(0);

    /// The set of `kinds`.
    pub const fn of(kinds: &[RepairKind]) -> RepairSet {
        let mut bits = 0;
        let mut i = 0;
        while i < kinds.len() {
            bits |= kinds[i].bit();
            i += 1;
        }
        RepairSet(bits)
    }

    /// Both sets together.
    pub const fn union(self, other: RepairSet) -> RepairSet {
        RepairSet(self.0 | other.0)
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: RepairKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in [`RepairKind::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = RepairKind> {
        RepairKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }

    /// The first repair in `repairs` whose kind is in the set.
    pub fn first_in(self, repairs: &[Repair]) -> Option<&Repair> {
        repairs.iter().find(|r| self.contains(r.kind()))
    }
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
            Repair::EscapedInnerQuote { path } => write!(
                f,
                "kept a quote that cannot end the string at {} as part of it",
                At(path)
            ),
            Repair::QuotedBareValue { path, word } => {
                write!(f, "read the bare word `{word}` at {} as a string", At(path))
            }
            Repair::ReadBareAnswer { from } => write!(
                f,
                "read the whole answer {from:?} as the single value the schema asks for"
            ),
            Repair::CollectedValues { count } => write!(
                f,
                "collected {count} top-level values into the list the schema asks for"
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
                "matched {} {from:?} to the enum value {to:?} (case or spacing differs)",
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
            "matched `label` \"positive\" to the enum value \"Positive\" (case or spacing differs)"
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

    #[test]
    fn the_json_tag_is_the_kind_name() {
        let samples = [
            Repair::QuotedBareValue {
                path: "a".into(),
                word: "b".into(),
            },
            Repair::EscapedInnerQuote { path: "a".into() },
            Repair::ReadBareAnswer { from: "x".into() },
            Repair::CollectedValues { count: 2 },
            Repair::DroppedUnknownKey {
                path: String::new(),
                key: "k".into(),
            },
            Repair::ExtractedFromFence,
        ];
        for r in samples {
            let json = serde_json::to_value(&r).unwrap();
            assert_eq!(json["repair"], r.kind().name(), "{r:?}");
        }
    }

    #[test]
    fn a_set_holds_what_it_was_made_of() {
        let set = RepairSet::of(&[RepairKind::Coerced, RepairKind::ClosedTruncated]);
        assert!(set.contains(RepairKind::Coerced));
        assert!(!set.contains(RepairKind::QuotedKey));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![RepairKind::ClosedTruncated, RepairKind::Coerced]
        );
        assert!(RepairSet::EMPTY.is_empty());
    }
}
