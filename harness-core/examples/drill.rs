//! A failure drill for a realistic task: what the harness does, and what it logs, for every way a
//! ticket-triage call can fail.
//!
//! `cargo run -p harness-core --features testing --example drill`
//!
//! The contract is written by hand as the `#[llm_task]` macro would generate it:
//!
//! ```text
//! #[llm_task(
//!     model = "gpt-4o", timeout = "20s",
//!     on_timeout = retry(2).then(default(Triage::manual())),
//!     on_rate_limited = retry(5),
//!     on_provider_error = retry(2).then(fallback("claude-haiku", provider = "anthropic")),
//!     on_invalid_output = reask(2).then(fail),
//!     on_refusal = escalate,
//!     on_low_confidence(below = 0.7) = reask(1).then(escalate),
//! )]
//! async fn triage(ticket: &str) -> TaskResult<Triage>;
//! ```

use std::time::Duration;

use harness_core::contract::{
    Action, Backoff, Chain, FailureClass, FallbackTarget, InputSpec, OutputSpec, Params,
    TaskContract,
};
use harness_core::output::{FieldPath, LlmOutput, ValidationErrors};
use harness_core::testing::drill::{self, DrillOptions};

/// How a support ticket should be handled.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
struct Triage {
    /// billing, outage, account or other.
    category: String,
    /// 1 (drop everything) to 4 (whenever).
    priority: u8,
    /// One sentence for the on-call engineer.
    summary: String,
    /// How sure the model is, from 0 to 1.
    confidence: f64,
}

impl Triage {
    fn manual() -> Triage {
        Triage {
            category: "other".into(),
            priority: 3,
            summary: "Not triaged automatically: route to the support queue.".into(),
            confidence: 0.0,
        }
    }
}

impl LlmOutput for Triage {
    const TYPE_NAME: &'static str = "Triage";
    const HAS_CONFIDENCE: bool = true;

    fn validate(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        if !["billing", "outage", "account", "other"].contains(&self.category.as_str()) {
            errors.push(
                &path.field("category"),
                "one_of",
                "must be billing, outage, account or other",
            );
        }
        if !(1..=4).contains(&self.priority) {
            errors.push(&path.field("priority"), "range", "must be 1 to 4");
        }
        if self.summary.is_empty() || self.summary.chars().count() > 280 {
            errors.push(&path.field("summary"), "length", "1 to 280 characters");
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            errors.push(&path.field("confidence"), "range", "must be 0 to 1");
        }
    }

    fn confidence(&self) -> Option<f64> {
        Some(self.confidence)
    }
}

const fn retry(times: u32) -> Action {
    Action::Retry {
        times,
        backoff: Backoff::DEFAULT,
    }
}

static TRIAGE: TaskContract = TaskContract::new(
    "triage",
    "support",
    OutputSpec {
        type_name: "Triage",
        has_confidence: true,
        schema: <Triage as LlmOutput>::output_schema,
    },
)
.with_description("Triages one support ticket.")
.with_version("example")
.with_model("gpt-4o")
.with_provider("openai")
.with_system("You triage customer support tickets for an online shop.")
.with_prompt("Ticket:\n{ticket}")
.with_inputs(&[InputSpec {
    name: "ticket",
    rust_type: "&str",
}])
.with_timeout(Duration::from_secs(20))
.with_chains(&[
    Chain {
        class: FailureClass::Timeout,
        steps: &[retry(2), Action::Default],
    },
    Chain {
        class: FailureClass::RateLimited,
        steps: &[retry(5)],
    },
    Chain {
        class: FailureClass::ProviderError,
        steps: &[
            retry(2),
            Action::Fallback(FallbackTarget {
                model: "claude-haiku",
                provider: Some("anthropic"),
            }),
        ],
    },
    Chain {
        class: FailureClass::InvalidOutput,
        steps: &[Action::Reask { times: 2 }, Action::Fail],
    },
    Chain {
        class: FailureClass::Refusal,
        steps: &[Action::Escalate],
    },
    Chain {
        class: FailureClass::LowConfidence,
        steps: &[Action::Reask { times: 1 }, Action::Escalate],
    },
])
.with_low_confidence_below(0.7)
.with_params(Params {
    temperature: Some(0.0),
    max_tokens: Some(300),
    seed: None,
});

fn defaults(class: FailureClass) -> Option<Triage> {
    (class == FailureClass::Timeout).then(Triage::manual)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let inputs = vec![(
        "ticket",
        "I was charged twice for my order #4411 and nobody answers my emails.".to_owned(),
    )];
    let options = DrillOptions::new().answer(
        r#"{"category":"billing","priority":2,"summary":"Customer double-charged for order #4411; no reply to emails.","confidence":0.93}"#,
    );
    let report = drill::run_with_defaults::<Triage>(&TRIAGE, inputs, options, &defaults).await;
    println!("{report}");
    if let Some(s) = report.scenario("stall") {
        println!("logs of the `stall` scenario:");
        for line in &s.logs {
            println!("  {line}");
        }
    }
}
