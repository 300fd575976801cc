//! [`ToolSpec`]: what a tool is and what the harness enforces around it.

use std::time::Duration;

use serde_json::Value;

use super::scope::Scope;
use crate::provider::ToolDefinition;

/// The time a call may run when the spec does not say (`timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A rate limit: at most `count` calls per `per`, as a steady rate with bursts up to `count`
/// (GCRA, as the provider limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Calls per period (at least 1).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// `count` calls per `per`; `None` when `count` is 0 or `per` is zero.
    pub fn new(count: u32, per: Duration) -> Option<Rate> {
        (count > 0 && !per.is_zero()).then_some(Rate { count, per })
    }

    /// Reads `N/s`, `N/min`, `N/h` or `N/day` (what `#[llm_tool(rate = "...")]` accepts).
    pub fn parse(text: &str) -> Result<Rate, &'static str> {
        let r = harness_spec::tool::parse_rate(text)?;
        Ok(Rate {
            count: r.count,
            per: Duration::from_secs(r.per_seconds),
        })
    }
}

/// What a tool is (name, description, argument schema) and what the harness enforces around
/// each call: the scope it requires, whether a person approves each call, a rate limit, a
/// timeout, which arguments need trusted values, and the error classes it may answer with.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// The JSON schema of its arguments (an object).
    pub parameters: Value,
    /// The scope a grant must cover.
    pub scope: Scope,
    /// Each call waits for a person's approval.
    pub approval: bool,
    /// At most this many calls (over every agent sharing the toolbox).
    pub rate: Option<Rate>,
    /// Running it twice with the same arguments does no more than running it once.
    pub idempotent: bool,
    /// How long a call may run.
    pub timeout: Duration,
    /// Top-level arguments whose values must come from the user or the program, never from a
    /// tool's output (a payee, an account to delete).
    pub trusted: Vec<String>,
    /// The error classes the tool may fail with (`not_found`, ...), besides the harness's own.
    pub error_classes: Vec<String>,
}

impl ToolSpec {
    /// A spec with no approval, no rate limit, not idempotent, the default timeout.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
        scope: Scope,
    ) -> Self {
        ToolSpec {
            name: name.into(),
            description: description.into(),
            parameters,
            scope,
            approval: false,
            rate: None,
            idempotent: false,
            timeout: DEFAULT_TIMEOUT,
            trusted: Vec::new(),
            error_classes: Vec::new(),
        }
    }

    /// Each call needs a person's approval.
    pub fn approval(mut self) -> Self {
        self.approval = true;
        self
    }

    /// A rate limit.
    pub fn rate(mut self, rate: Rate) -> Self {
        self.rate = Some(rate);
        self
    }

    /// Marks the tool idempotent.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// How long a call may run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The top-level argument `name` only accepts trusted values.
    pub fn trusted(mut self, name: impl Into<String>) -> Self {
        self.trusted.push(name.into());
        self
    }

    /// An error class the tool may fail with.
    pub fn error_class(mut self, class: impl Into<String>) -> Self {
        self.error_classes.push(class.into());
        self
    }

    /// The definition offered to the model.
    pub fn definition(&self) -> ToolDefinition {
        ToolDefinition::new(&self.name, &self.description, self.parameters.clone())
    }
}

/// The argument schema of a tool whose arguments are `T`: `T`'s JSON schema with its objects
/// closed (`additionalProperties: false`: an argument the tool does not take is refused) and
/// without `$schema` and `title`.
pub fn parameters_for<T: schemars::JsonSchema>() -> Value {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    let mut schema = serde_json::to_value(schema).unwrap_or(Value::Bool(false));
    crate::output::close_objects(&mut schema);
    if let Some(map) = schema.as_object_mut() {
        map.remove("$schema");
        map.remove("title");
    }
    schema
}
