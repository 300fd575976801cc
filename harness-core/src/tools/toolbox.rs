//! [`Toolbox`]: the tools of a program and the grants of an agent; it checks each call, then
//! runs it within bounds. The model never decides whether a call runs.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde_json::Value;

use super::error::{ToolError, ToolErrorKind};
use super::provenance::Provenance;
use super::scope::{Grants, Scope};
use super::spec::ToolSpec;
use super::tool::{CatchUnwind, ErasedTool, Tool, panic_message};
use crate::output::SchemaValidator;
use crate::provider::{Arguments, Message, ToolCall, ToolDefinition};
use crate::recovery::limit::TokioClock;

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// Why a tool could not be added to a toolbox.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolboxError {
    /// Two tools of one name.
    #[error("a tool named `{0}` is already in the toolbox")]
    Duplicate(String),
    /// The name is not `[A-Za-z0-9_-]{{1,64}}` (what every API accepts).
    #[error(
        "`{0}` is not a tool name the APIs accept: use 1 to 64 ASCII letters, digits, `_` or `-`"
    )]
    BadName(String),
    /// The argument schema does not compile.
    #[error("the argument schema of tool `{tool}` cannot be compiled: {error}")]
    BadSchema {
        /// The tool.
        tool: String,
        /// The compiler's message.
        error: String,
    },
}

struct Entry {
    spec: ToolSpec,
    tool: Arc<dyn ErasedTool>,
    schema: SchemaValidator,
    limiter: Option<Limiter>,
}

/// The tools of a program and the scopes granted to the agent using them.
///
/// [`Toolbox::dispatch`] checks a call in this order, and a call that fails a check is
/// **denied**: never run, answered to the model as a tool error. The tool must exist, must have
/// been offered in the request, a grant must cover its scope, its arguments must be JSON and fit
/// its schema, its trusted arguments must hold trusted values ([`Provenance`]); a tool that needs
/// approval then stops at [`Dispatch::Pending`]; its rate limit must have room. The tool then
/// runs within its timeout, and a panic in it is caught.
pub struct Toolbox {
    entries: HashMap<String, Entry>,
    grants: Grants,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.entries.keys().collect();
        names.sort();
        f.debug_struct("Toolbox")
            .field("tools", &names)
            .field("grants", &self.grants)
            .finish()
    }
}

/// A call the checks passed and that waits for a person: the exact call and the hash of its
/// arguments. Approving runs this payload, never a later one from the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The call, as the model asked for it.
    pub call: ToolCall,
    /// The scope it needs.
    pub scope: Scope,
    /// [`ToolCall::arguments_hash`] when it was checked.
    pub arguments_hash: String,
}

/// What became of one tool call.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Dispatch {
    /// The tool ran and answered.
    Executed {
        /// The call's id.
        call_id: String,
        /// The tool's name.
        tool: String,
        /// Its output.
        output: Value,
    },
    /// Refused before running (see [`ToolErrorKind::is_denial`]).
    Denied {
        /// The call's id.
        call_id: String,
        /// Why.
        error: ToolError,
    },
    /// The tool ran and failed, timed out or panicked.
    Failed {
        /// The call's id.
        call_id: String,
        /// Why.
        error: ToolError,
    },
    /// Waiting for a person's approval.
    Pending(Pending),
}

