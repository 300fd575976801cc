//! Procedural macros for harness. Use them through `harness_core`, which re-exports them; the
//! generated code names the runtime only as `::harness_core::__private` (or the path given with
//! `crate = ...`). See `docs/macros.md` for the grammar, what is generated and every compile error.

mod ast;
mod attr;
mod check;
mod contract;
mod ctxt;
mod expand;
mod util;

use proc_macro::TokenStream;

/// Declares a harnessed LLM task: a contract (model, prompt, limits, what happens on every failure
/// class) checked at compile time, and a function that runs it.
#[proc_macro_attribute]
pub fn llm_task(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::task(args.into(), input.into()).into()
}

/// Declares a reusable set of failure contracts on a unit struct; tasks use it with `policy = Name`.
#[proc_macro_attribute]
pub fn llm_policy(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::policy(args.into(), input.into()).into()
}

/// Turns a function into a tool: `#[llm_tool(scope = "orders:read")]` on
/// `async fn name(arg: Type, ...) -> Result<Output, ToolFailure>`. The argument schema comes from
/// the argument types (doc comments on the function and its arguments become descriptions);
/// optional `approval`, `rate = "10/min"`, `idempotent`, `timeout = "5s"`, `name = "..."`,
/// `errors = [...]`, and `#[llm(trusted)]` on an argument. See `docs/tools.md`.
#[proc_macro_attribute]
pub fn llm_tool(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::tool(args.into(), input.into()).into()
}

/// Derives `LlmOutput`: JSON schema (doc comments become descriptions), deserialisation, and the
/// `#[llm(...)]` rules. `serde` and `schemars` attributes on the type are honoured.
#[proc_macro_derive(LlmOutput, attributes(llm, serde, schemars))]
pub fn derive_llm_output(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive_output(input).into()
}
