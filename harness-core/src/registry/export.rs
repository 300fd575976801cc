//! The published form of a program's contracts: a versioned JSON document with stable field
//! names, for tools and CI (`Export`), read back for diffs with [`Export::from_json`].
//!
//! The field names below are the format: a new field may be added in a later `format_version`
//! with the same number only when old readers can ignore it; a renamed or removed field bumps it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::{Action, Chain, FailureClass, TaskContract};

use super::Registry;

/// The `format` of every export.
pub const EXPORT_FORMAT: &str = "harness.contracts";
/// The `format_version` this release writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// Every contract of a program, as published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// [`EXPORT_VERSION`] when written by this release.
    pub format_version: u32,
    /// The program's name, as given to [`Registry::export`].
    pub program: String,
    /// The harness-core release that wrote it.
    pub harness_version: String,
    /// The tasks, by name.
    pub tasks: Vec<TaskDoc>,
    /// The policies, by name.
    pub policies: Vec<PolicyDoc>,
}

/// One task's contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskDoc {
    /// The task's name.
    pub name: String,
    /// `module::path` of the task.
    pub module: String,
    /// The first paragraph of its doc comment.
    pub description: String,
    /// The contract's version hash (contract, prompt and signature).
    pub version: String,
    /// The model asked for; `null` uses the harness's default model.
    pub model: Option<String>,
    /// The provider asked for by name; `null` routes by model.
    pub provider: Option<String>,
    /// The messages: system and prompt template, or a body that builds them.
    pub prompt: PromptDoc,
    /// The inputs (the function's arguments).
    pub inputs: Vec<InputDoc>,
    /// The output type and its JSON schema.
    pub output: OutputDoc,
    /// One entry per failure class that can occur for this task, in the order of
    /// [`FailureClass::ALL`].
    pub failures: Vec<FailureDoc>,
    /// Time and attempts.
    pub limits: LimitsDoc,
    /// Request parameters.
    pub params: ParamsDoc,
    /// The named policy filling classes the task does not declare.
    pub policy: Option<String>,
    /// Why the contract says nothing about a context plan, for tasks that name none.
    pub context_plan: NotPresent,
    /// The context plan the task names (`plan = PATH`), as `ContextPlan` serialises it: name,
    /// version, sections, reply reserve, window (absent for tasks that name none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    /// The declared context sources, in declaration order (absent for tasks without any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceDoc>,
    /// Tools and their scopes: not part of contracts yet.
    pub tools: NotPresent,
}

/// A section that this release of harness has no data for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotPresent {
    /// Always `false` in this format version.
    pub present: bool,
    /// Why, in words.
    pub note: String,
}

impl NotPresent {
    fn new(note: &str) -> NotPresent {
        NotPresent {
            present: false,
            note: note.to_owned(),
        }
    }
}

/// How a task's messages are made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptDoc {
    /// `template` (a prompt with `{input}` placeholders) or `body` (the function body assembles
    /// the context in code).
    pub kind: String,
    /// The system message, when the attribute declares one.
    pub system: Option<String>,
    /// The template, for `template` prompts.
    pub template: Option<String>,
    /// The version of the prompt: the contract's version, which changes with the template, the
    /// system message and the signature (a body's code is hashed as written).
    pub version: String,
}

/// One input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDoc {
    /// The argument's name.
    pub name: String,
    /// Its Rust type, as written.
    pub rust_type: String,
}

/// The output type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputDoc {
    /// The type's name.
    pub type_name: String,
    /// Whether it has a `#[llm(confidence)]` field.
    pub has_confidence: bool,
    /// Its JSON schema (draft 2020-12).
    pub schema: Value,
}

/// What happens on one failure class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureDoc {
    /// The class (`timeout`, `rate_limited`, ...).
    pub class: FailureClass,
    /// The chain as written in the attribute (`retry(2).then(fallback("m"))`); `fail` when nothing
    /// is declared.
    pub chain: String,
    /// Where the chain comes from: `task`, `policy:<Name>`, or `none` (an implicit `fail`).
    pub declared_by: String,
    /// The steps.
    pub steps: Vec<StepDoc>,
    /// The low-confidence threshold, for `low_confidence`.
    pub below: Option<f64>,
}

