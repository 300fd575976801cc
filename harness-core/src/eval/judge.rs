//! LLM-as-judge, as a harnessed task itself: a rubric, a typed verdict ([`Verdict`],
//! [`Preference`]) and its own failure contract ([`JUDGE`], [`PAIRWISE`]: timeouts and provider
//! errors retried, invalid verdicts reasked, then `fail`). A judge that fails leaves the case
//! *unscored* (counted and shown), never silently passed or failed.
//!
//! [`Pairwise`] compares two answers twice, the order swapped, so a judge that prefers whatever
//! comes first cancels out: only a preference that survives the swap counts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::{
    Action, Backoff, Chain, FailureClass, InputSpec, OutputSpec, Params, TaskContract,
};
use crate::engine::Harness;
use crate::outcome::Resolution;
use crate::output::{FieldPath, LlmOutput, ValidationErrors};

use super::score::{Observation, Score};

/// A scorer that awaits something (an LLM judge). The runner calls it after the synchronous
/// scorers.
pub trait AsyncScorer: Send + Sync {
    /// The name results show.
    fn name(&self) -> &str;
    /// Scores one observation. A score with `error` set leaves the case unscored.
    fn score<'a>(
        &'a self,
        obs: &'a Observation<'a>,
    ) -> Pin<Box<dyn Future<Output = Score> + Send + 'a>>;
}

/// The judge's verdict on one answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// Whether the answer meets the rubric.
    pub pass: bool,
    /// How well, from 0 to 1.
    pub score: f64,
    /// One or two sentences on why.
    pub reason: String,
}

impl LlmOutput for Verdict {
    const TYPE_NAME: &'static str = "Verdict";
    const HAS_CONFIDENCE: bool = false;
    fn validate(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        if !(0.0..=1.0).contains(&self.score) {
            errors.push(&path.field("score"), "range", "must be between 0 and 1");
        }
        if self.reason.trim().is_empty() {
            errors.push(&path.field("reason"), "length", "must say why");
        }
    }
}

/// Which of two answers the judge prefers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// The answer shown first.
    First,
    /// The answer shown second.
    Second,
    /// Neither is better.
    Tie,
}

/// The judge's preference between two answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Preference {
    /// Which is better.
    pub winner: Choice,
    /// Why.
    pub reason: String,
}

impl LlmOutput for Preference {
    const TYPE_NAME: &'static str = "Preference";
    const HAS_CONFIDENCE: bool = false;
    fn validate(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        if self.reason.trim().is_empty() {
            errors.push(&path.field("reason"), "length", "must say why");
        }
    }
}

const RETRY: Action = Action::Retry {
    times: 2,
    backoff: Backoff::DEFAULT,
};

/// The judge's failure contract: timeouts, rate limits and provider errors retried twice,
/// invalid verdicts reasked twice, refusals fail; then `fail`.
const CHAINS: &[Chain] = &[
    Chain {
        class: FailureClass::Timeout,
        steps: &[RETRY, Action::Fail],
    },
    Chain {
        class: FailureClass::RateLimited,
        steps: &[RETRY, Action::Fail],
    },
    Chain {
        class: FailureClass::ProviderError,
        steps: &[RETRY, Action::Fail],
    },
    Chain {
        class: FailureClass::InvalidOutput,
        steps: &[Action::Reask { times: 2 }, Action::Fail],
    },
    Chain {
        class: FailureClass::Refusal,
        steps: &[Action::Fail],
    },
];

const PARAMS: Params = Params {
    temperature: Some(0.0),
    max_tokens: Some(300),
    seed: Some(0),
};

/// The judge task: grades one answer against a rubric. Runs on the harness's default model.
pub static JUDGE: TaskContract = TaskContract::new(
    "eval_judge",
    "harness_core::eval::judge",
    OutputSpec {
        type_name: Verdict::TYPE_NAME,
        has_confidence: false,
        schema: Verdict::output_schema,
    },
)
.with_description("Grades one answer against a rubric.")
.with_version("judge-v1")
.with_system(
    "You grade answers strictly against the rubric. You are shown the task's input, the \
     reference answer (if any) and the answer to grade. Reply with JSON only.",
)
.with_prompt(
    "Rubric:\n{rubric}\n\nInput:\n{input}\n\nReference answer:\n{expected}\n\nAnswer to grade:\n{answer}",
)
.with_inputs(&[
    InputSpec { name: "rubric", rust_type: "&str" },
    InputSpec { name: "input", rust_type: "&str" },
    InputSpec { name: "expected", rust_type: "&str" },
    InputSpec { name: "answer", rust_type: "&str" },
])
.with_timeout(Duration::from_secs(60))
.with_chains(CHAINS)
.with_params(PARAMS);

