//! Reproducing with the task's own contract and output type, from a program that links them.

use std::collections::BTreeSet;

use super::{Mode, ReproduceError, Reproduction, Run, RunAttempt, check_record, rebuild};
use crate::audit::record::{AuditRecord, attempt_kind};
use crate::audit::replay_provider::ReplayProvider;
use crate::context::Context;
use crate::contract::TaskContract;
use crate::engine::{DefaultFn, Harness, Inputs};
use crate::outcome::{CallReport, Resolution, TaskResult};
use crate::output::parse::ParseLimits;
use crate::output::{Checked, LlmOutput, SchemaValidator, check_value};
use crate::provider::{Message, Role};
use crate::recovery::RecoveryConfig;

/// The task's `default(...)` values for [`reproduce_task`]: `Some(&|class| ...)` (the generated
/// `__default`), or `None` when the contract declares none.
pub type Defaults<'a, T> = Option<DefaultFn<'a, T>>;

/// Reproduces `record` through the engine with `contract` and output type `T`, the task's own:
/// every check (schema, `#[llm]` rules, confidence), every step of its chains (retry, reask,
/// fallback, default, escalate), and the prompt as the program renders it today. Offline, the
/// recorded responses answer (a request the record holds no response for fails the call, which
/// shows as a difference); live, the providers of the given harness do.
///
/// The report says when the contract's version differs from the recorded one; a prompt task is
/// rendered again from the recorded inputs, a body task gets the recorded messages as its
/// context.
///
/// ```no_run
/// # use harness_core::{LlmOutput, TaskContract};
/// # async fn demo<Label: LlmOutput>(contract: &'static TaskContract) -> Result<(), Box<dyn std::error::Error>> {
/// use harness_core::audit::{self, reproduce::{Mode, reproduce_task}};
/// let record = audit::find_record("audit.jsonl", "call-42")?.ok_or("no such record")?;
/// // With a task `classify`: `reproduce_task::<Label>(&record, &classify::CONTRACT, ...)`.
/// let report = reproduce_task::<Label>(&record, contract, Mode::Offline, None).await?;
/// std::process::exit(report.exit_code().into());
/// # }
/// ```
pub async fn reproduce_task<T: LlmOutput>(
    record: &AuditRecord,
    contract: &'static TaskContract,
    mode: Mode<'_>,
    defaults: Defaults<'_, T>,
) -> Result<Reproduction, ReproduceError> {
    check_record(record)?;
    let checks = rebuild::rebuild_requests(record)?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let inputs = inputs(record, contract)?;
    let context = contract.prompt.is_none().then(|| body_context::<T>(record));
    let body = context.is_some();
    let offline;
    let harness = match mode {
        Mode::Live(h) => h,
        Mode::Offline => {
            offline = offline_harness(record, contract);
            &offline
        }
    };
    let result = harness.run::<T>(contract, inputs, context, defaults).await;
    let mut notes = Vec::new();
    if contract.version != record.contract_version {
        notes.push(format!(
            "the record was written under contract version {}; this program's `{}` is version {}: differences may come from the change",
            record.contract_version, contract.name, contract.version
        ));
    }
    if body && record.context.is_some() {
        notes.push("the task's body assembled its context with a context plan: the recorded messages are sent as they were, the plan and its sources are not run again".into());
    }
    let run = run_of(record, result, harness.parse_limits(), &mut notes);
    let mut report = Reproduction::new(record, &mode, checks, run, notes);
    report.contract = "linked";
    report.linked_version = Some(contract.version.to_owned());
    Ok(report)
}

/// The recorded inputs under the contract's input names.
fn inputs(record: &AuditRecord, contract: &TaskContract) -> Result<Inputs, ReproduceError> {
    contract
        .inputs
        .iter()
        .map(|spec| {
            record
                .inputs
                .iter()
                .find(|i| i.name == spec.name)
                .and_then(|i| i.value.clone())
                .map(|v| (spec.name, v))
                .ok_or_else(|| {
                    rebuild::malformed(
                        record,
                        format!(
                            "the task's input `{}` is not in the record (the task's inputs changed, or it was not recorded in full)",
                            spec.name
                        ),
                    )
                })
        })
        .collect()
}

