//! [`RepairKind`]: the stable machine names of the lenient parser's repairs.

use core::fmt;

/// A kind of change the lenient parser may make to read a model's answer.
///
/// Each kind has a stable snake_case [`name`](RepairKind::name): the `repair` tag of a repair in an
/// audit record, the label to count repairs by in metrics, and what
/// `#[llm_task(..., repairs(deny = ["..."]))]` names. `docs/parsing.md` says when each applies and
/// when the parser rejects instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum RepairKind {
    /// The JSON was inside a Markdown code fence.
    ExtractedFromFence,
    /// The JSON was surrounded by prose.
    ExtractedFromProse,
    /// A comma before a closing bracket was dropped.
    RemovedTrailingComma,
    /// A `//` or `/* */` comment was dropped.
    RemovedComment,
    /// An unquoted key (a word, a number, `null`) was read as a string.
    QuotedKey,
    /// A single-quoted string value was read as a JSON string.
    ConvertedSingleQuotes,
    /// A single-quoted key was read as a JSON string.
    ConvertedSingleQuotedKey,
    /// Python's `True`, `False`, `None` was read as JSON.
    ReplacedPythonLiteral,
    /// A raw control character inside a string was kept as if escaped.
    EscapedControlCharacter,
    /// A lone surrogate escape became U+FFFD.
    ReplacedLoneSurrogate,
    /// A quote inside a string that cannot end it was kept as a character.
    EscapedInnerQuote,
    /// An unquoted single-word value was read as a string.
    QuotedBareValue,
    /// A whole answer without JSON syntax was read as the one scalar the schema asks for.
    ReadBareAnswer,
    /// Several top-level values were read as the list the schema asks for.
    CollectedValues,
    /// A cut-off answer was closed after its last complete value.
    ClosedTruncated,
    /// A scalar was changed to the type the schema asks for.
    Coerced,
    /// A string matched exactly one enum value once case and surrounding whitespace are ignored.
    MatchedEnumCase,
    /// A single value became a one-element array.
    WrappedInArray,
    /// A key a closed object does not have was dropped.
    DroppedUnknownKey,
}

impl RepairKind {
    /// Every kind, in the order `docs/parsing.md` lists them.
    pub const ALL: [RepairKind; 19] = [
        RepairKind::ExtractedFromFence,
        RepairKind::ExtractedFromProse,
        RepairKind::RemovedTrailingComma,
        RepairKind::RemovedComment,
        RepairKind::QuotedKey,
        RepairKind::ConvertedSingleQuotes,
        RepairKind::ConvertedSingleQuotedKey,
        RepairKind::ReplacedPythonLiteral,
        RepairKind::EscapedControlCharacter,
        RepairKind::ReplacedLoneSurrogate,
        RepairKind::EscapedInnerQuote,
        RepairKind::QuotedBareValue,
        RepairKind::ReadBareAnswer,
        RepairKind::CollectedValues,
        RepairKind::ClosedTruncated,
        RepairKind::Coerced,
        RepairKind::MatchedEnumCase,
        RepairKind::WrappedInArray,
        RepairKind::DroppedUnknownKey,
    ];

    /// The stable snake_case name (`"quoted_bare_value"`).
    pub const fn name(self) -> &'static str {
        match self {
            RepairKind::ExtractedFromFence => "extracted_from_fence",
            RepairKind::ExtractedFromProse => "extracted_from_prose",
            RepairKind::RemovedTrailingComma => "removed_trailing_comma",
            RepairKind::RemovedComment => "removed_comment",
            RepairKind::QuotedKey => "quoted_key",
            RepairKind::ConvertedSingleQuotes => "converted_single_quotes",
            RepairKind::ConvertedSingleQuotedKey => "converted_single_quoted_key",
            RepairKind::ReplacedPythonLiteral => "replaced_python_literal",
            RepairKind::EscapedControlCharacter => "escaped_control_character",
            RepairKind::ReplacedLoneSurrogate => "replaced_lone_surrogate",
            RepairKind::EscapedInnerQuote => "escaped_inner_quote",
            RepairKind::QuotedBareValue => "quoted_bare_value",
            RepairKind::ReadBareAnswer => "read_bare_answer",
            RepairKind::CollectedValues => "collected_values",
            RepairKind::ClosedTruncated => "closed_truncated",
            RepairKind::Coerced => "coerced",
            RepairKind::MatchedEnumCase => "matched_enum_case",
            RepairKind::WrappedInArray => "wrapped_in_array",
            RepairKind::DroppedUnknownKey => "dropped_unknown_key",
        }
    }

    /// Whether the schema guides the repair (a coercion, a dropped key, a wrapped value): the
    /// parser keeps such a repair only when the whole value then fits the schema.
    pub const fn is_schema_guided(self) -> bool {
        matches!(
            self,
            RepairKind::Coerced
                | RepairKind::MatchedEnumCase
                | RepairKind::WrappedInArray
                | RepairKind::DroppedUnknownKey
        )
    }

    /// The kind whose [`name`](RepairKind::name) is `name`.
    pub fn from_name(name: &str) -> Option<RepairKind> {
        RepairKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Its bit in a set of kinds (`1 << index in ALL`).
    pub const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for RepairKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bits_are_distinct() {
        let mut seen = 0u32;
        for (i, kind) in RepairKind::ALL.into_iter().enumerate() {
            assert_eq!(RepairKind::from_name(kind.name()), Some(kind));
            assert_eq!(kind as usize, i, "ALL is in declaration order");
            assert_eq!(seen & kind.bit(), 0);
            seen |= kind.bit();
        }
        assert_eq!(RepairKind::from_name("quoted"), None);
    }
}