/// The pairwise judge task: which of two answers better meets a rubric.
pub static PAIRWISE: TaskContract = TaskContract::new(
    "eval_pairwise",
    "harness_core::eval::judge",
    OutputSpec {
        type_name: Preference::TYPE_NAME,
        has_confidence: false,
        schema: Preference::output_schema,
    },
)
.with_description("Says which of two answers better meets a rubric.")
.with_version("pairwise-v1")
.with_system(
    "You compare two answers to the same input against the rubric. Judge content only: the \
     order in which they are shown means nothing. Reply with JSON only.",
)
.with_prompt(
    "Rubric:\n{rubric}\n\nInput:\n{input}\n\nFirst answer:\n{first}\n\nSecond answer:\n{second}",
)
.with_inputs(&[
    InputSpec {
        name: "rubric",
        rust_type: "&str",
    },
    InputSpec {
        name: "input",
        rust_type: "&str",
    },
    InputSpec {
        name: "first",
        rust_type: "&str",
    },
    InputSpec {
        name: "second",
        rust_type: "&str",
    },
])
.with_timeout(Duration::from_secs(60))
.with_chains(CHAINS)
.with_params(PARAMS);

fn text(v: Option<&Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// An LLM judge with a rubric, on a harness of its own (often another model than the task's).
#[derive(Clone)]
pub struct LlmJudge {
    name: String,
    rubric: String,
    harness: Arc<Harness>,
}

impl LlmJudge {
    /// A judge named `name` grading with `rubric` on `harness`.
    pub fn new(name: impl Into<String>, rubric: impl Into<String>, harness: Arc<Harness>) -> Self {
        LlmJudge {
            name: name.into(),
            rubric: rubric.into(),
            harness,
        }
    }

    /// Grades one answer: the verdict, or why the judge could not give one.
    pub async fn grade(
        &self,
        input: &Value,
        expected: Option<&Value>,
        answer: Option<&Value>,
    ) -> Result<Verdict, String> {
        let inputs = vec![
            ("rubric", self.rubric.clone()),
            ("input", text(Some(input))),
            ("expected", text(expected)),
            ("answer", text(answer)),
        ];
        match self
            .harness
            .run::<Verdict>(&JUDGE, inputs, None, None)
            .await
        {
            Ok(o) => match o.resolution {
                Resolution::Answer(v) => Ok(v),
                _ => Err(format!("the judge did not answer ({})", o.summary())),
            },
            Err(e) => Err(format!("the judge failed: {e}")),
        }
    }
}

impl AsyncScorer for LlmJudge {
    fn name(&self) -> &str {
        &self.name
    }
    fn score<'a>(
        &'a self,
        obs: &'a Observation<'a>,
    ) -> Pin<Box<dyn Future<Output = Score> + Send + 'a>> {
        Box::pin(async move {
            match self.grade(obs.inputs, obs.expected, obs.got).await {
                Ok(v) => Score {
                    name: self.name.clone(),
                    passed: v.pass,
                    value: v.score,
                    detail: Some(v.reason),
                    error: None,
                },
                Err(e) => Score {
                    name: self.name.clone(),
                    passed: false,
                    value: 0.0,
                    detail: None,
                    error: Some(e),
                },
            }
        })
    }
}

/// Which answer won a pairwise comparison, after the swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    /// Answer A, in both orders.
    A,
    /// Answer B, in both orders.
    B,
    /// A tie, or the two orders disagreed (position bias).
    Tie,
}

/// The result of a pairwise comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairwiseResult {
    /// Who won.
    pub winner: Winner,
    /// Whether both orders agreed.
    pub consistent: bool,
    /// The judge's reasons, A shown first then B shown first.
    pub reasons: [String; 2],
}

/// Pairwise comparison with the order swapped.
#[derive(Clone)]
pub struct Pairwise {
    rubric: String,
    harness: Arc<Harness>,
}

impl Pairwise {
    /// A pairwise judge with `rubric` on `harness`.
    pub fn new(rubric: impl Into<String>, harness: Arc<Harness>) -> Self {
        Pairwise {
            rubric: rubric.into(),
            harness,
        }
    }

    async fn ask(&self, input: &str, first: &str, second: &str) -> Result<Preference, String> {
        let inputs = vec![
            ("rubric", self.rubric.clone()),
            ("input", input.to_owned()),
            ("first", first.to_owned()),
            ("second", second.to_owned()),
        ];
        match self
            .harness
            .run::<Preference>(&PAIRWISE, inputs, None, None)
            .await
        {
            Ok(o) => match o.resolution {
                Resolution::Answer(p) => Ok(p),
                _ => Err(format!("the judge did not answer ({})", o.summary())),
            },
            Err(e) => Err(format!("the judge failed: {e}")),
        }
    }

    /// Compares answers `a` and `b` to `input`: once with A first, once with B first. A wins
    /// only when preferred in both orders; disagreeing orders are a tie.
    pub async fn compare(
        &self,
        input: &Value,
        a: &Value,
        b: &Value,
    ) -> Result<PairwiseResult, String> {
        let (input, a, b) = (text(Some(input)), text(Some(a)), text(Some(b)));
        let ab = self.ask(&input, &a, &b).await?;
        let ba = self.ask(&input, &b, &a).await?;
        let first = match ab.winner {
            Choice::First => Winner::A,
            Choice::Second => Winner::B,
            Choice::Tie => Winner::Tie,
        };
        let second = match ba.winner {
            Choice::First => Winner::B,
            Choice::Second => Winner::A,
            Choice::Tie => Winner::Tie,
        };
        let consistent = first == second;
        Ok(PairwiseResult {
            winner: if consistent { first } else { Winner::Tie },
            consistent,
            reasons: [ab.reason, ba.reason],
        })
    }
}