/// One step of a chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepDoc {
    /// `retry`, `reask`, `fallback`, `escalate`, `default` or `fail`.
    pub action: String,
    /// How many attempts, for `retry` and `reask`.
    pub times: Option<u32>,
    /// The first backoff delay in milliseconds, for `retry`.
    pub backoff_initial_ms: Option<u64>,
    /// The longest backoff delay in milliseconds, for `retry`.
    pub backoff_max_ms: Option<u64>,
    /// The backoff's growth factor, for `retry`.
    pub backoff_multiplier: Option<f64>,
    /// Whether the backoff has full jitter, for `retry`.
    pub backoff_jitter: Option<bool>,
    /// The model, for `fallback`.
    pub model: Option<String>,
    /// The provider, for `fallback` (`null`: routed by model).
    pub provider: Option<String>,
    /// The other registered source, for a source's `fallback` (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One declared context source of a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceDoc {
    /// The name it is registered under.
    pub name: String,
    /// The most tokens its documents may take.
    pub budget: u32,
    /// The most documents kept.
    pub limit: u32,
    /// One fetch's timeout, in milliseconds.
    pub timeout_ms: u64,
    /// The section its documents are sent under.
    pub section: String,
    /// Its `context_unavailable` steps in force (its own, else the task's or policy's).
    pub on_unavailable: Vec<StepDoc>,
    /// Whose steps those are: `source`, `task`, `policy:<name>` or `none`.
    pub declared_by: String,
}

/// Time and attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsDoc {
    /// Per-attempt timeout, in milliseconds.
    pub timeout_ms: u64,
    /// The declared deadline of a call, in milliseconds (`null`: derived).
    pub deadline_ms: Option<u64>,
    /// The deadline in force: the declared one, or the one derived from the timeout, the
    /// attempts and the backoffs.
    pub effective_deadline_ms: u64,
    /// The most provider attempts one call can make.
    pub max_attempts: u32,
}

/// Request parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamsDoc {
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Maximum output tokens.
    pub max_tokens: Option<u32>,
    /// Sampling seed.
    pub seed: Option<u64>,
}

/// One policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyDoc {
    /// The policy's name.
    pub name: String,
    /// `module::path` of its declaration.
    pub module: String,
    /// The chains it declares, in the order of [`FailureClass::ALL`].
    pub failures: Vec<FailureDoc>,
    /// The tasks that use it, by name.
    pub used_by: Vec<String>,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn step(a: &Action) -> StepDoc {
    let mut s = StepDoc {
        action: a.kind().as_str().to_owned(),
        times: None,
        backoff_initial_ms: None,
        backoff_max_ms: None,
        backoff_multiplier: None,
        backoff_jitter: None,
        model: None,
        provider: None,
        source: None,
    };
    match a {
        Action::Retry { times, backoff } => {
            s.times = Some(*times);
            s.backoff_initial_ms = Some(ms(backoff.initial));
            s.backoff_max_ms = Some(ms(backoff.max));
            s.backoff_multiplier = Some(backoff.multiplier);
            s.backoff_jitter = Some(backoff.jitter);
        }
        Action::Reask { times } => s.times = Some(*times),
        Action::Fallback(t) => {
            s.model = Some(t.model.to_owned());
            s.provider = t.provider.map(str::to_owned);
        }
        Action::FallbackSource { source } => s.source = Some((*source).to_owned()),
        _ => {}
    }
    s
}

fn failure(
    class: FailureClass,
    chain: Option<&Chain>,
    by: String,
    below: Option<f64>,
) -> FailureDoc {
    FailureDoc {
        class,
        chain: chain.map_or_else(|| "fail".to_owned(), |c| c.to_string()),
        declared_by: by,
        steps: chain
            .map(|c| c.steps.iter().map(step).collect())
            .unwrap_or_default(),
        below: if class == FailureClass::LowConfidence {
            below
        } else {
            None
        },
    }
}

