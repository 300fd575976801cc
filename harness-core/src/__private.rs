//! Paths for generated code. Generated code names the runtime only through this module.

pub use ::core;
pub use ::inventory;
pub use ::schemars;
pub use ::serde;
pub use ::serde_json;
pub use ::std;

pub use crate::__harness_register as register;
pub use crate::contract::linked::Linked;
pub use crate::contract::{
    Action, Backoff, Chain, FailureClass, FallbackTarget, InputSpec, OutputSpec, Params, Policy,
    PolicySet, RepairKind, SourceSpec, TaskContract,
};
pub use crate::engine::{Context, DefaultFn, Harness, Inputs, IntoContext};
pub use crate::outcome::TaskResult;
pub use crate::output::{FieldPath, LlmOutput, ValidationErrors, rules};

use std::fmt::Display;

/// Generated code's registration of one entry (through `__private::register!`).
#[doc(hidden)]
#[macro_export]
macro_rules! __harness_register {
    ($entry:expr) => {
        $crate::__private::inventory::submit! { $entry }
    };
}

// ---------------------------------------------------------------------------------------------
// Output specs

/// The [`OutputSpec`] of `T`, for the `CONTRACT` constant.
pub const fn output_spec<T: LlmOutput>() -> OutputSpec {
    OutputSpec {
        type_name: T::TYPE_NAME,
        has_confidence: T::HAS_CONFIDENCE,
        schema: T::output_schema,
    }
}

/// The JSON schema of a type whose derive failed: accepts nothing.
pub fn no_schema() -> serde_json::Value {
    serde_json::Value::Bool(false)
}

/// Every field of a [`TaskContract`], for generated code: the contract itself is
/// `#[non_exhaustive]`, so code outside harness-core cannot write it as a struct literal. A new
/// contract field is added here and in the macro together.
#[derive(Clone, Copy)]
pub struct ContractFields {
    pub name: &'static str,
    pub module: &'static str,
    pub description: &'static str,
    pub version: &'static str,
    pub model: Option<&'static str>,
    pub provider: Option<&'static str>,
    pub system: Option<&'static str>,
    pub prompt: Option<&'static str>,
    pub inputs: &'static [InputSpec],
    pub output: OutputSpec,
    pub timeout: core::time::Duration,
    pub deadline: Option<core::time::Duration>,
    pub chains: &'static [Chain],
    pub policy: Option<&'static PolicySet>,
    pub low_confidence_below: Option<f64>,
    pub denied_repairs: &'static [RepairKind],
    pub params: Params,
}

impl ContractFields {
    /// The contract.
    pub const fn build(self) -> TaskContract {
        TaskContract {
            name: self.name,
            module: self.module,
            description: self.description,
            version: self.version,
            model: self.model,
            provider: self.provider,
            system: self.system,
            prompt: self.prompt,
            inputs: self.inputs,
            output: self.output,
            timeout: self.timeout,
            deadline: self.deadline,
            chains: self.chains,
            policy: self.policy,
            low_confidence_below: self.low_confidence_below,
            denied_repairs: self.denied_repairs,
            params: self.params,
            sources: &[],
            plan: None,
        }
    }
}

/// The contract emitted when `#[llm_task]` reports errors, so code naming `task::CONTRACT` does not
/// add errors of its own.
pub const fn stub_contract(name: &'static str, module: &'static str) -> TaskContract {
    TaskContract::new(
        name,
        module,
        OutputSpec {
            type_name: "",
            has_confidence: false,
            schema: no_schema,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// One gate per output type and per policy type

/// A boxed, `Send` future (what the [`Ops`] function pointers return).
pub type BoxFuture<'a, T> = core::pin::Pin<Box<dyn core::future::Future<Output = T> + Send + 'a>>;

/// Everything a task needs from its output type, as one value.
pub struct Ops<T> {
    /// The [`OutputSpec`] of the type.
    pub spec: OutputSpec,
    /// Whether it has a `#[llm(confidence)]` field.
    pub has_confidence: bool,
    /// [`Harness::run_global`] for this output.
    pub run_global: RunGlobalFn<T>,
    /// [`Harness::run`] for this output.
    pub run: RunFn<T>,
}

/// [`Harness::run_global`] for one output type, boxed.
pub type RunGlobalFn<T> = for<'a> fn(
    &'static TaskContract,
    Inputs,
    Option<Context>,
    Option<DefaultFn<'a, T>>,
) -> BoxFuture<'a, TaskResult<T>>;

/// [`Harness::run`] for one output type, boxed.
pub type RunFn<T> = for<'a> fn(
    &'a Harness,
    &'static TaskContract,
    Inputs,
    Option<Context>,
    Option<DefaultFn<'a, T>>,
) -> BoxFuture<'a, TaskResult<T>>;

/// The output-type gate of generated code. Implemented for every [`LlmOutput`]; generated code
/// uses nothing else of the output type than `<Out as TaskOutput>::OPS`, always at the span of
/// the output type, so that a type that is not an output is reported once (rustc merges
/// identical diagnostics), in these words.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an LLM output type",
    label = "`{Self}` does not implement `LlmOutput`",
    note = "add `#[derive(LlmOutput)]` to the definition of `{Self}`: it generates the JSON schema, parsing and validation the harness needs"
)]
pub trait TaskOutput: Sized {
    /// What tasks returning this type need.
    const OPS: Ops<Self>;
}

