//! Declared context sources: each with its own contract, a task-level `on_context_unavailable`
//! covering the others, a policy covering them, defaults filled in, and the contract as data.
#![deny(warnings, unused_qualifications, unused_results, missing_debug_implementations)]
use harness_core::prelude::*;

#[derive(Debug, LlmOutput)]
struct Answer {
    text: String,
}

impl Answer {
    fn sorry() -> Answer {
        Answer { text: "Sorry, the knowledge base is down.".into() }
    }
}

#[llm_task(
    prompt = "Answer: {question}",
    source(kb, budget = 800, limit = 5, timeout = "2s", section = "docs",
           on_unavailable = retry(1).then(fallback("kb_mirror")).then(proceed)),
    source(profile, budget = 100),
    on_context_unavailable = default(Answer::sorry()),
    on_timeout = retry(2),
    on_rate_limited = retry(5),
    on_provider_error = retry(2).then(fail),
    on_invalid_output = reask(2).then(fail),
    on_refusal = escalate,
)]
async fn answer(question: &str) -> TaskResult<Answer>;

#[llm_policy(
    on_timeout = retry(2),
    on_rate_limited = retry(5),
    on_provider_error = retry(2).then(fail),
    on_invalid_output = reask(2).then(fail),
    on_refusal = escalate,
    on_context_unavailable = retry(1).then(escalate),
)]
struct Standard;

#[llm_task(prompt = "Look up: {question}", source(kb, budget = 400), policy = Standard)]
async fn lookup(question: &str) -> TaskResult<Answer>;

const _: () = {
    let c = answer::CONTRACT;
    assert!(c.sources.len() == 2);
    assert!(c.sources[0].budget == 800 && c.sources[0].limit == 5);
    assert!(c.sources[1].limit == 5 && c.sources[1].timeout.as_millis() == 2000);
    assert!(lookup::CONTRACT.sources.len() == 1);
};

fn main() {
    let c = &answer::CONTRACT;
    assert_eq!(c.sources[0].section, "docs");
    assert_eq!(c.sources[1].section, "profile");
    let own = c.source_steps(&c.sources[0]);
    assert_eq!(own.len(), 3);
    assert_eq!(own[2].kind(), harness_core::contract::ActionKind::Proceed);
    let task_level = c.source_steps(&c.sources[1]);
    assert_eq!(task_level[0].kind(), harness_core::contract::ActionKind::Default);
    assert_eq!(lookup::CONTRACT.source_steps(&lookup::CONTRACT.sources[0]).len(), 2);
    let doc = c.doc().to_string();
    assert!(doc.contains("| `kb` | 800 | 5 | 2s | `docs` |"), "{doc}");
    let _ = (answer::with, lookup::with);
}
