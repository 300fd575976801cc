//! The task under test: its output type, five contracts, and the servers' good answers.

use super::*;

pub(crate) use harness_core::testing::fixtures::{ContractBuilder, Triage, chain, output};

/// The rules again, written separately from `validate`, for re-checking returned answers.
pub(crate) fn acceptable(t: &Triage) -> bool {
    matches!(
        t.category.as_str(),
        "billing" | "outage" | "account" | "other"
    ) && (1..=4).contains(&t.priority)
        && (1..=280).contains(&t.summary.chars().count())
        && (THRESHOLD..=1.0).contains(&t.confidence)
}

pub(crate) fn default_triage() -> Triage {
    Triage {
        category: "other".into(),
        priority: 4,
        summary: "needs manual triage".into(),
        confidence: 0.0,
    }
}

pub(crate) fn defaults(_: FailureClass) -> Option<Triage> {
    Some(default_triage())
}

// ---------------------------------------------------------------------------------------------
// The contracts: five realistic tasks that differ in their chains.

pub(crate) const FAST: Backoff = Backoff {
    initial: Duration::from_millis(20),
    max: Duration::from_millis(80),
    multiplier: 2.0,
    jitter: false,
};

pub(crate) const fn retry(times: u32) -> Action {
    Action::Retry {
        times,
        backoff: FAST,
    }
}

pub(crate) const BACKUP: Action = Action::Fallback(FallbackTarget {
    model: "backup-model",
    provider: Some("secondary"),
});

pub(crate) const fn triage(
    name: &'static str,
    chains: &'static [Chain],
    deadline: Option<Duration>,
) -> TaskContract {
    let builder = ContractBuilder::new(name, output::<Triage>())
        .module("fault_matrix")
        .description("Triages a support ticket.")
        .version("matrix")
        .model(Some("primary-model"))
        .system("You triage customer support tickets.")
        .prompt("Ticket #{id}: {body}")
        .inputs(&[
            InputSpec {
                name: "id",
                rust_type: "u64",
            },
            InputSpec {
                name: "body",
                rust_type: "&str",
            },
        ])
        .timeout(TIMEOUT)
        .chains(chains)
        .low_confidence_below(THRESHOLD)
        .params(Some(0.0), None, None);
    match deadline {
        Some(d) => builder.deadline(d).build(),
        None => builder.build(),
    }
}

/// Falls back to a second server (on another chaos server) for timeouts, provider errors and
/// refusals.
pub(crate) static WITH_FALLBACK: TaskContract = triage(
    "triage_with_fallback",
    &[
        chain(Timeout, &[retry(1), BACKUP]),
        chain(RateLimited, &[retry(2)]),
        chain(ProviderError, &[retry(1), BACKUP]),
        chain(InvalidOutput, &[Action::Reask { times: 2 }, Action::Fail]),
        chain(Refusal, &[BACKUP, Action::Escalate]),
        chain(
            LowConfidence,
            &[Action::Reask { times: 1 }, Action::Escalate],
        ),
    ],
    None,
);

/// Degrades to a default value.
pub(crate) static WITH_DEFAULT: TaskContract = triage(
    "triage_with_default",
    &[
        chain(Timeout, &[retry(1), Action::Default]),
        chain(RateLimited, &[retry(1), Action::Default]),
        chain(ProviderError, &[retry(2), Action::Default]),
        chain(
            InvalidOutput,
            &[Action::Reask { times: 1 }, Action::Default],
        ),
        chain(Refusal, &[Action::Default]),
        chain(LowConfidence, &[Action::Default]),
    ],
    None,
);

/// Hands everything it cannot answer to a human.
pub(crate) static WITH_ESCALATION: TaskContract = triage(
    "triage_with_escalation",
    &[
        chain(Timeout, &[Action::Escalate]),
        chain(RateLimited, &[retry(2), Action::Escalate]),
        chain(ProviderError, &[retry(1), Action::Escalate]),
        chain(
            InvalidOutput,
            &[Action::Reask { times: 1 }, Action::Escalate],
        ),
        chain(Refusal, &[Action::Escalate]),
        chain(
            LowConfidence,
            &[Action::Reask { times: 1 }, Action::Escalate],
        ),
    ],
    None,
);

/// Fails with a typed error at once for most classes (so that every error kind occurs).
pub(crate) static FAILING: TaskContract = triage(
    "triage_failing",
    &[
        chain(Timeout, &[Action::Fail]),
        chain(RateLimited, &[retry(1), Action::Fail]),
        chain(ProviderError, &[Action::Fail]),
        chain(InvalidOutput, &[Action::Reask { times: 1 }, Action::Fail]),
        chain(Refusal, &[Action::Fail]),
        chain(LowConfidence, &[Action::Fail]),
    ],
    None,
);

/// Generous chains under a tight explicit deadline: exercises deadline-skipped steps.
pub(crate) static TIGHT_DEADLINE: TaskContract = triage(
    "triage_tight_deadline",
    &[
        chain(Timeout, &[retry(3), Action::Default]),
        chain(RateLimited, &[retry(3), Action::Fail]),
        chain(ProviderError, &[retry(3), Action::Escalate]),
        chain(InvalidOutput, &[Action::Reask { times: 2 }, Action::Fail]),
        chain(Refusal, &[Action::Reask { times: 1 }, Action::Escalate]),
        chain(
            LowConfidence,
            &[Action::Reask { times: 1 }, Action::Default],
        ),
    ],
    Some(Duration::from_millis(700)),
);

pub(crate) static CONTRACTS: [&TaskContract; 5] = [
    &WITH_FALLBACK,
    &WITH_DEFAULT,
    &WITH_ESCALATION,
    &FAILING,
    &TIGHT_DEADLINE,
];

// ---------------------------------------------------------------------------------------------
// The servers' good answers: low confidence for a seeded share of requests.

/// The ticket id a request is about (from the prompt `Ticket #<id>:`).
pub(crate) fn ticket_id(req: &RecordedRequest) -> Option<u64> {
    req.message_texts().iter().find_map(|t| {
        let rest = &t[t.find("Ticket #")? + "Ticket #".len()..];
        rest[..rest.find(':')?].parse().ok()
    })
}

/// Whether the good answer to this request has a low confidence: a pure function of the request,
/// so the checks can recompute it. Retries repeat it; reasks and fallbacks draw again.
pub(crate) fn low_confidence(req: &RecordedRequest) -> bool {
    let id = ticket_id(req).unwrap_or(u64::MAX);
    let model = req.model().unwrap_or_default().len() as u64;
    let n = req.message_texts().len() as u64;
    let seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (n << 40) ^ (model << 50);
    fastrand::Rng::with_seed(seed).f64() < LOW_CONFIDENCE_RATE
}

pub(crate) const GOOD_CONFIDENCE: f64 = 0.92;
pub(crate) const LOW_CONFIDENCE: f64 = 0.35;

pub(crate) fn good_answer(req: &RecordedRequest) -> String {
    let confidence = if low_confidence(req) {
        LOW_CONFIDENCE
    } else {
        GOOD_CONFIDENCE
    };
    json!({
        "category": "billing",
        "priority": 2,
        "summary": "Customer was charged twice this month",
        "confidence": confidence,
    })
    .to_string()
}

pub(crate) async fn chaos(seed: u64, rate: f64, faults: &[Fault]) -> ChaosServer {
    ChaosServer::builder()
        .answer(good_answer)
        .inject(rate, faults)
        .seed(seed)
        .stall_for(STALL)
        .slow_first_byte(SLOW_FIRST_BYTE)
        .start()
        .await
        .unwrap()
}