impl TaskDoc {
    /// The published form of one contract.
    pub fn of(c: &TaskContract) -> TaskDoc {
        let failures = c
            .applicable_classes()
            .map(|class| {
                let own = c.chains.iter().find(|ch| ch.class == class);
                let by = match (own, c.policy.and_then(|p| p.chain(class))) {
                    (Some(_), _) => "task".to_owned(),
                    (None, Some(_)) => format!("policy:{}", c.policy.map_or("", |p| p.name)),
                    (None, None) => "none".to_owned(),
                };
                failure(class, c.chain(class), by, c.confidence_threshold())
            })
            .collect();
        TaskDoc {
            name: c.name.to_owned(),
            module: c.module.to_owned(),
            description: c.description.to_owned(),
            version: c.version.to_owned(),
            model: c.model.map(str::to_owned),
            provider: c.provider.map(str::to_owned),
            prompt: PromptDoc {
                kind: if c.prompt.is_some() {
                    "template"
                } else {
                    "body"
                }
                .to_owned(),
                system: c.system.map(str::to_owned),
                template: c.prompt.map(str::to_owned),
                version: c.version.to_owned(),
            },
            inputs: c
                .inputs
                .iter()
                .map(|i| InputDoc {
                    name: i.name.to_owned(),
                    rust_type: i.rust_type.to_owned(),
                })
                .collect(),
            output: OutputDoc {
                type_name: c.output.type_name.to_owned(),
                has_confidence: c.output.has_confidence,
                schema: c.output_schema(),
            },
            failures,
            limits: LimitsDoc {
                timeout_ms: ms(c.timeout),
                deadline_ms: c.deadline.map(ms),
                effective_deadline_ms: ms(c.effective_deadline()),
                max_attempts: c.max_attempts(),
            },
            params: ParamsDoc {
                temperature: c.params.temperature,
                max_tokens: c.params.max_tokens,
                seed: c.params.seed,
            },
            policy: c.policy.map(|p| p.name.to_owned()),
            context_plan: NotPresent::new(
                "a context plan (`context::ContextPlan`) is used in a task's body, not declared in its contract: the prompt section is all the contract says about its context; each call's plan report is in its audit record (`context`)",
            ),
            plan: c
                .plan
                .map(|p| serde_json::to_value(p).unwrap_or(Value::Null)),
            sources: c
                .sources
                .iter()
                .map(|s| {
                    let class = FailureClass::ContextUnavailable;
                    let declared_by = match (
                        s.on_unavailable,
                        c.chains.iter().any(|ch| ch.class == class),
                        c.policy.and_then(|p| p.chain(class)),
                    ) {
                        (Some(_), _, _) => "source".to_owned(),
                        (None, true, _) => "task".to_owned(),
                        (None, false, Some(_)) => {
                            format!("policy:{}", c.policy.map_or("", |p| p.name))
                        }
                        (None, false, None) => "none".to_owned(),
                    };
                    SourceDoc {
                        name: s.name.to_owned(),
                        budget: s.budget,
                        limit: s.limit,
                        timeout_ms: ms(s.timeout),
                        section: s.section.to_owned(),
                        on_unavailable: c.source_steps(s).iter().map(step).collect(),
                        declared_by,
                    }
                })
                .collect(),
            tools: NotPresent::new(
                "tools are not part of harness yet: a task has no tools or scopes",
            ),
        }
    }
}

/// Why an export could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Not JSON of this format's shape.
    #[error("not a contracts export: {0}")]
    Shape(#[from] serde_json::Error),
    /// Another format, or a format version this release does not read.
    #[error(
        "a contracts export of format `{format}` version {version}; this release reads `{EXPORT_FORMAT}` version {EXPORT_VERSION}"
    )]
    Version {
        /// The `format` found.
        format: String,
        /// The `format_version` found.
        version: u32,
    },
}

impl Export {
    /// The export of `registry`.
    pub fn of(registry: &Registry, program: &str) -> Export {
        let policies = registry
            .policies()
            .iter()
            .map(|p| PolicyDoc {
                name: p.policy.name.to_owned(),
                module: p.module.to_owned(),
                failures: FailureClass::ALL
                    .into_iter()
                    .filter_map(|class| {
                        let chain = p.policy.chain(class)?;
                        Some(failure(
                            class,
                            Some(chain),
                            "policy".to_owned(),
                            p.policy.low_confidence_below,
                        ))
                    })
                    .collect(),
                used_by: registry
                    .tasks()
                    .iter()
                    .filter(|t| t.policy.is_some_and(|tp| std::ptr::eq(tp, p.policy)))
                    .map(|t| t.name.to_owned())
                    .collect(),
            })
            .collect();
        Export {
            format: EXPORT_FORMAT.to_owned(),
            format_version: EXPORT_VERSION,
            program: program.to_owned(),
            harness_version: env!("CARGO_PKG_VERSION").to_owned(),
            tasks: registry.tasks().iter().map(|t| TaskDoc::of(t)).collect(),
            policies,
        }
    }

    /// The export as pretty JSON (what a program writes to `docs/contracts.json`).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Reads an export written by [`Export::to_json_pretty`]; refuses another format or version.
    pub fn from_json(text: &str) -> Result<Export, ExportError> {
        let head: Value = serde_json::from_str(text)?;
        let format = head.get("format").and_then(Value::as_str).unwrap_or("");
        let version = head
            .get("format_version")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if format != EXPORT_FORMAT || version != u64::from(EXPORT_VERSION) {
            return Err(ExportError::Version {
                format: format.to_owned(),
                version: u32::try_from(version).unwrap_or(u32::MAX),
            });
        }
        Ok(serde_json::from_value(head)?)
    }

    /// The task called `name`.
    pub fn task(&self, name: &str) -> Option<&TaskDoc> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// The page of Markdown: one section per task, then the policies.
    pub fn to_markdown(&self) -> String {
        super::markdown::page(self)
    }
}
