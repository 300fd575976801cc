//! The first step: resolve the model and the provider, render the first request, open the report.
//! A call that cannot start (no model, no provider, a schema that cannot compile) still ends
//! through [`Frame::finish`], so observers and the audit trail record it with what was wrong.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{Call, Cursor, Ended, Frame, Route, new_call_id};
use crate::context::{Context, initial_messages};
use crate::contract::{FailureClass, TaskContract};
use crate::engine::{DefaultFn, Harness, Inputs};
use crate::observe::names;
use crate::outcome::{AttemptKind, CallReport, Provenance};
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
    ) -> Result<Self, NotStarted<'h, T>> {
        let schema = SchemaValidator::for_type::<T>();
        let model = harness.model_for(contract);
        let mut context = context;
        let assembly = context.as_mut().and_then(|c| c.assembly.take());
        let base_messages = initial_messages(contract, &inputs, context, &schema);
        let first_request = ChatRequest {
            model: model.clone().unwrap_or_default(),
            messages: base_messages.clone(),
            response_format: ResponseFormat::JsonSchema {
                name: T::TYPE_NAME.to_owned(),
                schema: schema.schema().clone(),
            },
            temperature: contract.params.temperature,
            max_tokens: contract.params.max_tokens,
            seed: contract.params.seed,
            ..Default::default()
        };
        let started = Instant::now();
        let mut report = open_report(contract, &first_request);
        report.context = assembly.and_then(|a| serde_json::to_value(a).ok());
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
