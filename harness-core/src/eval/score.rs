//! Scorers: what decides whether a case passed. A [`Scorer`] sees an [`Observation`] (the
//! expected value, the answer, how the call ended, latency and cost) and gives a [`Score`].
//! Built in: [`exact`], [`fields`], [`expected_fields`], [`numeric`], [`contains`], [`regex()`],
//! [`schema_valid`], [`ending`], [`latency_under`], [`cost_under`], and [`from_fn`] for your own.
//! LLM-as-judge is in [`judge`](super::judge).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::provider::Usage;

/// How a call ended, in the words of the outcome mix: an answer (first try, or after a repair,
/// retries, reasks, a fallback), a default, an escalation, or a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Ending {
    /// A model answer on the first try, as given.
    Answer,
    /// A model answer the lenient parser repaired.
    Repaired,
    /// A model answer after retries.
    Retried,
    /// A model answer after reasks.
    Reasked,
    /// A fallback model's answer.
    Fallback,
    /// The task's default value.
    Default,
    /// Handed to a human.
    Escalated,
    /// A `TaskError`.
    Failed,
}

impl Ending {
    /// Every ending, in report order.
    pub const ALL: [Ending; 8] = [
        Ending::Answer,
        Ending::Repaired,
        Ending::Retried,
        Ending::Reasked,
        Ending::Fallback,
        Ending::Default,
        Ending::Escalated,
        Ending::Failed,
    ];

    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Ending::Answer => "answer",
            Ending::Repaired => "repaired",
            Ending::Retried => "retried",
            Ending::Reasked => "reasked",
            Ending::Fallback => "fallback",
            Ending::Default => "default",
            Ending::Escalated => "escalated",
            Ending::Failed => "failed",
        }
    }

    /// Whether the model produced the value (any of the answer endings).
    pub const fn is_answer(self) -> bool {
        matches!(
            self,
            Ending::Answer
                | Ending::Repaired
                | Ending::Retried
                | Ending::Reasked
                | Ending::Fallback
        )
    }
}

/// What a scorer sees of one run of one case.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// The case's id.
    pub id: &'a str,
    /// The case's inputs as JSON.
    pub inputs: &'a Value,
    /// What the case expects, if anything.
    pub expected: Option<&'a Value>,
    /// The model's accepted answer as JSON (answers only: not a default or an escalation).
    pub got: Option<&'a Value>,
    /// How the call ended.
    pub ending: Ending,
    /// Wall time of the call.
    pub latency: Duration,
    /// Tokens billed over all attempts, failed ones included.
    pub usage: Usage,
    /// Cost over all attempts, when prices are known.
    pub cost_usd: Option<f64>,
}

/// One scorer's judgement of one case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The scorer's name.
    pub name: String,
    /// Whether the case passed this scorer.
    pub passed: bool,
    /// A score from 0 to 1 (1 or 0 for pass/fail scorers).
    pub value: f64,
    /// Why, in words, when it did not pass (or what a judge said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The scorer could not score (a judge that failed): the case is counted as unscored, not
    /// as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Score {
    /// A pass/fail score.
    pub fn pass_fail(name: &str, passed: bool, detail: impl FnOnce() -> String) -> Score {
        Score {
            name: name.to_owned(),
            passed,
            value: if passed { 1.0 } else { 0.0 },
            detail: (!passed).then(detail),
            error: None,
        }
    }
}

/// Decides whether a case passed. Implement it, or wrap a closure with [`from_fn`].
pub trait Scorer: Send + Sync {
    /// The name results and reports show.
    fn name(&self) -> &str;
    /// Scores one observation.
    fn score(&self, obs: &Observation<'_>) -> Score;
}

impl<S: Scorer + ?Sized> Scorer for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn score(&self, obs: &Observation<'_>) -> Score {
        (**self).score(obs)
    }
}

