//! Token generation. Only builds tokens: every decision was made in `attr`, `ast` and `check`.

mod chain;
mod output;
mod policy;
mod task;

pub use output::derive_output;
pub use policy::policy;
pub use task::task;

use proc_macro2::TokenStream;
use quote::quote;

/// The runtime path: `::harness_core::__private`, or `<crate = ...>::__private`.
pub fn private(krate: Option<&syn::Path>) -> TokenStream {
    match krate {
        Some(p) => quote!(#p::__private),
        None => quote!(::harness_core::__private),
    }
}

/// The one list of lints generated items allow, each for a reason.
pub fn allows() -> TokenStream {
    quote! {
        #[allow(
            // The companion struct of a task shares the function's snake_case name.
            non_camel_case_types,
            // Generated helpers may be unused in some shapes (no defaults, no callers of `with`).
            dead_code,
            // Generated code is not the user's to restyle.
            clippy::all,
            clippy::pedantic,
            unused_qualifications,
            // `#[automatically_derived]`-style items never need docs of their own.
            missing_docs,
        )]
    }
}