/// A body task's context: the recorded messages without the schema instruction the engine adds.
fn body_context<T: LlmOutput>(record: &AuditRecord) -> Context {
    let schema = SchemaValidator::for_type::<T>();
    let instruction = schema.instruction();
    let mut messages: Vec<Message> = record.messages().unwrap_or_default();
    if let Some(i) = messages.iter().position(|m| m.role == Role::System) {
        let suffix = format!("\n\n{instruction}");
        if messages[i].content == instruction {
            messages.remove(i);
        } else if let Some(head) = messages[i].content.strip_suffix(&suffix) {
            messages[i].content = head.to_owned();
        }
    }
    // The body (and any context plan and sources in it) is not run again: its messages as sent
    // are the ones to reproduce.
    Context {
        messages,
        assembly: None,
    }
}

/// A harness answering from the record, under every provider name the record or the contract
/// uses, with recovery off (a reproduction must not be shed by a breaker).
fn offline_harness(record: &AuditRecord, contract: &TaskContract) -> Harness {
    let replay = std::sync::Arc::new(ReplayProvider::from_records([record.clone()]));
    let mut names: BTreeSet<&str> = record
        .attempts
        .iter()
        .map(|a| a.provider.as_str())
        .collect();
    names.extend(contract.provider);
    let mut builder = Harness::builder()
        .provider("replay", replay.clone())
        .default_model(record.model_requested.clone())
        .recovery(RecoveryConfig::off());
    for name in names {
        builder = builder.provider(name, replay.clone());
    }
    // Every name registered is a provider, so the check in `build` passes.
    builder.build().unwrap_or_else(|_| {
        Harness::builder()
            .build()
            .unwrap_or_else(|_| unreachable!())
    })
}

/// The reproduced path and output from the engine's result.
fn run_of<T: LlmOutput>(
    record: &AuditRecord,
    result: TaskResult<T>,
    limits: &ParseLimits,
    notes: &mut Vec<String>,
) -> Run {
    let (report, status, class) = match &result {
        Ok(o) => {
            let (status, class) = match &o.resolution {
                Resolution::Answer(_) => ("answer", None),
                Resolution::Default { class, .. } => ("default", Some(class.as_str())),
                Resolution::Escalated(e) => ("escalated", Some(e.class.as_str())),
            };
            (&o.report, status, class)
        }
        Err(e) => (e.report(), "failed", Some(e.kind().as_str())),
    };
    let value = match status {
        "answer" => accepted_json::<T>(report, limits),
        "default" => {
            notes.push("the call ended in the task's default; its value is compared as recorded (output types need not be Serialize)".into());
            (record.outcome.status == "default")
                .then(|| record.outcome.value.clone())
                .flatten()
        }
        _ => None,
    };
    Run {
        attempts: report
            .attempts
            .iter()
            .map(|a| RunAttempt {
                n: a.n,
                kind: attempt_kind(a.kind).to_owned(),
                model: a.model.clone(),
                fingerprint: a.fingerprint.clone(),
                verdict: a.failure.map_or("accepted", |c| c.as_str()).to_owned(),
            })
            .collect(),
        status: status.to_owned(),
        class: class.map(str::to_owned),
        value,
    }
}

/// The JSON the engine accepted: the last attempt's answer, checked again the same way.
fn accepted_json<T: LlmOutput>(
    report: &CallReport,
    limits: &ParseLimits,
) -> Option<serde_json::Value> {
    let raw = report.attempts.last()?.raw.as_deref()?;
    match check_value::<T>(raw, None, limits) {
        Checked::Valid { json, .. } | Checked::LowConfidence { json, .. } => Some(json),
        Checked::Invalid { .. } => None,
    }
}
