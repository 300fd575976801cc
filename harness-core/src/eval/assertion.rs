//! Per-case assertions, written in the dataset next to (or instead of) the expected value:
//! `"assert": [{"type": "contains", "field": "rationale", "value": "refund"}]`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::score::{self, Ending, Observation, Score, at, json_eq};

/// A compiled regular expression that deserializes from its pattern (an invalid pattern is a
/// load error on its line).
#[derive(Clone, Debug)]
pub struct Pattern(pub regex::Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex::Regex::new(&s)
            .map(Pattern)
            .map_err(|e| serde::de::Error::custom(format!("invalid pattern: {e}")))
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

/// One check of a case, as a dataset writes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Assertion {
    /// The answer's `field` equals `value`.
    Equals {
        /// Dotted path into the answer.
        field: String,
        /// The value it must have.
        value: Value,
    },
    /// The answer's numeric `field` is within `tolerance` of `value`.
    Numeric {
        /// Dotted path into the answer.
        field: String,
        /// The expected number.
        value: f64,
        /// The allowed distance.
        tolerance: f64,
    },
    /// The answer's text `field` contains `value`.
    Contains {
        /// Dotted path into the answer.
        field: String,
        /// The text it must contain.
        value: String,
    },
    /// The answer's text `field` matches `pattern`.
    Regex {
        /// Dotted path into the answer.
        field: String,
        /// The regular expression.
        pattern: Pattern,
    },
    /// The call produced a valid model answer.
    SchemaValid,
    /// The call ended in one of `allow`.
    Ending {
        /// The allowed endings.
        allow: Vec<Ending>,
    },
    /// The call took at most `max` milliseconds.
    LatencyMs {
        /// The limit.
        max: f64,
    },
    /// The call cost at most `max` US dollars.
    CostUsd {
        /// The limit.
        max: f64,
    },
}

impl Assertion {
    /// The name its score carries (`assert:contains(rationale)`).
    pub fn name(&self) -> String {
        match self {
            Assertion::Equals { field, .. } => format!("assert:equals({field})"),
            Assertion::Numeric { field, .. } => format!("assert:numeric({field})"),
            Assertion::Contains { field, .. } => format!("assert:contains({field})"),
            Assertion::Regex { field, .. } => format!("assert:regex({field})"),
            Assertion::SchemaValid => "assert:schema_valid".into(),
            Assertion::Ending { .. } => "assert:ending".into(),
            Assertion::LatencyMs { .. } => "assert:latency_ms".into(),
            Assertion::CostUsd { .. } => "assert:cost_usd".into(),
        }
    }

    /// Scores one observation.
    pub fn score(&self, obs: &Observation<'_>) -> Score {
        let name = self.name();
        let result = match self {
            Assertion::Equals { field, value } => match obs.got.and_then(|g| at(g, field)) {
                Some(g) if json_eq(g, value) => Ok(()),
                g => Err(format!(
                    "{field}: expected {value}, got {}",
                    g.map(Value::to_string).unwrap_or_else(|| "nothing".into())
                )),
            },
            Assertion::Numeric {
                field,
                value,
                tolerance,
            } => {
                let g = obs.got.and_then(|g| at(g, field)).and_then(Value::as_f64);
                score::within(field, Some(*value), g, *tolerance)
            }
            Assertion::Contains { field, value } => score::text_check(
                obs.got,
                field,
                |s| s.contains(value.as_str()),
                &format!("does not contain {value:?}"),
            ),
            Assertion::Regex { field, pattern } => score::text_check(
                obs.got,
                field,
                |s| pattern.0.is_match(s),
                &format!("does not match /{}/", pattern.0.as_str()),
            ),
            Assertion::SchemaValid => return named(score::schema_valid().score(obs), name),
            Assertion::Ending { allow } => return named(score::ending(allow).score(obs), name),
            Assertion::LatencyMs { max } => {
                let limit = Duration::from_secs_f64(max.max(0.0) / 1000.0);
                return named(score::latency_under(limit).score(obs), name);
            }
            Assertion::CostUsd { max } => return named(score::cost_under(*max).score(obs), name),
        };
        match result {
            Ok(()) => Score::pass_fail(&name, true, String::new),
            Err(why) => Score::pass_fail(&name, false, || why),
        }
    }
}

fn named(mut s: Score, name: String) -> Score {
    s.name = name;
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn assertions_read_from_json_and_score() {
        let a: Vec<Assertion> = serde_json::from_value(json!([
            {"type": "contains", "field": "rationale", "value": "late"},
            {"type": "regex", "field": "rationale", "pattern": "^The"},
            {"type": "ending", "allow": ["answer", "repaired"]},
            {"type": "latency_ms", "max": 500},
        ]))
        .unwrap();
        let got = json!({"rationale": "The parcel was late"});
        let obs = Observation {
            id: "x",
            inputs: &Value::Null,
            expected: None,
            got: Some(&got),
            ending: Ending::Repaired,
            latency: Duration::from_millis(20),
            usage: Default::default(),
            cost_usd: None,
        };
        assert!(a.iter().all(|a| a.score(&obs).passed));
        let bad = serde_json::from_value::<Assertion>(
            json!({"type": "regex", "field": "x", "pattern": "("}),
        );
        assert!(bad.unwrap_err().to_string().contains("invalid pattern"));
        let unknown = serde_json::from_value::<Assertion>(
            json!({"type": "contains", "field": "x", "value": "y", "extra": 1}),
        );
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `extra`")
        );
    }
}
