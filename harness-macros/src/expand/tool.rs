//! `#[llm_tool(...)] fn name(args) -> Result<T, E>` → the function as written (argument docs and
//! `#[llm]` removed), a struct `name {}` that implements `Tool` (`name::tool()`), and a hidden
//! arguments struct deriving serde's `Deserialize` and schemars' `JsonSchema`, whose field docs
//! are the argument docs: the schema the model sees.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

use super::{allows, private, with_error};
use crate::ast::tool::{Tool, is_arg_attr};
use crate::check;
use crate::ctxt::{Ctxt, with_help};

pub fn tool(args: TokenStream, item: TokenStream) -> TokenStream {
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let not_a_fn = syn::parse2::<syn::Item>(item.clone()).is_ok();
            if !not_a_fn {
                return with_error(item, e);
            }
            let e = syn::Error::new(
                Span::call_site(),
                with_help(
                    "`#[llm_tool]` goes on a function",
                    "write `#[llm_tool(scope = \"orders:read\")] async fn name(arg: Type) -> Result<Output, ToolFailure> { ... }`",
                ),
            );
            let err = e.into_compile_error();
            return quote!(#err #item);
        }
    };
    let cx = Ctxt::new();
    let tool = Tool::from_ast(&cx, &f, args);
    if let Some(t) = &tool {
        check::tool(&cx, t);
    }
    let plain = plain_fn(&f);
    match (cx.check(), tool) {
        (Ok(()), Some(t)) => expand(&t, &plain),
        (Err(e), _) => {
            let err = e.into_compile_error();
            quote!(#plain #err)
        }
        (Ok(()), None) => unreachable!("an unusable signature is always reported"),
    }
}

/// The user's function without our attributes on its arguments.
fn plain_fn(f: &ItemFn) -> ItemFn {
    let mut f = f.clone();
    for input in &mut f.sig.inputs {
        if let syn::FnArg::Typed(pt) = input {
            pt.attrs.retain(|a| !is_arg_attr(a));
        }
    }
    f
}

fn expand(t: &Tool, plain: &ItemFn) -> TokenStream {
    let p = private(t.krate.as_ref());
    let allows = allows();
    let vis = t.vis;
    let ident = t.ident;
    let args_ident = format_ident!("__{}_tool_args", ident, span = Span::mixed_site());
    let serde_crate = quote!(#p::serde).to_string().replace(' ', "");
    let schemars_crate = quote!(#p::schemars).to_string().replace(' ', "");
    let names: Vec<_> = t.args.iter().map(|a| &a.ident).collect();
    let fields = t.args.iter().map(|a| {
        let (id, ty) = (&a.ident, &a.ty);
        let docs = a.docs.iter().map(|d| quote!(#[doc = #d]));
        quote!(#(#docs)* pub #id: #ty)
    });
    let output = t.output;
    let name = &t.name;
    let description = &t.description;
    let scope = t.scope.as_ref().map(|s| &s.value);
    let approval = t.approval;
    let idempotent = t.idempotent;
    let timeout_ms = t.timeout_ms;
    let rate = match t.rate {
        Some((n, s)) => quote!(::core::option::Option::Some((#n, #s))),
        None => quote!(::core::option::Option::None),
    };
    let trusted: Vec<String> = t
        .args
        .iter()
        .filter(|a| a.trusted)
        .map(|a| a.ident.to_string())
        .collect();
    let errors = &t.errors;
    let fn_ident = ident;
    let run = if t.is_async {
        quote!(#fn_ident(#(#names),*).await)
    } else {
        quote!(#fn_ident(#(#names),*))
    };
    let convert = quote_spanned!(t.item.sig.output.span()=>
        ::core::result::Result::map_err(__result, ::core::convert::Into::<#p::ToolFailure>::into)
    );
    let doc = format!(
        "The tool `{name}` (`#[llm_tool]`): `{ident}::tool()` goes in a `Toolbox`; its spec is `{ident}::spec()`."
    );
    quote! {
        #plain

        #[doc = #doc]
        #allows
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug, ::core::default::Default)]
        #vis struct #ident {}

        #[doc(hidden)]
        #allows
        #[derive(#p::serde::Deserialize, #p::schemars::JsonSchema)]
        #[serde(crate = #serde_crate)]
        #[schemars(crate = #schemars_crate)]
        #vis struct #args_ident {
            #(#fields,)*
        }

        #allows
        impl #ident {
            /// The tool, for a `Toolbox`.
            #vis const fn tool() -> Self {
                #ident {}
            }

            /// The tool's spec: name, description, argument schema, scope and limits.
            #vis fn spec() -> #p::ToolSpec {
                #p::tool_spec(
                    #name,
                    #description,
                    #p::tool_parameters::<#args_ident>(),
                    #scope,
                    #approval,
                    #rate,
                    #idempotent,
                    #timeout_ms,
                    &[#(#trusted),*],
                    &[#(#errors),*],
                )
            }
        }

        #[automatically_derived]
        #allows
        impl #p::Tool for #ident {
            type Args = #args_ident;
            type Output = #output;

            fn spec(&self) -> #p::ToolSpec {
                #ident::spec()
            }

            fn call(
                &self,
                args: Self::Args,
            ) -> #p::BoxFuture<'_, ::core::result::Result<Self::Output, #p::ToolFailure>> {
                ::std::boxed::Box::pin(async move {
                    let #args_ident { #(#names),* } = args;
                    let __result = #run;
                    #convert
                })
            }
        }
    }
}
