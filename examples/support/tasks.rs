//! The tasks the quickstart and the drill share: a sentiment classifier with a confidence field,
//! and a support-email triage that assembles its context in code and uses a named policy.

use harness_core::prelude::*;

/// Overall sentiment.
#[derive(Debug, LlmOutput)]
pub enum Label {
    Positive,
    Neutral,
    Negative,
}

/// The sentiment of one customer review.
#[derive(Debug, LlmOutput)]
pub struct Sentiment {
    /// The overall sentiment of the review.
    pub label: Label,
    /// How sure the model is, from 0 to 1.
    #[llm(confidence, range(min = 0.0, max = 1.0))]
    pub confidence: f64,
    /// One short sentence explaining the label.
    #[llm(length(max = 280))]
    pub rationale: String,
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
pub async fn classify(review: &str) -> TaskResult<Sentiment>;

/// Which team handles a ticket.
#[derive(Debug, LlmOutput)]
pub enum Category {
    Billing,
    Shipping,
    Product,
    Other,
}

/// A support email, triaged.
#[derive(Debug, LlmOutput)]
pub struct Triage {
    /// The team that should handle it.
    pub category: Category,
    /// 1 (can wait) to 5 (urgent).
    #[llm(range(min = 1, max = 5))]
    pub urgency: u8,
    /// The customer's problem in a few words.
    #[llm(length(min = 3, max = 120))]
    pub summary: String,
}

/// The contracts our support tasks share.
#[llm_policy(
    on_timeout = retry(1),
    on_rate_limited = retry(3),
    on_provider_error = retry(2).then(escalate),
    on_refusal = escalate,
)]
pub struct Support;

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
pub async fn triage(email: &str) -> TaskResult<Triage> {
    Context::new()
        .system("You route customer emails to a team: Billing, Shipping, Product or Other. Reply with JSON only.")
        .user(format!("Email:\n{email}"))
}