fn run_global_boxed<'a, T: LlmOutput>(
    contract: &'static TaskContract,
    inputs: Inputs,
    context: Option<Context>,
    defaults: Option<DefaultFn<'a, T>>,
) -> BoxFuture<'a, TaskResult<T>> {
    Box::pin(Harness::run_global(contract, inputs, context, defaults))
}

fn run_boxed<'a, T: LlmOutput>(
    harness: &'a Harness,
    contract: &'static TaskContract,
    inputs: Inputs,
    context: Option<Context>,
    defaults: Option<DefaultFn<'a, T>>,
) -> BoxFuture<'a, TaskResult<T>> {
    Box::pin(harness.run(contract, inputs, context, defaults))
}

impl<T: LlmOutput> TaskOutput for T {
    const OPS: Ops<T> = Ops {
        spec: output_spec::<T>(),
        has_confidence: T::HAS_CONFIDENCE,
        run_global: run_global_boxed::<T>,
        run: run_boxed::<T>,
    };
}

/// A policy's data, as one value (see [`TaskPolicy`]).
pub struct PolicyData {
    /// The policy.
    pub policy: &'static PolicySet,
    /// Which classes it covers, by [`FailureClass::index`].
    pub covers: [bool; FailureClass::ALL.len()],
}

/// The policy gate of generated code, implemented for every [`Policy`] (see [`TaskOutput`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a policy",
    label = "`{Self}` is not declared with `#[llm_policy]`",
    note = "declare it as `#[llm_policy(on_timeout = retry(2), ...)] pub struct {Self};`"
)]
pub trait TaskPolicy {
    /// The policy's data.
    const DATA: PolicyData;
}

impl<P: Policy> TaskPolicy for P {
    const DATA: PolicyData = PolicyData {
        policy: &P::POLICY,
        covers: P::COVERS,
    };
}

// ---------------------------------------------------------------------------------------------
// Confidence markers

// `#[llm_task]` checks confidence contracts with `OutputOf::<T>::HAS_CONFIDENCE` in a `const`, which
// names the task in the message and works for hand-written `LlmOutput` impls too; the derive also
// implements these markers, for generic code that wants the distinction as a bound.

/// Implemented by `#[derive(LlmOutput)]` for outputs with a `#[llm(confidence)]` field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no confidence field, so `on_low_confidence` can never apply",
    label = "this contract needs a `#[llm(confidence)]` field in `{Self}`",
    note = "remove `on_low_confidence(..)`, or add a field `#[llm(confidence)] confidence: f64` to `{Self}`"
)]
pub trait HasConfidenceField {}

/// Implemented by `#[derive(LlmOutput)]` for outputs without a `#[llm(confidence)]` field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has a confidence field, but the task has no `on_low_confidence` contract",
    label = "this output has a `#[llm(confidence)]` field",
    note = "add `on_low_confidence(below = 0.7) = reask(1).then(escalate)` to the task (or to its policy)"
)]
pub trait LacksConfidenceField {}

/// Requires `T: HasConfidenceField`, for generic code that needs an output with confidence.
pub const fn assert_has_confidence<T: HasConfidenceField + ?Sized>() {}

/// Requires `T: LacksConfidenceField`.
pub const fn assert_lacks_confidence<T: LacksConfidenceField + ?Sized>() {}

// ---------------------------------------------------------------------------------------------
// Nested validation: autoref probe, so fields of any type compile

/// Wraps a field for [`ValidateNested`] / [`ValidateNothing`] method resolution.
pub struct Probe<'a, T: ?Sized>(pub &'a T);

/// Chosen when the field's type is [`rules::Nested`] (an output, or a container of outputs).
pub trait ValidateNested {
    /// Validates the wrapped value.
    fn __harness_validate(&self, path: &FieldPath, errors: &mut ValidationErrors);
}

impl<T: rules::Nested + ?Sized> ValidateNested for Probe<'_, T> {
    fn __harness_validate(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        self.0.validate_nested(path, errors);
    }
}

/// Chosen for every other type: there is nothing to descend into.
pub trait ValidateNothing {
    /// Does nothing.
    fn __harness_validate(&self, path: &FieldPath, errors: &mut ValidationErrors);
}

impl<T: ?Sized> ValidateNothing for &Probe<'_, T> {
    fn __harness_validate(&self, _path: &FieldPath, _errors: &mut ValidationErrors) {}
}

// ---------------------------------------------------------------------------------------------
// Input rendering: Display, else JSON, else a worded compile error

/// Wraps a task argument for [`RenderDisplay`] / [`RenderJson`] / [`RenderNone`] resolution:
/// generated code calls `(&&&InputProbe(&arg)).__harness_render()`.
pub struct InputProbe<'a, T: ?Sized>(pub &'a T);

