//! The quickstart's calls against a flaky server: a chaos server on 127.0.0.1 that answers well
//! but injects HTTP 500/503s, 429s, refusals and answers that drift from the schema at a seeded
//! rate. Shared by the `contracts` example (`simulate`) and the tests that check what the
//! registry, the readiness audit and `harness audit stats` make of the resulting audit trail.

use std::path::Path;

use harness_core::Harness;
use harness_core::audit::JsonlSink;
use harness_core::provider::OpenAiCompatible;
use harness_core::testing::{ChaosServer, Fault};

use super::tasks::{classify, triage};

/// The faults injected: none of them waits for a timeout, so a run takes seconds.
pub const FAULTS: &[Fault] = &[
    Fault::Http500,
    Fault::Http503,
    Fault::RateLimited,
    Fault::MissingField,
    Fault::WrongTypes,
    Fault::SchemaDrift,
];

/// What one run did.
pub struct Run {
    /// Calls made.
    pub calls: usize,
    /// Calls that ended in a model answer.
    pub answers: usize,
    /// Requests the server received.
    pub requests: usize,
}

fn good_answer(req: &harness_core::testing::RecordedRequest) -> String {
    if req.mentions("Review:") {
        r#"{"label": "Negative", "confidence": 0.93, "rationale": "The product arrived broken."}"#
            .to_owned()
    } else {
        r#"{"category": "Billing", "urgency": 4, "summary": "charged twice for one order"}"#
            .to_owned()
    }
}

/// A chaos server on 127.0.0.1 that answers the quickstart's tasks well, except for [`FAULTS`]
/// injected at `rate` (seeded).
pub async fn server(rate: f64, seed: u64) -> Result<ChaosServer, String> {
    ChaosServer::builder()
        .answer(good_answer)
        .inject(rate, FAULTS)
        .seed(seed)
        .start()
        .await
        .map_err(|e| format!("cannot start the chaos server: {e}"))
}

/// Runs `rounds` rounds of the quickstart's calls (three reviews, two emails) against a chaos
/// server failing at `rate`, writing every call to the audit trail at `audit`.
pub async fn run(audit: &Path, rounds: usize, rate: f64, seed: u64) -> Result<Run, String> {
    let server = server(rate, seed).await?;
    let provider = OpenAiCompatible::builder(server.base_url())
        .build()
        .map_err(|e| e.to_string())?;
    let sink =
        JsonlSink::open(audit).map_err(|e| format!("cannot open {}: {e}", audit.display()))?;
    let harness = Harness::builder()
        .provider("flaky", provider)
        .default_provider("flaky")
        .seed(seed)
        .observer(sink)
        .build()
        .map_err(|e| e.to_string())?;
    let reviews = [
        "Arrived broken and support never answered my emails. Never again.",
        "Great quality, fast delivery, would buy again!",
        "It's fine. Does what it says.",
    ];
    let emails = [
        "I was charged twice for order #1234 this month, please refund one of the payments.",
        "My parcel has been stuck in transit for two weeks. Where is it?",
    ];
    let (mut calls, mut answers) = (0, 0);
    for _ in 0..rounds {
        for review in reviews {
            calls += 1;
            answers += usize::from(
                classify::with(&harness, review)
                    .await
                    .is_ok_and(|o| o.is_answer()),
            );
        }
        for email in emails {
            calls += 1;
            answers += usize::from(
                triage::with(&harness, email)
                    .await
                    .is_ok_and(|o| o.is_answer()),
            );
        }
    }
    Ok(Run {
        calls,
        answers,
        requests: server.request_count(),
    })
}
