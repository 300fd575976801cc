//! Tokens for chains: `Chain { class, steps: &[Action::...] }`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::attr::{Class, ContractDecl, Step};

pub fn class(p: &TokenStream, c: Class) -> TokenStream {
    let v = format_ident!("{}", c.variant());
    quote!(#p::FailureClass::#v)
}

fn duration(p: &TokenStream, ms: u64) -> TokenStream {
    quote!(#p::core::time::Duration::from_millis(#ms))
}

fn step(p: &TokenStream, s: &Step) -> TokenStream {
    match s {
        Step::Retry { times, backoff } => {
            let mut fields = Vec::new();
            if let Some(ms) = backoff.initial_ms {
                let d = duration(p, ms);
                fields.push(quote!(initial: #d,));
            }
            if let Some(ms) = backoff.max_ms {
                let d = duration(p, ms);
                fields.push(quote!(max: #d,));
            }
            if let Some(m) = backoff.multiplier {
                fields.push(quote!(multiplier: #m,));
            }
            if let Some(j) = backoff.jitter {
                fields.push(quote!(jitter: #j,));
            }
            let backoff = if fields.is_empty() {
                quote!(#p::Backoff::DEFAULT)
            } else {
                quote!(#p::Backoff { #(#fields)* ..#p::Backoff::DEFAULT })
            };
            quote!(#p::Action::Retry { times: #times, backoff: #backoff })
        }
        Step::Reask { times } => quote!(#p::Action::Reask { times: #times }),
        Step::Fallback { model, provider } => {
            let provider = match provider {
                Some(v) => quote!(::core::option::Option::Some(#v)),
                None => quote!(::core::option::Option::None),
            };
            quote!(#p::Action::Fallback(#p::FallbackTarget { model: #model, provider: #provider }))
        }
        Step::Escalate => quote!(#p::Action::Escalate),
        Step::Default(_) => quote!(#p::Action::Default),
        Step::Fail => quote!(#p::Action::Fail),
    }
}

/// `&[Chain { .. }, ..]` in class order.
pub fn chains(p: &TokenStream, contracts: &[ContractDecl]) -> TokenStream {
    let mut sorted: Vec<&ContractDecl> = contracts.iter().collect();
    sorted.sort_by_key(|c| c.class);
    let items = sorted.iter().map(|c| {
        let class = class(p, c.class);
        let steps = c.steps.iter().map(|s| step(p, &s.step));
        quote!(#p::Chain { class: #class, steps: &[#(#steps),*] })
    });
    quote!(&[#(#items),*])
}

/// `Some(0.7)` / `None`.
pub fn threshold(contracts: &[ContractDecl]) -> TokenStream {
    match contracts
        .iter()
        .find(|c| c.class == Class::LowConfidence)
        .and_then(|c| c.below)
    {
        Some((t, _)) => quote!(::core::option::Option::Some(#t)),
        None => quote!(::core::option::Option::None),
    }
}

/// `[true, false, ..]` indexed by class.
pub fn covers(contracts: &[ContractDecl]) -> TokenStream {
    let flags = Class::ALL
        .iter()
        .map(|c| contracts.iter().any(|d| d.class == *c));
    quote!([#(#flags),*])
}