impl Dispatch {
    /// `executed`, `denied`, `failed` or `pending`: the status an audit record names.
    pub fn status(&self) -> &'static str {
        match self {
            Dispatch::Executed { .. } => "executed",
            Dispatch::Denied { .. } => "denied",
            Dispatch::Failed { .. } => "failed",
            Dispatch::Pending(_) => "pending",
        }
    }

    /// The call's id.
    pub fn call_id(&self) -> &str {
        match self {
            Dispatch::Executed { call_id, .. }
            | Dispatch::Denied { call_id, .. }
            | Dispatch::Failed { call_id, .. } => call_id,
            Dispatch::Pending(p) => &p.call.id,
        }
    }

    /// The error, when denied or failed.
    pub fn error(&self) -> Option<&ToolError> {
        match self {
            Dispatch::Denied { error, .. } | Dispatch::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The tool result the model sees: the output as JSON, or `{"error": kind, "message": ...}`.
    pub fn message(&self) -> Message {
        let content = match self {
            Dispatch::Executed { output, .. } => output.to_string(),
            Dispatch::Denied { error, .. } | Dispatch::Failed { error, .. } => {
                serde_json::json!({"error": error.kind().as_str(), "message": error.message()})
                    .to_string()
            }
            Dispatch::Pending(_) => {
                serde_json::json!({"status": "pending", "message": "the call waits for a person's approval"})
                    .to_string()
            }
        };
        Message::tool_result(self.call_id(), content)
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Toolbox {
    /// An empty toolbox for an agent holding `grants`.
    pub fn new(grants: Grants) -> Self {
        Toolbox {
            entries: HashMap::new(),
            grants,
        }
    }

    /// Adds `tool` (builder style).
    pub fn with(mut self, tool: impl Tool) -> Result<Self, ToolboxError> {
        self.add(tool)?;
        Ok(self)
    }

    /// Adds `tool`: refused for a duplicate name, a name the APIs reject, or a schema that does
    /// not compile.
    pub fn add(&mut self, tool: impl Tool) -> Result<(), ToolboxError> {
        let spec = tool.spec();
        if !valid_name(&spec.name) {
            return Err(ToolboxError::BadName(spec.name));
        }
        if self.entries.contains_key(&spec.name) {
            return Err(ToolboxError::Duplicate(spec.name));
        }
        let schema = SchemaValidator::new(spec.parameters.clone());
        if let Some(error) = schema.compile_error() {
            return Err(ToolboxError::BadSchema {
                tool: spec.name,
                error: error.to_owned(),
            });
        }
        let limiter = spec.rate.and_then(|r| {
            let count = NonZeroU32::new(r.count)?;
            let quota = Quota::with_period(r.per / r.count)?.allow_burst(count);
            Some(RateLimiter::direct_with_clock(quota, TokioClock::new()))
        });
        self.entries.insert(
            spec.name.clone(),
            Entry {
                spec,
                tool: Arc::new(tool),
                schema,
                limiter,
            },
        );
        Ok(())
    }

    /// The grants.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The spec of tool `name`.
    pub fn spec(&self, name: &str) -> Option<&ToolSpec> {
        self.entries.get(name).map(|e| &e.spec)
    }

    /// The definitions of the tools whose scope is granted, by name: what to offer the model.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        let mut defs: Vec<ToolDefinition> = self
            .entries
            .values()
            .filter(|e| self.grants.allows(&e.spec.scope))
            .map(|e| e.spec.definition())
            .collect();
        defs.sort_by(|a, b| a.name.cmp(&b.name));
        defs
    }

    /// The checks before a call runs, up to (not including) approval and the rate limit.
    fn check(
        &self,
        call: &ToolCall,
        offered: &[ToolDefinition],
        provenance: &Provenance,
    ) -> Result<&Entry, ToolError> {
        let deny = |kind, message: String| ToolError::new(kind, &call.name, message);
        let Some(entry) = self.entries.get(&call.name) else {
            return Err(deny(
                ToolErrorKind::UnknownTool,
                "no tool of this name exists".to_owned(),
            ));
        };
        if !offered.iter().any(|d| d.name == call.name) {
            return Err(deny(
                ToolErrorKind::NotOffered,
                "this tool was not offered in this conversation".to_owned(),
            ));
        }
        if !self.grants.allows(&entry.spec.scope) {
            return Err(deny(
                ToolErrorKind::OutOfScope,
                format!("its scope `{}` is not granted", entry.spec.scope),
            ));
        }
        self.check_arguments(entry, call, provenance)?;
        Ok(entry)
    }

    fn check_arguments(
        &self,
        entry: &Entry,
        call: &ToolCall,
        provenance: &Provenance,
    ) -> Result<(), ToolError> {
        let deny = |kind, message: String| ToolError::new(kind, &call.name, message);
        let args = match &call.arguments {
            Arguments::Json(v) => v,
            Arguments::Malformed { error, .. } => {
                return Err(deny(
                    ToolErrorKind::MalformedArguments,
                    format!("the arguments are not JSON: {error}"),
                ));
            }
        };
        let errors = entry.schema.errors(args);
        if !errors.is_empty() {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(deny(
                ToolErrorKind::InvalidArguments,
                format!("the arguments do not fit the schema: {}", list.join("; ")),
            ));
        }
        for name in &entry.spec.trusted {
            if let Some(value) = args.get(name) {
                if let Some(why) = provenance.check(name, value) {
                    return Err(deny(ToolErrorKind::Untrusted, why));
                }
            }
        }
        Ok(())
    }

    /// Checks `call` against the tools `offered` in the request, the grants and `provenance`,
    /// then runs it (see [`Toolbox`] for the order of the checks).
    pub async fn dispatch(
        &self,
        call: &ToolCall,
        offered: &[ToolDefinition],
        provenance: &Provenance,
    ) -> Dispatch {
        let denied = |error| Dispatch::Denied {
            call_id: call.id.clone(),
            error,
        };
        let entry = match self.check(call, offered, provenance) {
            Ok(entry) => entry,
            Err(e) => return denied(e),
        };
        if entry.spec.approval {
            return Dispatch::Pending(Pending {
                call: call.clone(),
                scope: entry.spec.scope.clone(),
                arguments_hash: call.arguments_hash(),
            });
        }
        self.execute(entry, call).await
    }

    /// Runs an approved call: the stored payload, after checking that its arguments still hash to
    /// the approved hash (an altered payload is refused) and that scope and schema still hold.
    /// At-most-once execution across restarts is the job of the journal that stores `pending`.
    pub async fn run_approved(&self, pending: &Pending) -> Dispatch {
        let call = &pending.call;
        let denied = |error| Dispatch::Denied {
            call_id: call.id.clone(),
            error,
        };
        if call.arguments_hash() != pending.arguments_hash {
            return denied(ToolError::new(
                ToolErrorKind::ApprovalMismatch,
                &call.name,
                "the arguments differ from the ones approved",
            ));
        }
        let Some(entry) = self.entries.get(&call.name) else {
            return denied(ToolError::new(
                ToolErrorKind::UnknownTool,
                &call.name,
                "no tool of this name exists",
            ));
        };
        if !self.grants.allows(&entry.spec.scope) {
            return denied(ToolError::new(
                ToolErrorKind::OutOfScope,
                &call.name,
                format!("its scope `{}` is not granted", entry.spec.scope),
            ));
        }
        // Provenance was checked before the call became pending; a person approved this value.
        let mut trusted = Provenance::new();
        if let Some(args) = call.json() {
            trusted.trust_value(args);
        }
        if let Err(e) = self.check_arguments(entry, call, &trusted) {
            return denied(e);
        }
        self.execute(entry, call).await
    }

    /// Rate limit, then the tool within its timeout, panics caught.
    async fn execute(&self, entry: &Entry, call: &ToolCall) -> Dispatch {
        let call_id = call.id.clone();
        let name = call.name.as_str();
        if let Some(limiter) = &entry.limiter {
            if limiter.check().is_err() {
                return Dispatch::Denied {
                    call_id,
                    error: ToolError::new(
                        ToolErrorKind::RateLimited,
                        name,
                        "the tool's rate limit is used up; try later",
                    ),
                };
            }
        }
        let args = call.json().cloned().unwrap_or(Value::Null);
        let failed = |error| Dispatch::Failed {
            call_id: call.id.clone(),
            error,
        };
        let started = catch_unwind(AssertUnwindSafe(|| entry.tool.call_json(name, args)));
        let running = match started {
            Ok(f) => f,
            Err(p) => {
                return failed(ToolError::new(
                    ToolErrorKind::Panicked,
                    name,
                    format!("the tool panicked: {}", panic_message(p.as_ref())),
                ));
            }
        };
        match tokio::time::timeout(entry.spec.timeout, CatchUnwind(running)).await {
            Err(_) => failed(ToolError::new(
                ToolErrorKind::Timeout,
                name,
                format!("the tool did not answer within {:?}", entry.spec.timeout),
            )),
            Ok(Err(message)) => failed(ToolError::new(
                ToolErrorKind::Panicked,
                name,
                format!("the tool panicked: {message}"),
            )),
            Ok(Ok(Err(e))) if e.is_denial() => Dispatch::Denied { call_id, error: e },
            Ok(Ok(Err(e))) => failed(e),
            Ok(Ok(Ok(output))) => Dispatch::Executed {
                call_id,
                tool: name.to_owned(),
                output,
            },
        }
    }
}
