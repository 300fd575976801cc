//! Token generation. Only builds tokens from the model: every decision was made in `attr`, `ast`
//! and `check`.

mod chain;
mod doc;
mod output;
mod policy;
mod task;
mod tool;
mod version;

pub use output::derive_output;
pub use policy::policy;
pub use task::task;
pub use tool::tool;

use proc_macro2::TokenStream;
use quote::quote;

/// The runtime path: `::harness_core::__private`, or `<crate = ...>::__private`.
pub fn private(krate: Option<&syn::Path>) -> TokenStream {
    match krate {
        Some(p) => quote!(#p::__private),
        None => quote!(::harness_core::__private),
    }
}

/// `Some(v)` / `None`, fully qualified.
pub fn opt<T: quote::ToTokens>(v: Option<T>) -> TokenStream {
    match v {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// The user's item untouched, then syn's own error: what a macro emits when it cannot parse the
/// item at all, so the item still exists for the rest of the crate and for IDEs. Anchor:
/// tokio-macros `entry.rs` `token_stream_with_error`.
pub fn with_error(mut item: TokenStream, error: syn::Error) -> TokenStream {
    item.extend(error.into_compile_error());
    item
}

/// [`private`] with every token at `span`, for expressions whose errors should point at a user
/// token (the output type, the policy path).
pub fn private_spanned(krate: Option<&syn::Path>, span: proc_macro2::Span) -> TokenStream {
    match krate {
        Some(p) => {
            let p = respan(quote!(#p), span);
            quote::quote_spanned!(span=> #p::__private)
        }
        None => quote::quote_spanned!(span=> ::harness_core::__private),
    }
}

fn respan(ts: TokenStream, span: proc_macro2::Span) -> TokenStream {
    ts.into_iter()
        .map(|mut t| {
            if let proc_macro2::TokenTree::Group(g) = &t {
                let mut ng = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                ng.set_span(span);
                t = proc_macro2::TokenTree::Group(ng);
            } else {
                t.set_span(span);
            }
            t
        })
        .collect()
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
            // The companion struct is never constructed, so it has nothing to debug-print.
            missing_debug_implementations,
            // `pub` items on a private companion struct follow the task's own visibility.
            unreachable_pub,
        )]
    }
}
