//! The [`Tool`] trait (typed arguments and output) and its type-erased form the toolbox holds.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ToolError, ToolErrorKind, ToolFailure};
use super::spec::ToolSpec;
use crate::provider::BoxFuture;

/// A tool: a spec, and an async call with typed arguments. `#[llm_tool]` writes this impl for a
/// function; write it by hand for a tool with state (a database handle, a client).
///
/// The toolbox checks a call before `call` runs (the tool exists and was offered, its scope is
/// granted, the arguments fit the schema, trusted arguments hold trusted values, approval, rate)
/// and bounds it after (timeout, a panic caught).
pub trait Tool: Send + Sync + 'static {
    /// The arguments, read from the model's JSON.
    type Args: DeserializeOwned + Send + 'static;
    /// What the tool answers; serialized to JSON for the model.
    type Output: Serialize + Send + 'static;

    /// The tool's spec (name, schema, scope, limits).
    fn spec(&self) -> ToolSpec;

    /// Runs the tool.
    fn call(&self, args: Self::Args) -> BoxFuture<'_, Result<Self::Output, ToolFailure>>;
}

/// A tool behind JSON in and out: what the toolbox stores.
pub(crate) trait ErasedTool: Send + Sync {
    fn call_json(&self, name: &str, args: Value) -> BoxFuture<'_, Result<Value, ToolError>>;
}

impl<T: Tool> ErasedTool for T {
    fn call_json(&self, name: &str, args: Value) -> BoxFuture<'_, Result<Value, ToolError>> {
        let name = name.to_owned();
        let args: T::Args = match serde_json::from_value(args) {
            Ok(a) => a,
            Err(e) => {
                let e = ToolError::new(ToolErrorKind::InvalidArguments, &name, e.to_string());
                return Box::pin(async move { Err(e) });
            }
        };
        let running = self.call(args);
        Box::pin(async move {
            let out = running.await.map_err(|f| f.into_error(&name))?;
            serde_json::to_value(out).map_err(|e| {
                ToolError::new(
                    ToolErrorKind::Failed,
                    &name,
                    format!("its output could not be serialized: {e}"),
                )
            })
        })
    }
}

/// Polls a future, turning a panic into `Err(message)`.
pub(crate) struct CatchUnwind<F>(pub F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