/// Chosen when the argument is `Display`: its text goes into the prompt as is.
pub trait RenderDisplay {
    /// Output of the chosen rendering.
    type Out;
    /// Renders.
    fn __harness_render(&self) -> Self::Out;
}

impl<T: Display + ?Sized> RenderDisplay for &&InputProbe<'_, T> {
    type Out = String;
    fn __harness_render(&self) -> String {
        self.0.to_string()
    }
}

/// Chosen when the argument is not `Display` but `Serialize`: it goes in as compact JSON.
pub trait RenderJson {
    /// Output of the chosen rendering.
    type Out;
    /// Renders.
    fn __harness_render(&self) -> Self::Out;
}

impl<T: serde::Serialize + ?Sized> RenderJson for &InputProbe<'_, T> {
    type Out = String;
    fn __harness_render(&self) -> String {
        serde_json::to_string(self.0).unwrap_or_else(|e| format!("<unserializable: {e}>"))
    }
}

/// Chosen when the argument is neither: yields [`Unrenderable`], which [`rendered`] rejects.
pub trait RenderNone {
    /// Output of the chosen rendering.
    type Out;
    /// Renders.
    fn __harness_render(&self) -> Self::Out;
}

impl<T: ?Sized> RenderNone for InputProbe<'_, T> {
    type Out = Unrenderable;
    fn __harness_render(&self) -> Unrenderable {
        Unrenderable
    }
}

/// The rendering of an argument that is neither `Display` nor `Serialize`.
pub struct Unrenderable;

/// The result of rendering an argument of type `T`: only text is accepted.
#[diagnostic::on_unimplemented(
    message = "a task argument of type `{T}` cannot be put into a prompt",
    label = "`{T}` is neither `Display` nor `Serialize`",
    note = "implement `std::fmt::Display` (used as is) or `serde::Serialize` (rendered as JSON) for `{T}`"
)]
pub trait RenderedInput<T: ?Sized> {
    /// The text.
    fn into_text(self) -> String;
}

impl<T: ?Sized> RenderedInput<T> for String {
    fn into_text(self) -> String {
        self
    }
}

/// The text of an argument rendered through the probe.
pub fn rendered<T: ?Sized, R: RenderedInput<T>>(_probe: &InputProbe<'_, T>, r: R) -> String {
    r.into_text()
}

/// The context a task body returned, with the task's `system` message in front when the body
/// did not write one itself.
pub fn body_context<C: IntoContext>(system: Option<&'static str>, c: C) -> Context {
    let mut context = c.into_context();
    if let Some(system) = system {
        if !context
            .messages
            .iter()
            .any(|m| m.role == crate::provider::Role::System)
        {
            context
                .messages
                .insert(0, crate::provider::Message::system(system));
        }
    }
    context
}

// ---------------------------------------------------------------------------------------------
// Tools (`#[llm_tool]`)

pub use crate::tools::{Rate, Tool, ToolFailure, ToolSpec};

/// The spec of a `#[llm_tool]` function. `scope` was checked by the macro (harness-spec's
/// `scope_error`), so it is taken as it is; `rate` is (count, per seconds), `timeout_ms` > 0.
#[allow(clippy::too_many_arguments)] // One argument per key of the attribute, in its order.
pub fn tool_spec(
    name: &str,
    description: &str,
    parameters: serde_json::Value,
    scope: &'static str,
    approval: bool,
    rate: Option<(u32, u64)>,
    idempotent: bool,
    timeout_ms: u64,
    trusted: &[&str],
    errors: &[&str],
) -> ToolSpec {
    let mut spec = ToolSpec::new(
        name,
        description,
        parameters,
        crate::tools::Scope::checked(scope),
    )
    .timeout(std::time::Duration::from_millis(timeout_ms));
    spec.approval = approval;
    spec.idempotent = idempotent;
    spec.rate = rate.and_then(|(n, s)| Rate::new(n, std::time::Duration::from_secs(s)));
    spec.trusted = trusted.iter().map(|s| (*s).to_owned()).collect();
    spec.error_classes = errors.iter().map(|s| (*s).to_owned()).collect();
    spec
}

/// The argument schema of a tool: `T`'s JSON schema with closed objects (an argument the tool
/// does not take is refused) and without `$schema` and `title`.
pub fn tool_parameters<T: schemars::JsonSchema>() -> serde_json::Value {
    crate::tools::parameters_for::<T>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Point {
        x: i32,
    }

    #[test]
    // The three references mirror the generated code: autoref specialization picks the impl by
    // how many references it has to strip, which clippy cannot see.
    #[allow(clippy::needless_borrow)]
    fn inputs_render_as_display_then_json() {
        let s = "hi";
        let p = InputProbe(&s);
        assert_eq!(rendered(&p, (&&&p).__harness_render()), "hi");
        let v = vec![1, 2];
        let p = InputProbe(&v);
        assert_eq!(rendered(&p, (&&&p).__harness_render()), "[1,2]");
        let pt = Point { x: 3 };
        let p = InputProbe(&pt);
        assert_eq!(rendered(&p, (&&&p).__harness_render()), "{\"x\":3}");
    }
}
