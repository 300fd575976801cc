//! Evaluation: datasets typed by the task, scorers, a runner, results with intervals, a
//! baseline comparison that is statistics (paired by case, exact McNemar, paired bootstrap, a
//! power statement) and a CI gate, reports (self-contained HTML, Markdown), and continuous
//! evaluation of live traffic (an online-scoring [`Observer`](crate::Observer) and a
//! model-update detector). `docs/eval.md` is the guide.
//!
//! ```no_run,standalone_crate
//! use harness_core::eval::{self, Dataset, EvalTask, Runner, score};
//! use harness_core::prelude::*;
//!
//! #[derive(Debug, LlmOutput)]
//! enum Label { Positive, Neutral, Negative }
//!
//! #[derive(Debug, LlmOutput)]
//! struct Sentiment { label: Label }
//!
//! #[llm_task(
//!     prompt = "Review: {review}",
//!     on_timeout = retry(2),
//!     on_rate_limited = retry(5),
//!     on_provider_error = retry(2).then(fail),
//!     on_invalid_output = reask(2).then(fail),
//!     on_refusal = escalate,
//! )]
//! async fn classify(review: &str) -> TaskResult<Sentiment>;
//!
//! /// The task's input, as a dataset line writes it: `{"review": "..."}`.
//! #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! struct Review { review: String }
//!
//! struct Classify;
//! impl EvalTask for Classify {
//!     type Input = Review;
//!     type Output = Sentiment;
//!     fn contract() -> &'static TaskContract { &classify::CONTRACT }
//!     async fn call(&self, h: &Harness, i: &Review) -> TaskResult<Sentiment> {
//!         classify::with(h, &i.review).await
//!     }
//! }
//!
//! # async fn demo(harness: Harness) -> Result<(), Box<dyn std::error::Error>> {
//! // {"id": "r001", "inputs": {"review": "..."}, "expected": {"label": "Positive"}}
//! let dataset = Dataset::load::<Classify>("reviews.jsonl")?;
//! let results = Runner::new()
//!     .scorer(score::expected_fields())
//!     .out("results.json")
//!     .run(&harness, &Classify, &dataset)
//!     .await?;
//! let base = eval::RunResults::read("baseline.json")?;
//! let cmp = eval::compare(&base, &results, Default::default())?;
//! println!("{}", cmp.verdict);
//! std::process::exit(cmp.exit_code().into());
//! # }
//! ```

mod assertion;
mod compare;
mod dataset;
pub mod judge;
mod online;
pub mod report;
mod results;
mod runner;
pub mod score;
pub mod stats;

use std::future::Future;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::contract::TaskContract;
use crate::engine::Harness;
use crate::outcome::TaskResult;
use crate::output::LlmOutput;

pub use assertion::{Assertion, Pattern};
pub use compare::{
    CompareError, Comparison, EXIT_CANNOT_RUN, EXIT_OK, EXIT_REGRESSION, Flip, GateConfig, Power,
    compare,
};
pub use dataset::{Case, Dataset, LoadError, LoadErrors};
pub use online::{ModelChange, ModelUpdateDetector, OnlineEval, OnlineSnapshot};
pub use results::{
    CaseResult, Confusion, FieldAccuracy, FieldResult, Latency, RESULTS_FORMAT, RESULTS_VERSION,
    ResultsError, RunInfo, RunResults, Stats, Summary,
};
pub use runner::{RunError, Runner, enum_fields};
pub use score::{Ending, Observation, Score, Scorer};

/// A task as evaluation sees it: its contract, its typed input (what a dataset's `inputs`
/// deserialize into and are checked against), its output type (what `expected` is checked
/// against), and how to call it. Implement it once per task, next to the task:
///
/// ```text
/// struct Classify;
/// impl EvalTask for Classify {
///     // #[derive(Serialize, Deserialize, JsonSchema)] struct Review { review: String }
///     type Input = Review;
///     type Output = Sentiment;
///     fn contract() -> &'static TaskContract { &classify::CONTRACT }
///     async fn call(&self, h: &Harness, i: &Review) -> TaskResult<Sentiment> {
///         classify::with(h, &i.review).await
///     }
/// }
/// ```
///
/// (The module's example above is the same, complete.)
pub trait EvalTask: Send + Sync {
    /// The task's inputs as one value.
    type Input: DeserializeOwned + Serialize + JsonSchema + Send + Sync;
    /// The task's output type.
    type Output: LlmOutput;
    /// The task's contract.
    fn contract() -> &'static TaskContract;
    /// Calls the task on `harness`.
    fn call(
        &self,
        harness: &Harness,
        input: &Self::Input,
    ) -> impl Future<Output = TaskResult<Self::Output>> + Send;
}
