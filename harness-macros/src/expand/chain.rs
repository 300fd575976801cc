//! Tokens for chains: `Chain { class, steps: &[Action::...] }`.

use harness_spec::FailureClass;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::contract::{Backoff, Contracts, Source, SpannedStep, Step};

/// `FailureClass::RateLimited`: the variant's name is its `Debug` form.
pub fn class(p: &TokenStream, c: FailureClass) -> TokenStream {
    let v = format_ident!("{c:?}");
    quote!(#p::FailureClass::#v)
}

fn duration(p: &TokenStream, ms: u64) -> TokenStream {
    quote!(#p::core::time::Duration::from_millis(#ms))
}

/// `Backoff::DEFAULT`, or the fields that were written over it.
fn backoff(p: &TokenStream, b: &Backoff) -> TokenStream {
    let mut fields = Vec::new();
    if let Some(ms) = b.initial_ms {
        let d = duration(p, ms);
        fields.push(quote!(initial: #d,));
    }
    if let Some(ms) = b.max_ms {
        let d = duration(p, ms);
        fields.push(quote!(max: #d,));
    }
    if let Some(m) = b.multiplier {
        fields.push(quote!(multiplier: #m,));
    }
    if let Some(j) = b.jitter {
        fields.push(quote!(jitter: #j,));
    }
    if fields.is_empty() {
        quote!(#p::Backoff::DEFAULT)
    } else {
        quote!(#p::Backoff { #(#fields)* ..#p::Backoff::DEFAULT })
    }
}

fn step(p: &TokenStream, class: FailureClass, s: &Step) -> TokenStream {
    match s {
        // For a source, `fallback("name")` names another registered source.
        Step::Fallback { model, .. } if class.is_context() => {
            quote!(#p::Action::FallbackSource { source: #model })
        }
        Step::Retry { times, backoff: b } => {
            let backoff = backoff(p, b);
            quote!(#p::Action::Retry { times: #times, backoff: #backoff })
        }
        Step::Reask { times } => quote!(#p::Action::Reask { times: #times }),
        Step::Fallback { model, provider } => {
            let provider = super::opt(provider.as_ref());
            quote!(#p::Action::Fallback(#p::FallbackTarget { model: #model, provider: #provider }))
        }
        Step::Escalate => quote!(#p::Action::Escalate),
        Step::Default(_) => quote!(#p::Action::Default),
        Step::Fail => quote!(#p::Action::Fail),
        Step::Proceed => quote!(#p::Action::Proceed),
    }
}

/// `&[Action::.., ..]` for the steps of a chain of `class`.
pub fn steps(p: &TokenStream, class: FailureClass, steps: &[SpannedStep]) -> TokenStream {
    let steps = steps.iter().map(|s| step(p, class, &s.step));
    quote!(&[#(#steps),*])
}

/// `&[SourceSpec::new("kb", 800).with_limit(5)..., ..]` in declaration order.
pub fn sources(p: &TokenStream, sources: &[Source]) -> TokenStream {
    let items = sources.iter().map(|s| {
        let name = s.name.to_string();
        let budget = s.budget;
        let mut spec = quote!(#p::SourceSpec::new(#name, #budget));
        if let Some(limit) = s.limit {
            spec = quote!(#spec.with_limit(#limit));
        }
        if let Some(ms) = s.timeout_ms {
            let d = duration(p, ms);
            spec = quote!(#spec.with_timeout(#d));
        }
        if let Some(section) = &s.section {
            spec = quote!(#spec.with_section(#section));
        }
        if let Some(chain) = &s.on_unavailable {
            let steps = steps(p, FailureClass::ContextUnavailable, chain);
            spec = quote!(#spec.with_on_unavailable(#steps));
        }
        spec
    });
    quote!(&[#(#items),*])
}

/// `&[Chain { .. }, ..]` in class order.
pub fn chains(p: &TokenStream, contracts: &Contracts) -> TokenStream {
    let items = contracts.iter().map(|c| {
        let class = class(p, c.class);
        let steps = steps(p, c.class, &c.steps);
        quote!(#p::Chain { class: #class, steps: #steps })
    });
    quote!(&[#(#items),*])
}

/// `Some(0.7)` / `None`.
pub fn threshold(contracts: &Contracts) -> TokenStream {
    super::opt(contracts.threshold())
}

/// `[true, false, ..]` indexed by class.
pub fn covers(contracts: &Contracts) -> TokenStream {
    let flags = contracts.covers();
    quote!([#(#flags),*])
}
