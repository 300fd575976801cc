//! Procedural macros for harness. Use them through `harness_core`.
use proc_macro::TokenStream;

/// Declares a harnessed LLM task.
#[proc_macro_attribute]
pub fn llm_task(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}

/// Declares a reusable failure policy.
#[proc_macro_attribute]
pub fn llm_policy(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}

/// Derives `LlmOutput`.
#[proc_macro_derive(LlmOutput, attributes(llm))]
pub fn derive_llm_output(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
