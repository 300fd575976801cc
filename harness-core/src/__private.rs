//! Paths for generated code. Generated code names the runtime only through this module.

pub use ::core;
pub use ::schemars;
pub use ::serde;
pub use ::serde_json;
pub use ::std;

pub use crate::contract::{
    Action, Backoff, Chain, FailureClass, FallbackTarget, InputSpec, OutputSpec, Params, Policy,
    PolicySet, TaskContract,
};
pub use crate::engine::{Context, DefaultFn, Harness, Inputs, IntoContext};
pub use crate::outcome::TaskResult;
pub use crate::output::{FieldPath, LlmOutput, ValidationErrors, rules};

use std::fmt::Display;

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

/// The contract emitted when `#[llm_task]` reports errors, so code naming `task::CONTRACT` does not
/// add errors of its own.
pub const fn stub_contract(name: &'static str, module: &'static str) -> TaskContract {
    TaskContract {
        name,
        module,
        description: "",
        version: "",
        model: None,
        provider: None,
        system: None,
        prompt: None,
        inputs: &[],
        output: OutputSpec {
            type_name: "",
            has_confidence: false,
            schema: no_schema,
        },
        timeout: core::time::Duration::from_secs(30),
        deadline: None,
        chains: &[],
        policy: None,
        low_confidence_below: None,
        params: Params {
            temperature: None,
            max_tokens: None,
            seed: None,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Compile-time checks of confidence contracts

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

/// Requires `T: HasConfidenceField` (rustc reports it at the span of the call).
pub const fn assert_has_confidence<T: HasConfidenceField + ?Sized>() {}

/// Requires `T: LacksConfidenceField`.
pub const fn assert_lacks_confidence<T: LacksConfidenceField + ?Sized>() {}

/// Requires `T: LlmOutput`.
pub const fn assert_output<T: LlmOutput + ?Sized>() {}

/// Requires `T: Policy`.
pub const fn assert_policy<T: Policy + ?Sized>() {}

/// `Policy::COVERS[class]` as a const-evaluable function (for per-class assertions).
pub const fn policy_covers<P: Policy + ?Sized>(class: usize) -> bool {
    P::COVERS[class]
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Point {
        x: i32,
    }

    #[test]
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
