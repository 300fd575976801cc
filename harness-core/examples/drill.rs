//! A failure drill for a realistic task: what the harness does, and what it logs, for every way a
//! ticket-triage call can fail.
//!
//! `cargo run -p harness-core --features testing --example drill`
//!
//! The output type is the fixtures' `Triage`; the contract is built by hand as the `#[llm_task]`
//! macro would generate it:
//!
//! ```text
//! #[llm_task(
//!     model = "gpt-4o", timeout = "20s",
//!     on_timeout = retry(2).then(default(manual())),
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
    Action, Backoff, FailureClass, FallbackTarget, InputSpec, TaskContract,
};
use harness_core::testing::drill::{self, DrillOptions};
use harness_core::testing::fixtures::{ContractBuilder, Triage, chain, output};

/// What a ticket gets when triage times out.
fn manual() -> Triage {
    Triage {
        category: "other".into(),
        priority: 3,
        summary: "Not triaged automatically: route to the support queue.".into(),
        confidence: 0.0,
    }
}

const fn retry(times: u32) -> Action {
    harness_core::testing::fixtures::retry(times, Backoff::DEFAULT)
}

static TRIAGE: TaskContract = ContractBuilder::new("triage", output::<Triage>())
    .module("support")
    .description("Triages one support ticket.")
    .version("example")
    .model(Some("gpt-4o"))
    .provider("openai")
    .system("You triage customer support tickets for an online shop.")
    .prompt("Ticket:\n{ticket}")
    .inputs(&[InputSpec {
        name: "ticket",
        rust_type: "&str",
    }])
    .timeout(Duration::from_secs(20))
    .chains(&[
        chain(FailureClass::Timeout, &[retry(2), Action::Default]),
        chain(FailureClass::RateLimited, &[retry(5)]),
        chain(
            FailureClass::ProviderError,
            &[
                retry(2),
                Action::Fallback(FallbackTarget {
                    model: "claude-haiku",
                    provider: Some("anthropic"),
                }),
            ],
        ),
        chain(
            FailureClass::InvalidOutput,
            &[Action::Reask { times: 2 }, Action::Fail],
        ),
        chain(FailureClass::Refusal, &[Action::Escalate]),
        chain(
            FailureClass::LowConfidence,
            &[Action::Reask { times: 1 }, Action::Escalate],
        ),
    ])
    .low_confidence_below(0.7)
    .params(Some(0.0), Some(300), None)
    .build();

fn defaults(class: FailureClass) -> Option<Triage> {
    (class == FailureClass::Timeout).then(manual)
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
