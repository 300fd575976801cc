//! What the toolbox costs per call, excluding the tool's own time: a denied call (target ≤ 1 µs),
//! a call whose every check passes (ending at approval, so nothing runs), and a whole executed
//! call of a tool that answers at once (on a current-thread tokio runtime, for the timeout).
//!
//! `cargo bench -p harness-core --bench tools`

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use divan::{Bencher, black_box};
use harness_core::provider::{BoxFuture, ToolCall, ToolDefinition};
use harness_core::tools::{
    Dispatch, Grants, Provenance, Scope, Tool, ToolFailure, ToolSpec, Toolbox,
};
use serde_json::{Value, json};

fn main() {
    divan::main();
}

/// Runs a future that must not wait to completion, without a runtime.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the check waited"),
    }
}

struct Echo(ToolSpec);

impl Tool for Echo {
    type Args = Value;
    type Output = Value;
    fn spec(&self) -> ToolSpec {
        self.0.clone()
    }
    fn call(&self, args: Value) -> BoxFuture<'_, Result<Value, ToolFailure>> {
        Box::pin(async move { Ok(args) })
    }
}

fn spec(name: &str, scope: &str) -> ToolSpec {
    ToolSpec::new(
        name,
        "A tool.",
        json!({"type": "object", "properties": {"order_id": {"type": "string", "pattern": "^[A-Z]-[0-9]+$"},
               "cents": {"type": "integer", "minimum": 0}}, "required": ["order_id"], "additionalProperties": false}),
        Scope::new(scope).unwrap(),
    )
}

/// `lookup_order` (granted), `refund` (granted, needs approval), `delete_account` (not granted).
fn toolbox() -> (Toolbox, Vec<ToolDefinition>) {
    let specs = [
        spec("lookup_order", "orders:read"),
        spec("refund", "orders:write").approval(),
        spec("delete_account", "accounts:admin"),
    ];
    let offered = specs.iter().map(ToolSpec::definition).collect();
    let mut tb = Toolbox::new(Grants::new(["orders:*"]).unwrap());
    for s in specs {
        tb.add(Echo(s)).unwrap();
    }
    (tb, offered)
}

fn args() -> Value {
    json!({"order_id": "A-17", "cents": 500})
}

#[divan::bench_group(sample_count = 200, sample_size = 1000)]
mod denied {
    use super::*;

    /// A tool outside the agent's grants.
    #[divan::bench]
    fn out_of_scope(bencher: Bencher) {
        let (tb, offered) = toolbox();
        let call = ToolCall::new("c", "delete_account", args());
        let p = Provenance::new();
        bencher.bench(|| {
            let d = ready(tb.dispatch(black_box(&call), &offered, &p));
            assert!(matches!(d, Dispatch::Denied { .. }));
            d
        });
    }

    /// A tool that does not exist.
    #[divan::bench]
    fn unknown(bencher: Bencher) {
        let (tb, offered) = toolbox();
        let call = ToolCall::new("c", "transfer_funds", args());
        let p = Provenance::new();
        bencher.bench(|| ready(tb.dispatch(black_box(&call), &offered, &p)));
    }

    /// Arguments that fail the schema (validated, errors worded).
    #[divan::bench]
    fn invalid_arguments(bencher: Bencher) {
        let (tb, offered) = toolbox();
        let call = ToolCall::new("c", "lookup_order", json!({"order_id": 17}));
        let p = Provenance::new();
        bencher.bench(|| ready(tb.dispatch(black_box(&call), &offered, &p)));
    }
}

#[divan::bench_group(sample_count = 200, sample_size = 1000)]
mod permitted {
    use super::*;

    /// Every check passes (exists, offered, scope, schema), ending at approval: nothing runs.
    #[divan::bench]
    fn all_checks(bencher: Bencher) {
        let (tb, offered) = toolbox();
        let call = ToolCall::new("c", "refund", args());
        let p = Provenance::new();
        bencher.bench(|| {
            let d = ready(tb.dispatch(black_box(&call), &offered, &p));
            assert!(matches!(d, Dispatch::Pending(_)));
            d
        });
    }

    /// Checks, then the tool within its timeout: a tool that answers at once.
    #[divan::bench]
    fn executed(bencher: Bencher) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (tb, offered) = toolbox();
        let call = ToolCall::new("c", "lookup_order", args());
        let p = Provenance::new();
        bencher.bench(|| rt.block_on(tb.dispatch(black_box(&call), &offered, &p)));
    }
}
