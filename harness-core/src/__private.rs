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
pub use crate::engine::{DefaultFn, Harness, Inputs};
pub use crate::outcome::TaskResult;
pub use crate::output::{FieldPath, LlmOutput, ValidationErrors, rules};
