//! Runs a few harnessed tasks against a real model and prints each typed result and how it was
//! obtained.
//!
//! By default it talks to the local SmolLM2-135M that `scripts/local-model.sh` starts on
//! 127.0.0.1:8089. Set `OPENAI_BASE_URL` (and `OPENAI_API_KEY`, `HARNESS_MODEL`) to use any
//! OpenAI-compatible endpoint instead.
//!
//! ```sh
//! scripts/local-model.sh && cargo run --example quickstart
//! ```

use std::process::ExitCode;
use std::time::Instant;

use harness_core::prelude::*;

/// Overall sentiment.
#[derive(Debug, LlmOutput)]
enum Label {
    Positive,
    Neutral,
    Negative,
}

/// The sentiment of one customer review.
#[derive(Debug, LlmOutput)]
struct Sentiment {
    /// The overall sentiment of the review.
    label: Label,
    /// How sure the model is, from 0 to 1.
    #[llm(confidence, range(min = 0.0, max = 1.0))]
    confidence: f64,
    /// One short sentence explaining the label.
    #[llm(length(max = 280))]
    rationale: String,
}

/// Classifies the sentiment of one customer review.
#[llm_task(
    model = "smollm2-135m",
    system = "You classify customer reviews. Reply with JSON only.",
    prompt = "Review: {review}",
    timeout = "90s",
    temperature = 0.0,
    max_tokens = 120,
    on_timeout = retry(2),
    on_rate_limited = retry(5),
    on_provider_error = retry(2).then(fallback("gpt-4o-mini")),
    on_invalid_output = reask(2).then(fail),
    on_refusal = escalate,
    on_low_confidence(below = 0.7) = reask(1).then(escalate),
)]
async fn classify(review: &str) -> TaskResult<Sentiment>;

/// Which team handles a ticket.
#[derive(Debug, LlmOutput)]
enum Category {
    Billing,
    Shipping,
    Product,
    Other,
}

/// A support email, triaged.
#[derive(Debug, LlmOutput)]
struct Triage {
    /// The team that should handle it.
    category: Category,
    /// 1 (can wait) to 5 (urgent).
    #[llm(range(min = 1, max = 5))]
    urgency: u8,
    /// The customer's problem in a few words.
    #[llm(length(min = 3, max = 120))]
    summary: String,
}

/// The contracts our support tasks share.
#[llm_policy(
    on_timeout = retry(1),
    on_rate_limited = retry(3),
    on_provider_error = retry(2).then(escalate),
    on_refusal = escalate,
)]
struct Support;

/// Routes a support email to a team. The context is assembled in code.
#[llm_task(
    policy = Support,
    model = "smollm2-135m",
    timeout = "90s",
    temperature = 0.0,
    max_tokens = 120,
    on_invalid_output = reask(2).then(default(Triage {
        category: Category::Other,
        urgency: 3,
        summary: "needs a human to read it".into(),
    })),
)]
async fn triage(email: &str) -> TaskResult<Triage> {
    Context::new()
        .system("You route customer emails to a team: Billing, Shipping, Product or Other. Reply with JSON only.")
        .user(format!("Email:\n{email}"))
}

fn report<T: std::fmt::Debug>(
    what: &str,
    result: &TaskResult<T>,
    took: std::time::Duration,
) -> bool {
    match result {
        Ok(outcome) => {
            let r = &outcome.report;
            println!("{what}");
            match &outcome.resolution {
                Resolution::Answer(v) => println!("  → {v:?}"),
                Resolution::Default { value, class } => {
                    println!("  → default {value:?} (after {class})")
                }
                Resolution::Escalated(e) => println!("  → for a human: {e}"),
            }
            println!(
                "  how: {}; {} attempt(s), {} tokens in / {} out, {:.1}s",
                outcome.how(),
                r.attempts.len(),
                r.usage.input_tokens,
                r.usage.output_tokens,
                took.as_secs_f64()
            );
            outcome.is_answer()
        }
        Err(e) => {
            println!(
                "{what}\n  → error {:?}: {}",
                e.kind(),
                e.message().replace('\n', "\n      ")
            );
            println!(
                "  {} attempt(s), {} tokens, {:.1}s",
                e.attempts().len(),
                e.usage().total(),
                took.as_secs_f64()
            );
            false
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let harness = match Harness::from_env() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", classify::CONTRACT.doc());

    let reviews = [
        "Arrived broken and support never answered my emails. Never again.",
        "Great quality, fast delivery, would buy again!",
        "It's fine. Does what it says.",
    ];
    let mut answers = 0;
    for review in reviews {
        let t = Instant::now();
        let result = classify::with(&harness, review).await;
        answers += report(&format!("classify({review:?})"), &result, t.elapsed()) as usize;
    }
    let emails = [
        "I was charged twice for order #1234 this month, please refund one of the payments.",
        "My parcel has been stuck in transit for two weeks. Where is it?",
    ];
    for email in emails {
        let t = Instant::now();
        let result = triage::with(&harness, email).await;
        answers += report(&format!("triage({email:?})"), &result, t.elapsed()) as usize;
    }
    if answers == 0 {
        eprintln!(
            "no task got a model answer: is the model server running? (scripts/local-model.sh)"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
