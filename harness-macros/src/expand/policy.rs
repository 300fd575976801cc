//! `#[llm_policy(...)] struct Name;` → the struct, unchanged, and `impl Policy for Name`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{allows, chain, private, with_error};
use crate::ast::{self, Policy};
use crate::check;
use crate::ctxt::{Ctxt, with_help};

pub fn policy(args: TokenStream, item: TokenStream) -> TokenStream {
    let input: syn::DeriveInput = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(e) if syn::parse2::<syn::Item>(item.clone()).is_err() => return with_error(item, e),
        Err(_) => {
            let e = syn::Error::new_spanned(
                &item,
                with_help(
                    "`#[llm_policy]` goes on a struct",
                    "declare the policy as a unit struct: `#[llm_policy(on_timeout = retry(2), ...)] pub struct Standard;`",
                ),
            );
            let err = e.into_compile_error();
            return quote!(#err #item);
        }
    };
    let cx = Ctxt::new();
    let policy = Policy::from_ast(&cx, &input, args);
    check::policy(&cx, &policy);
    if let Err(e) = cx.check() {
        let err = e.into_compile_error();
        return quote!(#err #item);
    }
    expand(&policy, &item)
}

fn expand(policy: &Policy, item: &TokenStream) -> TokenStream {
    let p = private(policy.krate.as_ref());
    let ident = &policy.item.ident;
    let name = ident.to_string();
    let chains = chain::chains(&p, &policy.contracts);
    let threshold = chain::threshold(&policy.contracts);
    let covers = chain::covers(&policy.contracts);
    let n = harness_spec::FailureClass::ALL.len();
    let allows = allows();
    let cfgs = ast::cfg_attrs(&policy.item.attrs);
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
            const COVERS: [bool; #n] = #covers;
        }

        #(#cfgs)*
        const _: () = {
            #p::register!(#p::Linked::Policy(
                &<#ident as #p::Policy>::POLICY,
                ::core::module_path!(),
            ));
        };
    }
}
