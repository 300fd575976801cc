//! `#[llm_policy(...)] struct Name;` → the struct, unchanged, and `impl Policy for Name`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{allows, chain, private};
use crate::attr::{self, Site};
use crate::check;
use crate::ctxt::Ctxt;

pub fn policy(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let parsed: syn::Result<syn::DeriveInput> = syn::parse2(item.clone());
    let input = match parsed {
        Ok(i) => i,
        Err(_) => {
            let e = syn::Error::new_spanned(
                &item,
                crate::ctxt::with_help(
                    "`#[llm_policy]` goes on a struct",
                    "declare the policy as a unit struct: `#[llm_policy(on_timeout = retry(2), ...)] pub struct Standard;`",
                ),
            );
            let err = e.into_compile_error();
            return quote!(#err #item);
        }
    };
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "a policy cannot be generic",
            "declare it as a plain unit struct: `pub struct Standard;`",
        );
    }
    let args = attr::parse_task_args(&cx, args, Site::Policy);
    check::policy(&cx, &input.ident, &args);
    if let Err(e) = cx.check() {
        let err = e.into_compile_error();
        return quote!(#err #item);
    }
    let p = private(args.krate.as_ref().map(|k| &k.value));
    let ident = &input.ident;
    let name = ident.to_string();
    let chains = chain::chains(&p, &args.contracts);
    let threshold = chain::threshold(&args.contracts);
    let covers = chain::covers(&args.contracts);
    let allows = allows();
    let cfgs = crate::ast::cfg_attrs(&input.attrs);
    quote! {
        #item

        #(#cfgs)*
        #allows
        #[automatically_derived]
        impl #p::Policy for #ident {
            const POLICY: #p::PolicySet = #p::PolicySet {
                name: #name,
                chains: #chains,
                low_confidence_below: #threshold,
            };
            const COVERS: [bool; 6] = #covers;
        }
    }
}
