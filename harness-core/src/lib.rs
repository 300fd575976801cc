//! # harness
//!
//! Production-grade LLM calls by construction. Annotate a function with `#[llm_task]` and its
//! output type with `#[derive(LlmOutput)]`; the harness generates the JSON schema, validates the
//! model's answer, and runs the failure contract you declared for every way the call can fail. A
//! task that does not say what happens on timeout, rate limit, provider error, invalid output,
//! refusal (and low confidence, when its output has a confidence field) does not compile.
//!
//! ```no_run
//! use harness_core::prelude::*;
//!
//! #[derive(Debug, LlmOutput)]
//! enum Label { Positive, Neutral, Negative }
//!
//! /// The sentiment of one customer review.
//! #[derive(Debug, LlmOutput)]
//! struct Sentiment {
//!     label: Label,
//!     /// How sure the model is, from 0 to 1.
//!     #[llm(confidence, range(min = 0.0, max = 1.0))]
//!     confidence: f64,
//!     #[llm(length(max = 280))]
//!     rationale: String,
//! }
//!
//! /// Classifies the sentiment of one customer review.
//! #[llm_task(
//!     model = "smollm2-135m",
//!     system = "You classify customer reviews.",
//!     prompt = "Review: {review}",
//!     timeout = "20s",
//!     on_timeout = retry(2),
//!     on_rate_limited = retry(5),
//!     on_provider_error = retry(2).then(fallback("gpt-4o-mini")),
//!     on_invalid_output = reask(2).then(fail),
//!     on_refusal = escalate,
//!     on_low_confidence(below = 0.7) = reask(1).then(escalate),
//! )]
//! async fn classify(review: &str) -> TaskResult<Sentiment>;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let harness = Harness::from_env()?;
//! let outcome = classify::with(&harness, "Arrived broken, support never answered.").await?;
//! match &outcome.resolution {
//!     Resolution::Answer(s) => println!("{:?} ({}; {})", s.label, s.confidence, outcome.summary()),
//!     Resolution::Default { value, class } => println!("default {value:?} after {class}"),
//!     Resolution::Escalated(e) => println!("for a human: {e}"),
//!     // Non-exhaustive: a later release may add ways for a call to end.
//!     _ => println!("{}", outcome.summary()),
//! }
//! println!("{}", classify::CONTRACT.doc());
//! # Ok(()) }
//! ```
//!
//! See `docs/contracts.md` for the exact semantics of every action, and `docs/ARCHITECTURE.md`
//! for how a call flows from the macro to the outcome.
#![deny(missing_docs)]

pub mod audit;
pub mod context;
pub mod contract;
pub mod digest;
pub mod engine;
pub mod error;
pub mod eval;
pub mod memory;
pub mod observe;
pub mod outcome;
pub mod output;
pub mod provider;
pub mod recovery;
pub mod registry;
pub mod review;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tools;

pub use contract::{Action, FailureClass, PolicySet, TaskContract};
pub use engine::{Harness, HarnessBuilder};
pub use error::ConfigError;
pub use observe::{CallEnd, EndStatus, Observer};
pub use outcome::{ErrorKind, Escalation, Outcome, Resolution, TaskError, TaskResult};
pub use output::{LlmOutput, ValidationError, ValidationErrors};
pub use provider::{ChatRequest, ChatResponse, Message, Provider, ProviderError, Usage};

#[cfg(feature = "macros")]
pub use harness_macros::{LlmOutput, llm_policy, llm_task, llm_tool};

/// Everything a task file needs: `use harness_core::prelude::*;`.
pub mod prelude {
    pub use crate::context::Context;
    pub use crate::contract::{FailureClass, TaskContract};
    pub use crate::engine::Harness;
    pub use crate::outcome::{ErrorKind, Escalation, Outcome, Resolution, TaskError, TaskResult};
    pub use crate::output::LlmOutput;
    pub use crate::provider::Message;
    #[cfg(feature = "macros")]
    pub use harness_macros::{LlmOutput, llm_policy, llm_task, llm_tool};
}

/// Not public API: what generated code uses. Names here may change in any release.
#[doc(hidden)]
pub mod __private;
