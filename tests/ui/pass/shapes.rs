//! Shapes that must compile: a body-built context, defaults, policies (partly overridden), nested
#![deny(warnings, unused_qualifications, unused_results, missing_debug_implementations)]
//! and data-carrying outputs, serde attributes, every rule, inputs rendered as JSON, `mut` arguments.
use harness_core::prelude::*;
use harness_core::engine::Context;

#[derive(Debug, LlmOutput)]
#[serde(rename_all = "camelCase")]
enum Priority {
    Low,
    High,
    /// Needs someone now.
    Urgent,
}

/// One action item.
#[derive(Debug, LlmOutput)]
struct Item {
    #[llm(length(min = 1, max = 80))]
    title: String,
    priority: Priority,
    #[llm(pattern = r"^[A-Z]{2,5}-\d+$")]
    ticket: Option<String>,
    #[llm(one_of("alice", "bob"))]
    owner: String,
    #[llm(one_of = ["red", "green"], length(max = 3))]
    labels: Vec<String>,
}

fn not_blank(s: &String) -> Result<(), String> {
    if s.trim().is_empty() { Err("must not be blank".into()) } else { Ok(()) }
}

/// Action items from a meeting.
#[derive(Debug, LlmOutput)]
struct Minutes {
    #[llm(length(max = 10))]
    items: Vec<Item>,
    #[llm(custom = not_blank)]
    summary: String,
    #[serde(default)]
    #[llm(range(min = 0, max = 100))]
    attendees: u32,
    follow_up: Option<Box<Item>>,
    #[llm(confidence)]
    confidence: f32,
}

#[derive(Debug, LlmOutput)]
enum Verdict {
    Accept,
    Reject { reason: String },
    Partial(u8),
}

#[llm_policy(
    on_timeout = retry(2),
    on_rate_limited = retry(5, initial = "1s"),
    on_provider_error = retry(1).then(fallback("claude-3-5-haiku", provider = "anthropic")),
    on_invalid_output = reask(2),
    on_refusal = fail,
    on_low_confidence(below = 0.5) = reask(1).then(escalate),
)]
#[derive(Debug)]
pub struct Standard;

/// Minutes from a transcript, with the context built in code.
#[llm_task(
    system = "You take minutes.",
    timeout = "45s",
    policy = Standard,
    on_refusal = escalate,
)]
pub async fn minutes(transcript: String, mut attendees: Vec<String>) -> TaskResult<Minutes> {
    attendees.sort();
    Context::new()
        .user(format!("Attendees: {}", attendees.join(", ")))
        .user(transcript)
}

impl Verdict {
    fn undecided() -> Verdict {
        Verdict::Partial(0)
    }
}

/// A verdict with defaults.
#[llm_task(
    prompt = "Decide on {{this}}: {proposal} (tags: {tags})",
    on_timeout = retry(1).then(default(Verdict::undecided())),
    on_rate_limited = default(Verdict::Accept),
    on_provider_error = fail,
    on_invalid_output = reask(1).then(default(Verdict::Reject { reason: "unreadable".into() })),
    on_refusal = escalate,
)]
pub(crate) async fn decide(proposal: &str, tags: &[&str]) -> TaskResult<Verdict>;

/// A task without arguments, whose body returns a `String`.
#[llm_task(
    crate = harness_core,
    timeout = "500ms",
    on_timeout = fail,
    on_rate_limited = fail,
    on_provider_error = fail,
    on_invalid_output = fail,
    on_refusal = fail,
)]
async fn pick() -> TaskResult<Priority> {
    String::from("Pick a priority.")
}

fn main() {
    assert_eq!(minutes::CONTRACT.policy.map(|p| p.name), Some("Standard"));
    assert_eq!(minutes::CONTRACT.confidence_threshold(), Some(0.5));
    assert!(minutes::CONTRACT.prompt.is_none());
    assert_eq!(decide::CONTRACT.inputs.len(), 2);
    assert_eq!(decide::CONTRACT.inputs[1].rust_type, "&[&str]");
    assert!(!decide::CONTRACT.output.has_confidence);
    assert_eq!(pick::CONTRACT.timeout.as_millis(), 500);
    let _ = minutes(String::new(), Vec::new());
    let _ = decide("x", &[]);
    let _ = pick();
    // Every task and policy above is registered, the renamed-crate and generic ones included.
    let registry = harness_core::registry::program().expect("a registry");
    let tasks: Vec<&str> = registry.tasks().iter().map(|t| t.name).collect();
    assert_eq!(tasks, ["compare", "decide", "echo", "minutes", "page", "pick"]);
    let policies: Vec<&str> = registry.policies().iter().map(|p| p.policy.name).collect();
    assert_eq!(policies, ["Standard", "Strict"]);
    assert!(registry.task("echo").is_some_and(|t| t.module.ends_with("::renamed")));
}

mod renamed {
    use harness_core as hc;

    /// Output and task through a renamed crate path.
    #[derive(Debug, hc::LlmOutput)]
    #[llm(crate = hc)]
    pub struct Echo {
        pub text: String,
    }

    #[hc::llm_policy(
        crate = hc,
        on_timeout = fail,
        on_rate_limited = fail,
        on_provider_error = fail,
        on_invalid_output = fail,
        on_refusal = fail,
    )]
    #[derive(Debug)]
    pub struct Strict;

    #[hc::llm_task(crate = hc, prompt = "Echo {text}", policy = Strict)]
    pub async fn echo(text: &str) -> hc::TaskResult<Echo>;
}

/// A generic output type.
#[derive(Debug, LlmOutput)]
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

#[llm_task(prompt = "List {n} items", policy = Standard)]
async fn page(n: usize) -> TaskResult<Page<Priority>>;

#[allow(dead_code)]
fn more() {
    let _ = renamed::echo("x");
    let _ = page(3);
    assert_eq!(<Page<Priority> as LlmOutput>::TYPE_NAME, "Page");
}

/// Explicit lifetimes are kept on the function and on `with`.
#[llm_task(prompt = "Compare {a} and {b}", policy = Standard)]
async fn compare<'a>(a: &'a str, b: &'a str) -> TaskResult<Priority>;

#[allow(dead_code)]
async fn lifetimes(h: &Harness) {
    let owned = String::from("x");
    let _ = compare(&owned, "y").await;
    let _ = compare::with(h, &owned, "y").await;
}
