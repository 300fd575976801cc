//! Shared by the audit, drift and kill tests: a hand-built contract (no macros), an output type
//! with hand-written impls, and an instant in-process provider.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use harness_core::contract::{
    Action, Backoff, Chain, FailureClass, InputSpec, OutputSpec, Params, TaskContract,
};
use harness_core::output::{FieldPath, LlmOutput, ValidationErrors};
use harness_core::provider::{BoxFuture, ProviderInfo};
use harness_core::{
    ChatRequest, ChatResponse, Harness, Provider, ProviderError, TaskResult, Usage,
};

/// A support ticket's triage.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ticket {
    /// billing, bug or other.
    pub category: String,
    /// 1 (urgent) to 3.
    pub priority: u8,
    /// How sure the model is, from 0 to 1.
    pub confidence: f64,
}

impl LlmOutput for Ticket {
    const TYPE_NAME: &'static str = "Ticket";
    const HAS_CONFIDENCE: bool = true;

    fn validate(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        if !(1..=3).contains(&self.priority) {
            errors.push(
                &path.field("priority"),
                "range",
                format!("must be between 1 and 3, got {}", self.priority),
            );
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            errors.push(
                &path.field("confidence"),
                "range",
                "must be between 0 and 1",
            );
        }
    }

    fn confidence(&self) -> Option<f64> {
        Some(self.confidence)
    }
}

fn ticket_schema() -> serde_json::Value {
    Ticket::output_schema()
}

const QUICK: Backoff = Backoff {
    initial: Duration::from_millis(1),
    max: Duration::from_millis(1),
    multiplier: 1.0,
    jitter: false,
};

/// What `#[llm_task]` would generate for a `triage(text: &str) -> TaskResult<Ticket>` task.
pub static TRIAGE: TaskContract = TaskContract::new(
    "triage",
    "support",
    OutputSpec {
        type_name: "Ticket",
        has_confidence: true,
        schema: ticket_schema,
    },
)
.with_description("Triages one support ticket.")
.with_version("test-v1")
.with_model("test-model")
.with_system("You triage support tickets.")
.with_prompt("Ticket: {text}")
.with_inputs(&[InputSpec {
    name: "text",
    rust_type: "&str",
}])
.with_timeout(Duration::from_secs(5))
.with_chains(&[
    Chain {
        class: FailureClass::Timeout,
        steps: &[Action::Fail],
    },
    Chain {
        class: FailureClass::RateLimited,
        steps: &[Action::Fail],
    },
    Chain {
        class: FailureClass::ProviderError,
        steps: &[
            Action::Retry {
                times: 1,
                backoff: QUICK,
            },
            Action::Fail,
        ],
    },
    Chain {
        class: FailureClass::InvalidOutput,
        steps: &[Action::Reask { times: 1 }, Action::Fail],
    },
    Chain {
        class: FailureClass::Refusal,
        steps: &[Action::Escalate],
    },
    Chain {
        class: FailureClass::LowConfidence,
        steps: &[Action::Escalate],
    },
])
.with_low_confidence_below(0.5)
.with_params(Params {
    temperature: Some(0.0),
    max_tokens: Some(200),
    seed: Some(7),
});

/// Runs the triage task.
pub async fn triage(harness: &Harness, text: &str) -> TaskResult<Ticket> {
    harness
        .run::<Ticket>(&TRIAGE, vec![("text", text.to_owned())], None, None)
        .await
}

type Answer = dyn Fn(&ChatRequest, u64) -> Result<String, ProviderError> + Send + Sync;

/// Answers instantly with `answer(request, n)` (n counts requests from 0).
pub struct FnProvider {
    answer: Box<Answer>,
    seen: AtomicU64,
}

impl FnProvider {
    pub fn new(
        answer: impl Fn(&ChatRequest, u64) -> Result<String, ProviderError> + Send + Sync + 'static,
    ) -> Self {
        FnProvider {
            answer: Box::new(answer),
            seen: AtomicU64::new(0),
        }
    }
}

impl Provider for FnProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "fn".into(),
            address: None,
            port: None,
        }
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        let result = (self.answer)(request, n).map(|content| ChatResponse {
            content,
            refusal: None,
            finish_reason: None,
            model: Some(format!("{}-2026-01-01", request.model)),
            id: Some(format!("resp-{n}")),
            usage: Usage {
                input_tokens: 40,
                output_tokens: 12,
            },
        });
        Box::pin(async move { result })
    }
}

/// The text of the last user message (the rendered prompt, or a reask).
pub fn last_user(request: &ChatRequest) -> &str {
    request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == harness_core::provider::Role::User)
        .map_or("", |m| m.content.as_str())
}

/// A well-formed answer.
pub fn good(category: &str, priority: u8, confidence: f64) -> String {
    format!(r#"{{"category":"{category}","priority":{priority},"confidence":{confidence}}}"#)
}

/// A fresh path under the system temp dir, removed first if it exists.
pub fn temp_path(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "harness-audit-tests-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}