/// The value at a dotted path (`label`, `items.2.name`) inside `value`.
pub fn at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    if path.is_empty() {
        return Some(value);
    }
    path.split('.').try_fold(value, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Whether two JSON values are equal, numbers compared as numbers (`1` equals `1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn show(v: Option<&Value>) -> String {
    v.map(Value::to_string).unwrap_or_else(|| "nothing".into())
}

struct Named<F> {
    name: String,
    f: F,
}

impl<F: Fn(&Observation<'_>) -> Score + Send + Sync> Scorer for Named<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn score(&self, obs: &Observation<'_>) -> Score {
        let mut s = (self.f)(obs);
        if s.name.is_empty() {
            s.name.clone_from(&self.name);
        }
        s
    }
}

/// A scorer from a closure. The score's name may be left empty: it gets `name`.
pub fn from_fn(
    name: impl Into<String>,
    f: impl Fn(&Observation<'_>) -> Score + Send + Sync + 'static,
) -> Arc<dyn Scorer> {
    Arc::new(Named {
        name: name.into(),
        f,
    })
}

/// A pass/fail scorer from a predicate and a message for a failure.
fn check(
    name: String,
    f: impl Fn(&Observation<'_>) -> Result<(), String> + Send + Sync + 'static,
) -> Arc<dyn Scorer> {
    from_fn(name, move |obs| match f(obs) {
        Ok(()) => Score::pass_fail("", true, String::new),
        Err(why) => Score::pass_fail("", false, || why),
    })
}

/// The answer equals the expected value exactly (numbers as numbers). A case with no expected
/// value fails: there is nothing to be exact about.
pub fn exact() -> Arc<dyn Scorer> {
    check("exact".into(), |obs| match (obs.expected, obs.got) {
        (Some(e), Some(g)) if json_eq(e, g) => Ok(()),
        (None, _) => Err("the case has no expected value".into()),
        (e, g) => Err(format!("expected {}, got {}", show(e), show(g))),
    })
}

/// Each named field of the answer equals the expected one; the value is the share that match.
pub fn fields(names: &[&str]) -> Arc<dyn Scorer> {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let name = format!("fields({})", names.join(","));
    from_fn(name, move |obs| {
        field_score(obs, names.iter().map(String::as_str))
    })
}

/// Each field the case's expected object names equals the answer's.
pub fn expected_fields() -> Arc<dyn Scorer> {
    from_fn("expected_fields", |obs| match obs.expected {
        Some(Value::Object(m)) => field_score(obs, m.keys().map(String::as_str)),
        Some(_) => exact().score(obs),
        None => Score::pass_fail("", false, || "the case has no expected value".into()),
    })
}

fn field_score<'n>(obs: &Observation<'_>, names: impl Iterator<Item = &'n str>) -> Score {
    let (mut total, mut ok) = (0usize, 0usize);
    let mut wrong = Vec::new();
    for name in names {
        total += 1;
        let e = obs.expected.and_then(|e| at(e, name));
        let g = obs.got.and_then(|g| at(g, name));
        match (e, g) {
            (Some(e), Some(g)) if json_eq(e, g) => ok += 1,
            (e, g) => wrong.push(format!("{name}: expected {}, got {}", show(e), show(g))),
        }
    }
    let value = if total == 0 {
        0.0
    } else {
        ok as f64 / total as f64
    };
    Score {
        name: String::new(),
        passed: total > 0 && ok == total,
        value,
        detail: (!wrong.is_empty()).then(|| wrong.join("; ")),
        error: None,
    }
}

/// The answer's numeric `field` is within `tolerance` of the expected one.
pub fn numeric(field: &str, tolerance: f64) -> Arc<dyn Scorer> {
    let field = field.to_owned();
    check(format!("numeric({field}, ±{tolerance})"), move |obs| {
        let e = obs
            .expected
            .and_then(|e| at(e, &field))
            .and_then(Value::as_f64);
        let g = obs.got.and_then(|g| at(g, &field)).and_then(Value::as_f64);
        within(&field, e, g, tolerance)
    })
}

pub(crate) fn within(field: &str, e: Option<f64>, g: Option<f64>, tol: f64) -> Result<(), String> {
    match (e, g) {
        (Some(e), Some(g)) if (e - g).abs() <= tol => Ok(()),
        (Some(e), Some(g)) => Err(format!("{field}: {g} is not within {tol} of {e}")),
        (None, _) => Err(format!("{field}: no expected number")),
        (_, None) => Err(format!("{field}: the answer has no number here")),
    }
}

/// The answer's text `field` contains `needle`.
pub fn contains(field: &str, needle: &str) -> Arc<dyn Scorer> {
    let (field, needle) = (field.to_owned(), needle.to_owned());
    check(format!("contains({field}, {needle:?})"), move |obs| {
        text_check(
            obs.got,
            &field,
            |s| s.contains(needle.as_str()),
            &format!("does not contain {needle:?}"),
        )
    })
}

/// The answer's text `field` matches `pattern`. An invalid pattern is an error here, not a
/// failing case.
pub fn regex(field: &str, pattern: &str) -> Result<Arc<dyn Scorer>, regex::Error> {
    let re = regex::Regex::new(pattern)?;
    let field = field.to_owned();
    let name = format!("regex({field}, /{pattern}/)");
    let why = format!("does not match /{pattern}/");
    Ok(check(name, move |obs| {
        text_check(obs.got, &field, |s| re.is_match(s), &why)
    }))
}

pub(crate) fn text_check(
    got: Option<&Value>,
    field: &str,
    ok: impl Fn(&str) -> bool,
    why: &str,
) -> Result<(), String> {
    match got.and_then(|g| at(g, field)) {
        Some(Value::String(s)) if ok(s) => Ok(()),
        Some(Value::String(s)) => Err(format!("{field}: {s:?} {why}")),
        Some(v) => Err(format!("{field}: {v} is not text")),
        None => Err(format!("{field}: not in the answer")),
    }
}

/// The call produced a model answer that passed the task's schema and rules (any answer ending;
/// defaults, escalations and failures do not).
pub fn schema_valid() -> Arc<dyn Scorer> {
    check("schema_valid".into(), |obs| {
        if obs.ending.is_answer() && obs.got.is_some() {
            Ok(())
        } else {
            Err(format!(
                "no valid answer (the call ended: {})",
                obs.ending.as_str()
            ))
        }
    })
}

/// The call ended in one of `allowed`.
pub fn ending(allowed: &[Ending]) -> Arc<dyn Scorer> {
    let allowed = allowed.to_vec();
    let names: Vec<&str> = allowed.iter().map(|e| e.as_str()).collect();
    check(format!("ending({})", names.join("|")), move |obs| {
        if allowed.contains(&obs.ending) {
            Ok(())
        } else {
            Err(format!("the call ended: {}", obs.ending.as_str()))
        }
    })
}

/// The call took at most `limit`.
pub fn latency_under(limit: Duration) -> Arc<dyn Scorer> {
    check(format!("latency≤{}ms", limit.as_millis()), move |obs| {
        if obs.latency <= limit {
            Ok(())
        } else {
            Err(format!("took {:.0} ms", obs.latency.as_secs_f64() * 1000.0))
        }
    })
}

/// The call cost at most `max_usd` (a call of unknown cost fails: the limit cannot be shown).
pub fn cost_under(max_usd: f64) -> Arc<dyn Scorer> {
    check(format!("cost≤${max_usd}"), move |obs| {
        match obs.cost_usd {
            Some(c) if c <= max_usd => Ok(()),
            Some(c) => Err(format!("cost ${c:.6}")),
            None => Err("the cost is unknown (no price for the model)".into()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obs<'a>(expected: Option<&'a Value>, got: Option<&'a Value>) -> Observation<'a> {
        static NULL: Value = Value::Null;
        Observation {
            id: "c1",
            inputs: &NULL,
            expected,
            got,
            ending: Ending::Answer,
            latency: Duration::from_millis(120),
            usage: Usage::default(),
            cost_usd: None,
        }
    }

    #[test]
    fn field_scorers_compare_what_the_case_names() {
        let e = json!({"label": "Positive"});
        let g = json!({"label": "Positive", "confidence": 0.9, "rationale": "nice"});
        assert!(expected_fields().score(&obs(Some(&e), Some(&g))).passed);
        assert!(!exact().score(&obs(Some(&e), Some(&g))).passed);
        let bad = json!({"label": "Negative"});
        let s = expected_fields().score(&obs(Some(&e), Some(&bad)));
        assert!(!s.passed);
        assert_eq!(
            s.detail.unwrap(),
            r#"label: expected "Positive", got "Negative""#
        );
        assert!(fields(&["label"]).score(&obs(Some(&e), Some(&g))).passed);
        assert!(!expected_fields().score(&obs(Some(&e), None)).passed);
    }

    #[test]
    fn numeric_text_and_limits() {
        let e = json!({"score": 0.5, "n": 1});
        let g = json!({"score": 0.54, "n": 1.0, "text": "refund issued"});
        assert!(
            numeric("score", 0.05)
                .score(&obs(Some(&e), Some(&g)))
                .passed
        );
        assert!(
            !numeric("score", 0.01)
                .score(&obs(Some(&e), Some(&g)))
                .passed
        );
        assert!(json_eq(&e["n"], &g["n"]));
        assert!(
            contains("text", "refund")
                .score(&obs(None, Some(&g)))
                .passed
        );
        assert!(!contains("text", "sorry").score(&obs(None, Some(&g))).passed);
        assert!(
            regex("text", r"^refund\b")
                .unwrap()
                .score(&obs(None, Some(&g)))
                .passed
        );
        assert!(regex("text", "(").is_err());
        let o = obs(None, Some(&g));
        assert!(latency_under(Duration::from_millis(200)).score(&o).passed);
        assert!(!latency_under(Duration::from_millis(100)).score(&o).passed);
        assert!(!cost_under(1.0).score(&o).passed);
        assert!(schema_valid().score(&o).passed);
        let mut d = o;
        d.ending = Ending::Default;
        assert!(!schema_valid().score(&d).passed);
        assert!(ending(&[Ending::Answer, Ending::Default]).score(&d).passed);
        assert!(!ending(&[Ending::Answer]).score(&d).passed);
        assert_eq!(at(&json!({"a": [{"b": 2}]}), "a.0.b"), Some(&json!(2)));
    }
}
