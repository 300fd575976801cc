//! The first step: resolve the model and the provider, render the first request, open the report.
//! A call that cannot start (no model, no provider, a schema that cannot compile) still ends
//! through [`Frame::finish`], so observers and the audit trail record it with what was wrong.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::sources::{Fetched, SourceEnd};
use super::{Call, Cursor, Ended, Frame, Route, new_call_id};
use crate::context::{Context, initial_messages};
use crate::contract::ActionKind;
use crate::contract::{FailureClass, TaskContract};
use crate::engine::{DefaultFn, Harness, Inputs};
use crate::observe::names;
use crate::outcome::{AttemptKind, CallReport, ErrorKind, Escalation, Provenance};
use crate::output::ValidationErrors;
use crate::output::{LlmOutput, SchemaValidator};
use crate::provider::{ChatRequest, ResponseFormat};

/// A call that could not start: its frame (for `finish`) and why.
pub(crate) type NotStarted<'h, T> = Box<(Frame<'h>, Ended<T>)>;

impl<'h, T: LlmOutput> Call<'h, T> {
    /// Renders the first request and routes it; `Err` holds a call that ends before any attempt.
    pub(crate) fn start(
        harness: &'h Harness,
        contract: &'static TaskContract,
        inputs: Inputs,
        context: Option<Context>,
        defaults: Option<DefaultFn<'h, T>>,
        fetched: Fetched,
    ) -> Result<Self, NotStarted<'h, T>> {
        let schema = SchemaValidator::for_type::<T>();
        let model = harness.model_for(contract);
        let mut context = context;
        let assembly = context.as_mut().and_then(|c| c.assembly.take());
        let mut base_messages = initial_messages(contract, &inputs, context);
        fetched.insert_into(&mut base_messages);
        // The schema and its instruction are built once per type and shared, never copied: the
        // provider sends the one the server enforces, or the instruction in the prompt.
        let response_format = ResponseFormat::json_schema(T::TYPE_NAME, schema.wire_schema())
            .with_instruction(schema.shared_instruction());
        let first_request = ChatRequest {
            model: model.clone().unwrap_or_default(),
            messages: base_messages.clone(),
            response_format,
            temperature: contract.params.temperature,
            max_tokens: contract.params.max_tokens,
            seed: contract.params.seed,
            ..Default::default()
        };
        let started = Instant::now();
        let mut report = open_report(contract, &first_request);
        report.context = assembly.and_then(|a| serde_json::to_value(a).ok());
        report.sources = fetched.reports;
        report.actions = fetched.actions;
        tracing::Span::current().record(names::HARNESS_CALL_ID, report.call_id.as_str());
        let frame = Frame {
            harness,
            contract,
            inputs,
            request: first_request,
            report,
            provenance: Provenance::default(),
            started,
        };
        if let Some(end) = fetched.end {
            let ended = source_end(end, defaults);
            return Err(Box::new((frame, ended)));
        }
        let route = match setup::<T>(harness, contract, &schema, model) {
            Ok(route) => route,
            Err(message) => return Err(Box::new((frame, Ended::config(message, None)))),
        };
        harness.recovery().on_call(&route.provider_name);
        Ok(Call {
            request: frame.request.clone(),
            fingerprint: frame.report.fingerprint.clone(),
            frame,
            defaults,
            route,
            base_messages,
            kind: AttemptKind::First,
            cursors: [Cursor::default(); FailureClass::ALL.len()],
            deadline: started + contract.effective_deadline(),
        })
    }
}

/// How a call ends when a source's contract ends it before any attempt.
fn source_end<T>(end: SourceEnd, defaults: Option<DefaultFn<'_, T>>) -> Ended<T> {
    let class = FailureClass::ContextUnavailable;
    match end.action {
        ActionKind::Default => match defaults.and_then(|d| d(class)) {
            Some(value) => Ended::Default { value, class },
            None => Ended::config(
                format!(
                    "the contract for {class} says `default`, but no default value was supplied ({})",
                    end.message
                ),
                None,
            ),
        },
        ActionKind::Escalate => Ended::Escalated {
            escalation: Escalation {
                class,
                reason: end.message,
                candidate: None,
                last_raw: None,
            },
            candidate: None,
        },
        _ => Ended::Failed {
            kind: ErrorKind::ContextUnavailable,
            message: end.message,
            validation: ValidationErrors::new(),
            provider_error: None,
        },
    }
}

/// The report of a call that starts now.
fn open_report(contract: &'static TaskContract, first: &ChatRequest) -> CallReport {
    CallReport {
        call_id: new_call_id(),
        task: contract.name,
        contract_version: contract.version,
        fingerprint: first.fingerprint(),
        model_requested: first.model.clone(),
        started_at: SystemTime::now(),
        elapsed: Duration::ZERO,
        attempts: Vec::new(),
        actions: Vec::new(),
        usage: Default::default(),
        cost_usd: None,
        context: None,
        sources: Vec::new(),
    }
}

/// What must hold before the first attempt: a schema that compiles, a model, a provider for it.
fn setup<T: LlmOutput>(
    harness: &Harness,
    contract: &TaskContract,
    schema: &SchemaValidator,
    model: Option<String>,
) -> Result<Route, String> {
    if let Some(err) = schema.compile_error() {
        return Err(format!(
            "the JSON schema of `{}` cannot be compiled: {err}",
            T::TYPE_NAME
        ));
    }
    let Some(model) = model else {
        return Err(format!(
            "task `{}` names no model and the harness has no default model",
            contract.name
        ));
    };
    let (provider_name, provider) = harness.route(contract.provider, &model)?;
    Ok(Route {
        provider_name,
        provider,
        model,
    })
}
