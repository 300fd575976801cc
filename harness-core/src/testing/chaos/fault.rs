//! The fault classes the chaos server injects, and how content-level faults distort a good answer.

use std::fmt;

use serde_json::{Map, Value};

/// Bytes of content the `huge_content` fault sends (10 MiB).
pub const HUGE_CONTENT_BYTES: usize = 10 * 1024 * 1024;

/// Nesting depth of the `deep_nesting` fault.
pub const DEEP_NESTING_DEPTH: usize = 100_000;

/// The refusal text of the `refusal` fault.
pub const REFUSAL_TEXT: &str = "I can't help with that.";

macro_rules! faults {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// One way a model server misbehaves. Each has a stable snake_case name
        /// ([`Fault::name`], [`Fault::from_name`]); [`Fault::ALL`] lists them all.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Fault {
            $($(#[$doc])* $variant,)*
        }

        impl Fault {
            /// Every fault class, in declaration order.
            pub const ALL: &'static [Fault] = &[$(Fault::$variant,)*];

            /// The fault's stable name, e.g. `"http_503"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Fault::$variant => $name,)*
                }
            }

            /// The fault called `name` (as [`Fault::name`] spells it).
            pub fn from_name(name: &str) -> Option<Fault> {
                match name {
                    $($name => Some(Fault::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

faults! {
    /// HTTP 500 with an OpenAI-style error body.
    Http500 = "http_500",
    /// HTTP 502.
    Http502 = "http_502",
    /// HTTP 503.
    Http503 = "http_503",
    /// HTTP 429 without `Retry-After`.
    RateLimited = "rate_limited",
    /// HTTP 429 with `Retry-After: 1`.
    RateLimitedRetryAfter = "rate_limited_retry_after",
    /// The request is read, then the connection is reset (TCP RST) without a response.
    ConnectionReset = "connection_reset",
    /// The request is read, then nothing is sent until the stall time passes.
    Stall = "stall",
    /// A good answer, after a delay before the first byte.
    SlowFirstByte = "slow_first_byte",
    /// A good answer's headers promise the whole body, but the connection closes mid-JSON.
    TruncatedBody = "truncated_body",
    /// HTTP 200 with an HTML page instead of JSON.
    NotJson = "not_json",
    /// The answer wrapped in a Markdown code fence.
    CodeFences = "code_fences",
    /// The answer surrounded by chatty prose.
    JsonInProse = "json_in_prose",
    /// The first number becomes a string (or the first string a number).
    WrongTypes = "wrong_types",
    /// The first field of the answer is dropped.
    MissingField = "missing_field",
    /// Every number becomes 1e9 (or, without numbers, strings become 10,000 characters).
    OutOfRange = "out_of_range",
    /// `message.refusal` = "I can't help with that." and no content.
    Refusal = "refusal",
    /// `finish_reason: content_filter` with empty content.
    ContentFilter = "content_filter",
    /// `finish_reason: length` with the answer cut in half.
    Length = "length",
    /// `choices: []`.
    EmptyChoices = "empty_choices",
    /// The answer padded to 10 MiB of content.
    HugeContent = "huge_content",
    /// Bytes that are not UTF-8 inside the content string.
    InvalidUtf8 = "invalid_utf8",
    /// Content that is a JSON array nested 100,000 deep.
    DeepNesting = "deep_nesting",
    /// Every field of the answer renamed (`label` → `label_v2`).
    SchemaDrift = "schema_drift",
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that [`Fault::from_name`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault `{0}` (known: see Fault::ALL)")]
pub struct UnknownFault(pub String);

impl std::str::FromStr for Fault {
    type Err = UnknownFault;
    fn from_str(s: &str) -> Result<Fault, UnknownFault> {
        Fault::from_name(s.trim()).ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

impl Fault {
    /// Faults in the HTTP exchange itself (status codes, the connection, the body's framing).
    pub const TRANSPORT: &'static [Fault] = &[
        Fault::Http500,
        Fault::Http502,
        Fault::Http503,
        Fault::RateLimited,
        Fault::RateLimitedRetryAfter,
        Fault::ConnectionReset,
        Fault::Stall,
        Fault::SlowFirstByte,
        Fault::TruncatedBody,
        Fault::NotJson,
        Fault::EmptyChoices,
        Fault::InvalidUtf8,
    ];

    /// Faults in what the model said: a well-formed response whose content is wrong.
    pub const CONTENT: &'static [Fault] = &[
        Fault::CodeFences,
        Fault::JsonInProse,
        Fault::WrongTypes,
        Fault::MissingField,
        Fault::OutOfRange,
        Fault::Refusal,
        Fault::ContentFilter,
        Fault::Length,
        Fault::HugeContent,
        Fault::DeepNesting,
        Fault::SchemaDrift,
    ];

    /// For content faults, the content sent in place of `good`; `None` for the others.
    pub fn distort(self, good: &str) -> Option<String> {
        let parsed: Option<Value> = serde_json::from_str(good).ok();
        Some(match self {
            Fault::CodeFences => format!("```json\n{good}\n```"),
            Fault::JsonInProse => format!(
                "Sure! Here is the JSON you asked for:\n\n{good}\n\nLet me know if you need anything else."
            ),
            Fault::WrongTypes => match parsed {
                Some(mut v) => {
                    if !retype_first_scalar(&mut v) {
                        v = Value::from(42);
                    }
                    v.to_string()
                }
                None => "42".to_owned(),
            },
            Fault::MissingField => match parsed {
                Some(Value::Object(mut m)) => {
                    if let Some(k) = m.keys().next().cloned() {
                        m.remove(&k);
                    }
                    Value::Object(m).to_string()
                }
                _ => "{}".to_owned(),
            },
            Fault::OutOfRange => match parsed {
                Some(mut v) => {
                    if !set_numbers(&mut v) {
                        lengthen_strings(&mut v);
                    }
                    v.to_string()
                }
                None => "1000000000".to_owned(),
            },
            Fault::Length => {
                let half = good.chars().count() / 2;
                good.chars().take(half).collect()
            }
            Fault::HugeContent => match parsed {
                Some(Value::Object(mut m)) => {
                    m.insert(
                        "padding".into(),
                        Value::String("x".repeat(HUGE_CONTENT_BYTES)),
                    );
                    Value::Object(m).to_string()
                }
                _ => {
                    let mut s = good.to_owned();
                    s.push_str(&" ".repeat(HUGE_CONTENT_BYTES));
                    s
                }
            },
            Fault::DeepNesting => {
                let mut s = "[".repeat(DEEP_NESTING_DEPTH);
                s.push_str(&"]".repeat(DEEP_NESTING_DEPTH));
                s
            }
            Fault::SchemaDrift => match parsed {
                Some(mut v) => {
                    rename_keys(&mut v);
                    v.to_string()
                }
                None => good.to_owned(),
            },
            Fault::Refusal | Fault::ContentFilter => String::new(),
            _ => return None,
        })
    }
}

/// Turns the first number into a string, else the first string into a number, else the first
/// bool into a string.
fn retype_first_scalar(v: &mut Value) -> bool {
    fn walk(v: &mut Value, pass: u8) -> bool {
        match v {
            Value::Number(n) if pass == 0 => {
                *v = Value::String(n.to_string());
                true
            }
            Value::String(_) if pass == 1 => {
                *v = Value::from(42);
                true
            }
            Value::Bool(b) if pass == 2 => {
                *v = Value::String(if *b { "yes" } else { "no" }.to_owned());
                true
            }
            Value::Object(m) => m.values_mut().any(|x| walk(x, pass)),
            Value::Array(a) => a.iter_mut().any(|x| walk(x, pass)),
            _ => false,
        }
    }
    (0..3).any(|pass| walk(v, pass))
}

/// Sets every number to 1e9; whether there was one.
fn set_numbers(v: &mut Value) -> bool {
    match v {
        Value::Number(_) => {
            *v = Value::from(1_000_000_000u64);
            true
        }
        Value::Object(m) => m.values_mut().fold(false, |acc, x| set_numbers(x) | acc),
        Value::Array(a) => a.iter_mut().fold(false, |acc, x| set_numbers(x) | acc),
        _ => false,
    }
}

/// Makes every string 10,000 characters long.
fn lengthen_strings(v: &mut Value) {
    match v {
        Value::String(s) => {
            let fill = if s.is_empty() {
                "x".to_owned()
            } else {
                s.clone()
            };
            *s = fill
                .repeat(10_000 / fill.len() + 1)
                .chars()
                .take(10_000)
                .collect();
        }
        Value::Object(m) => m.values_mut().for_each(lengthen_strings),
        Value::Array(a) => a.iter_mut().for_each(lengthen_strings),
        _ => {}
    }
}

/// Renames every object key `k` to `k_v2`, at every depth.
fn rename_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let old = std::mem::take(m);
            let mut new = Map::new();
            for (k, mut x) in old {
                rename_keys(&mut x);
                new.insert(format!("{k}_v2"), x);
            }
            *m = new;
        }
        Value::Array(a) => a.iter_mut().for_each(rename_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for f in Fault::ALL {
            assert_eq!(Fault::from_name(f.name()), Some(*f));
            assert!(seen.insert(f.name()));
        }
        assert_eq!(Fault::ALL.len(), 23);
        assert_eq!(Fault::from_name("nope"), None);
        assert_eq!(" http_503".parse::<Fault>(), Ok(Fault::Http503));
        assert!(
            "nope"
                .parse::<Fault>()
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
        assert_eq!(Fault::Stall.to_string(), "stall");
        let mut split: Vec<_> = Fault::TRANSPORT.iter().chain(Fault::CONTENT).collect();
        split.sort_by_key(|f| f.name());
        split.dedup();
        assert_eq!(split.len(), Fault::ALL.len());
    }

    #[test]
    fn content_faults_distort_the_good_answer() {
        let good = r#"{"confidence":0.9,"label":"positive","tags":["a"]}"#;
        let d = |f: Fault| f.distort(good).unwrap();
        assert!(d(Fault::CodeFences).starts_with("```json\n{"));
        assert!(d(Fault::JsonInProse).contains(good));
        assert_eq!(
            d(Fault::WrongTypes),
            r#"{"confidence":"0.9","label":"positive","tags":["a"]}"#
        );
        assert_eq!(
            d(Fault::MissingField),
            r#"{"label":"positive","tags":["a"]}"#
        );
        assert_eq!(
            d(Fault::OutOfRange),
            r#"{"confidence":1000000000,"label":"positive","tags":["a"]}"#
        );
        assert_eq!(
            d(Fault::SchemaDrift),
            r#"{"confidence_v2":0.9,"label_v2":"positive","tags_v2":["a"]}"#
        );
        assert_eq!(d(Fault::Length), &good[..good.len() / 2]);
        assert!(d(Fault::HugeContent).len() > HUGE_CONTENT_BYTES);
        assert_eq!(d(Fault::DeepNesting).len(), 2 * DEEP_NESTING_DEPTH);
        assert_eq!(Fault::Http503.distort(good), None);
        assert_eq!(
            Fault::WrongTypes.distort(r#"{"label":"x"}"#).unwrap(),
            r#"{"label":42}"#
        );
        let long = Fault::OutOfRange.distort(r#"{"s":"ab"}"#).unwrap();
        assert_eq!(long.len(), 10_000 + r#"{"s":""}"#.len());
    }
}
