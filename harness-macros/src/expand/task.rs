//! `#[llm_task(...)] async fn name(args) -> TaskResult<Out>;` → the function, a companion struct
//! `name` holding `CONTRACT` and `with(&harness, ..)`, and compile-time checks of the contract
//! against the output type.

use harness_spec::FailureClass;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, Pat, Path, Signature};

use super::{allows, chain, doc, opt, private, private_spanned, version, with_error};
use crate::ast::task::{Input, Unusable, output_span, stub_fn};
use crate::ast::{self, Task, TaskFn};
use crate::attr::chain::example;
use crate::check;
use crate::ctxt::{Ctxt, with_help};
use crate::util::type_string;

pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    let f: TaskFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => return parse_failure(item, e),
    };
    let cx = Ctxt::new();
    let task = Task::from_ast(&cx, &f, args);
    if let Ok(t) = &task {
        check::task(&cx, t);
    }
    match (cx.check(), task) {
        (Ok(()), Ok(t)) => expand(&t),
        (Err(e), task) => {
            let err = e.into_compile_error();
            let stubs = stubs(&f, &task);
            quote!(#err #stubs)
        }
        (Ok(()), Err(_)) => unreachable!("an unusable signature is always reported"),
    }
}

/// An item that is not a function gets our own error (where the attribute goes); a function
/// syn cannot parse (a syntax error in its body, say) is emitted as written with syn's error, so
/// the rest of the crate and IDEs still see it.
fn parse_failure(item: TokenStream, e: syn::Error) -> TokenStream {
    let not_a_fn = matches!(
        syn::parse2::<syn::Item>(item.clone()),
        Ok(i) if !matches!(i, syn::Item::Fn(_) | syn::Item::Verbatim(_))
    );
    if !not_a_fn {
        return with_error(item, e);
    }
    let e = syn::Error::new(
        Span::call_site(),
        with_help(
            "`#[llm_task]` goes on an `async fn`",
            "write `#[llm_task(...)] async fn name(arg: &str) -> TaskResult<Output>;`",
        ),
    );
    let err = e.into_compile_error();
    quote!(#err #item)
}

/// The user's signature with `mut` removed from the arguments (it belongs to `__prepare`).
fn public_sig(sig: &Signature) -> Signature {
    let mut sig = sig.clone();
    for arg in &mut sig.inputs {
        if let FnArg::Typed(pt) = arg {
            if let Pat::Ident(pi) = &mut *pt.pat {
                pi.mutability = None;
            }
        }
    }
    sig
}

fn input_params(inputs: &[Input], keep_mut: bool) -> Vec<TokenStream> {
    inputs
        .iter()
        .map(|i| {
            let ident = &i.ident;
            let ty = &i.ty;
            if keep_mut && i.mutable {
                quote!(mut #ident: #ty)
            } else {
                quote!(#ident: #ty)
            }
        })
        .collect()
}

/// What the user sees (and callers can still name) when the attribute has errors: the function,
/// the companion struct with a placeholder contract, and `with`, all with `unimplemented!()` bodies.
fn stubs(f: &TaskFn, task: &Result<Task, Unusable>) -> TokenStream {
    let krate = match task {
        Ok(t) => t.krate.as_ref(),
        Err(u) => u.krate.as_ref(),
    };
    let p = private(krate);
    let func = stub_fn(f);
    let vis = &f.vis;
    let name = &f.sig.ident;
    let name_str = name.to_string();
    let allows = allows();
    let cfgs = ast::cfg_attrs(&f.attrs);
    let with = task.as_ref().ok().map(|t| {
        let params = input_params(&t.inputs, false);
        let ret = &f.sig.output;
        let generics = &f.sig.generics;
        let harness = Ident::new("harness", Span::mixed_site());
        quote! {
            #[allow(unused_variables)]
            pub async fn with #generics (#harness: &#p::Harness, #(#params),*) #ret {
                ::core::unimplemented!()
            }
        }
    });
    quote! {
        #func
        #(#cfgs)*
        #allows
        #vis struct #name {}
        #(#cfgs)*
        #allows
        impl #name {
            pub const CONTRACT: #p::TaskContract = #p::stub_contract(#name_str, ::core::module_path!());
            #with
        }
    }
}

/// The names of generated locals, at the mixed site so they never meet the user's.
struct Locals {
    inputs: Ident,
    context: Ident,
    harness: Ident,
    probe: Ident,
}

impl Locals {
    fn new() -> Locals {
        let at = |name| Ident::new(name, Span::mixed_site());
        Locals {
            inputs: at("inputs"),
            context: at("context"),
            harness: at("harness"),
            probe: at("probe"),
        }
    }
}

fn expand(t: &Task) -> TokenStream {
    let p = private(t.krate.as_ref());
    let version = version::version(t);
    let defaults_arg = defaults_arg(t, &p);
    let function = function(t, &version, &defaults_arg);
    let companion = companion(t, &p, &version, &defaults_arg);
    let cfgs = ast::cfg_attrs(&t.item.attrs);
    let checks = checks(t);
    let name = t.name();
    quote! {
        #function

        #companion

        #(#cfgs)*
        const _: () = {
            #(#checks)*
            #p::register!(#p::Linked::Task(&#name::CONTRACT));
        };
    }
}

/// `<Out as __private::TaskOutput>`, every token at the output type, so a type that is not an
/// output is reported once, there.
fn output_of(t: &Task) -> TokenStream {
    let out = &t.output;
    let span = output_span(out);
    let p_out = private_spanned(t.krate.as_ref(), span);
    quote_spanned!(span=> <#out as #p_out::TaskOutput>)
}

/// `<Policy as __private::TaskPolicy>`, at the policy path.
fn policy_of(t: &Task, path: &Path) -> TokenStream {
    let p_pol = private_spanned(t.krate.as_ref(), path.span());
    quote_spanned!(path.span()=> <#path as #p_pol::TaskPolicy>)
}

/// The user's function, documented with its contract, running on the process-wide harness.
fn function(t: &Task, version: &str, defaults_arg: &TokenStream) -> TokenStream {
    let name = t.name();
    let vis = &t.item.vis;
    let (docs, other_attrs) = ast::split_docs(&t.item.attrs);
    let contract_doc = doc::contract_doc(t, version);
    let fn_sig = public_sig(&t.item.sig);
    let output_of = output_of(t);
    let run_global = quote_spanned!(output_span(&t.output)=> (#output_of::OPS.run_global));
    let Locals {
        inputs, context, ..
    } = Locals::new();
    let args = t.inputs.iter().map(|i| &i.ident);
    quote! {
        #(#other_attrs)*
        #(#docs)*
        #contract_doc
        #vis #fn_sig {
            let (#inputs, #context) = #name::__prepare(#(#args),*).await;
            #run_global(&#name::CONTRACT, #inputs, #context, #defaults_arg).await
        }
    }
}

/// The companion struct `name` and its `CONTRACT`, `with`, `defaults`, `__prepare`, `__default`.
fn companion(t: &Task, p: &TokenStream, version: &str, defaults_arg: &TokenStream) -> TokenStream {
    let name = t.name();
    let name_str = name.to_string();
    let vis = &t.item.vis;
    let cfgs = ast::cfg_attrs(&t.item.attrs);
    let allows = allows();
    let struct_doc = format!(
        "The contract of [`{name_str}`](fn@{name_str}) (`{name_str}::CONTRACT`) and a way to run it on an explicit harness (`{name_str}::with`)."
    );
    let contract = contract(t, p, version);
    let with = with(t, p, defaults_arg);
    let out = &t.output;
    let prepare = prepare(t, p);
    let default_fn = default_fn(t, p);
    quote! {
        #(#cfgs)*
        #[doc = #struct_doc]
        #allows
        #vis struct #name {}

        #(#cfgs)*
        #allows
        impl #name {
            /// The task's contract, as data.
            pub const CONTRACT: #p::TaskContract = #contract;

            #with

            /// The task's `default(...)` values by failure class, for tools that run the contract
            /// themselves (drills, evaluation); `None` when the contract has no `default` step.
            pub fn defaults() -> ::core::option::Option<#p::DefaultFn<'static, #out>> {
                #defaults_arg
            }

            #prepare

            #default_fn
        }
    }
}

/// The `TaskContract` value, through `__private::ContractFields` (the contract is non-exhaustive).
fn contract(t: &Task, p: &TokenStream, version: &str) -> TokenStream {
    let name_str = t.name().to_string();
    let description = &t.description;
    let input_specs = t.inputs.iter().map(|i| {
        let n = i.ident.to_string();
        let ty = type_string(&i.ty);
        quote!(#p::InputSpec { name: #n, rust_type: #ty })
    });
    let output_of = output_of(t);
    let output_spec = quote_spanned!(output_span(&t.output)=> #output_of::OPS.spec);
    let policy = match &t.policy {
        Some(path) => {
            let policy_of = policy_of(t, path);
            quote_spanned!(path.span()=> ::core::option::Option::Some(#policy_of::DATA.policy))
        }
        None => quote!(::core::option::Option::None),
    };
    let ms = |ms: u64| quote!(#p::core::time::Duration::from_millis(#ms));
    let timeout = ms(t.limits.timeout_ms);
    let deadline = opt(t.limits.deadline_ms.map(ms));
    let (model, provider) = (opt(t.model.as_ref()), opt(t.provider.as_ref()));
    let system = opt(t.system.as_ref());
    let prompt = opt(t.prompt.as_ref().map(|p| p.template.value()));
    let chains = chain::chains(p, &t.contracts);
    let with_sources = (!t.sources.is_empty()).then(|| {
        let sources = chain::sources(p, &t.sources);
        quote!(.with_sources(#sources))
    });
    // `&PLAN` at the path, so a path that is not a `ContextPlan` is reported there.
    let with_plan = t
        .plan
        .as_ref()
        .map(|path| quote_spanned!(path.span()=> .with_plan(&#path)));
    let below = chain::threshold(&t.contracts);
    let temperature = opt(t.params.temperature);
    let max_tokens = opt(t.params.max_tokens);
    let seed = opt(t.params.seed);
    let denied = t.repairs_deny.iter().map(|k| {
        let variant = proc_macro2::Ident::new(&format!("{k:?}"), proc_macro2::Span::call_site());
        quote!(#p::RepairKind::#variant)
    });
    quote! {
        #p::ContractFields {
            name: #name_str,
            module: ::core::module_path!(),
            description: #description,
            version: #version,
            model: #model,
            provider: #provider,
            system: #system,
            prompt: #prompt,
            inputs: &[#(#input_specs),*],
            output: #output_spec,
            timeout: #timeout,
            deadline: #deadline,
            chains: #chains,
            policy: #policy,
            low_confidence_below: #below,
            denied_repairs: &[#(#denied),*],
            params: #p::Params {
                temperature: #temperature,
                max_tokens: #max_tokens,
                seed: #seed,
            },
        }
        .build()
        #with_sources
        #with_plan
    }
}

/// `with(&harness, args)`: the task on an explicit harness.
fn with(t: &Task, p: &TokenStream, defaults_arg: &TokenStream) -> TokenStream {
    let sig = &t.item.sig;
    let (generics, where_clause, ret) = (&sig.generics, &sig.generics.where_clause, &sig.output);
    let params = input_params(&t.inputs, false);
    let args = t.inputs.iter().map(|i| &i.ident);
    let output_of = output_of(t);
    let run = quote_spanned!(output_span(&t.output)=> (#output_of::OPS.run));
    let Locals {
        inputs,
        context,
        harness,
        ..
    } = Locals::new();
    quote! {
        /// Runs the task on `harness` instead of the process-wide one.
        pub async fn with #generics (#harness: &#p::Harness, #(#params),*) #ret #where_clause {
            let (#inputs, #context) = Self::__prepare(#(#args),*).await;
            #run(#harness, &Self::CONTRACT, #inputs, #context, #defaults_arg).await
        }
    }
}

/// `__prepare(args)`: the inputs rendered for the prompt, and the body's context if there is one.
fn prepare(t: &Task, p: &TokenStream) -> TokenStream {
    let sig = &t.item.sig;
    let (generics, where_clause) = (&sig.generics, &sig.generics.where_clause);
    let params = input_params(&t.inputs, true);
    let Locals {
        inputs,
        context,
        probe,
        ..
    } = Locals::new();
    let renders = t.inputs.iter().map(|i| {
        let ident = &i.ident;
        let n = ident.to_string();
        let ty_span = i.ty.span();
        let p_ty = private_spanned(t.krate.as_ref(), ty_span);
        let probe_at = Ident::new("probe", Span::mixed_site().located_at(ty_span));
        let render = quote_spanned! {ty_span=>
            #p_ty::rendered(&#probe_at, (&&&#probe_at).__harness_render())
        };
        quote!((#n, { let #probe = #p::InputProbe(&#ident); #render }))
    });
    let context_expr = match t.body {
        Some(body) => {
            let system = opt(t.system.as_ref());
            quote! {
                ::core::option::Option::Some(#p::body_context(#system, async move #body.await))
            }
        }
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #[doc(hidden)]
        async fn __prepare #generics (#(#params),*) -> (#p::Inputs, ::core::option::Option<#p::Context>) #where_clause {
            #[allow(unused_imports)]
            use #p::{RenderDisplay as _, RenderJson as _, RenderNone as _};
            let #inputs: #p::Inputs = #p::std::vec![#(#renders),*];
            let #context = #context_expr;
            (#inputs, #context)
        }
    }
}

/// Whether any chain has a `default(expr)` step.
fn has_defaults(t: &Task) -> bool {
    t.contracts.iter().any(|c| c.default_value().is_some())
}

/// The defaults argument of `run`: `Some(&name::__default)`, or `None`.
fn defaults_arg(t: &Task, p: &TokenStream) -> TokenStream {
    if !has_defaults(t) {
        return quote!(::core::option::Option::None);
    }
    let name = t.name();
    let out = &t.output;
    quote!(::core::option::Option::Some(&#name::__default as #p::DefaultFn<'_, #out>))
}

/// `__default(class)`: each `default(expr)` value, type-checked at `expr` against the output.
fn default_fn(t: &Task, p: &TokenStream) -> TokenStream {
    if !has_defaults(t) {
        return quote!();
    }
    let out = &t.output;
    let value = Ident::new("value", Span::mixed_site());
    let arms = t.contracts.iter().filter_map(|c| {
        let e = c.default_value()?;
        let class = chain::class(p, c.class);
        Some(quote!(#class => ::core::option::Option::Some({ let #value: #out = #e; #value }),))
    });
    let class_ident = Ident::new("class", Span::mixed_site());
    quote! {
        #[doc(hidden)]
        fn __default(#class_ident: #p::FailureClass) -> ::core::option::Option<#out> {
            #[allow(unreachable_patterns)]
            match #class_ident {
                #(#arms)*
                _ => ::core::option::Option::None,
            }
        }
    }
}

/// Compile-time checks against the output type and the policy. Each is a `const` that panics
/// with a message naming the task; they go through `TaskOutput`/`TaskPolicy` so that a type that
/// is not an output (or a policy) is reported once.
fn checks(t: &Task) -> Vec<TokenStream> {
    let name = t.name();
    let out = type_string(&t.output);
    let output_of = output_of(t);
    let has_conf = quote_spanned!(output_span(&t.output)=> #output_of::OPS.has_confidence);
    let low_conf = t.contracts.get(FailureClass::LowConfidence);
    let example = example(FailureClass::LowConfidence).trim_end_matches(',');
    let mut checks = Vec::new();
    if let Some(c) = low_conf {
        checks.push(panic_at(
            c.key.span(),
            quote!(!#has_conf),
            format!("task `{name}` declares `on_low_confidence`, but its output `{out}` has no confidence field"),
            format!("remove `on_low_confidence(..)`, or add `#[llm(confidence)] confidence: f64` to `{out}`"),
        ));
    }
    match &t.policy {
        None if low_conf.is_none() => checks.push(panic_at(
            output_span(&t.output),
            has_conf,
            format!("task `{name}` has no contract for `on_low_confidence`, and its output `{out}` has a confidence field"),
            format!("add `{example}` to `#[llm_task(...)]`"),
        )),
        None => {}
        Some(path) => checks.extend(policy_checks(t, path, &has_conf)),
    }
    checks
}

/// One check per class the task leaves to its policy: the policy must cover it.
fn policy_checks(t: &Task, path: &Path, has_conf: &TokenStream) -> Vec<TokenStream> {
    let (name, out) = (t.name(), type_string(&t.output));
    let pspan = path.span();
    let pname = quote!(#path).to_string().replace(' ', "");
    let policy_of = policy_of(t, path);
    let covered = |class: FailureClass| {
        let i = class.index();
        quote_spanned!(pspan=> #policy_of::DATA.covers[#i])
    };
    let mut checks = Vec::new();
    for class in FailureClass::ALWAYS {
        if t.contracts.get(class).is_some() {
            continue;
        }
        let covered = covered(class);
        checks.push(panic_at(
            pspan,
            quote!(!#covered),
            format!(
                "task `{name}` has no contract for `{}`, and policy `{pname}` does not declare one",
                class.attribute_key()
            ),
            format!(
                "add `{}` to the task or to the policy",
                example(class).trim_end_matches(',')
            ),
        ));
    }
    let unavailable = FailureClass::ContextUnavailable;
    if t.contracts.get(unavailable).is_none() {
        for s in t.sources.iter().filter(|s| s.on_unavailable.is_none()) {
            let i = unavailable.index();
            let covered = quote_spanned!(s.name.span()=> #policy_of::DATA.covers[#i]);
            checks.push(panic_at(
                s.name.span(),
                quote!(!#covered),
                format!(
                    "source `{}` of task `{name}` has no contract for `context_unavailable`, and policy `{pname}` does not declare one",
                    s.name
                ),
                format!(
                    "add `on_unavailable = retry(1).then(proceed)` to the source, or `{}` to the task or the policy",
                    example(unavailable).trim_end_matches(',')
                ),
            ));
        }
    }
    if t.contracts.get(FailureClass::LowConfidence).is_none() {
        let covered = covered(FailureClass::LowConfidence);
        let example = example(FailureClass::LowConfidence).trim_end_matches(',');
        checks.push(panic_at(
            pspan,
            quote!(#has_conf && !#covered),
            format!("task `{name}` has no contract for `on_low_confidence`, its output `{out}` has a confidence field, and policy `{pname}` does not declare one"),
            format!("add `{example}` to the task or to the policy"),
        ));
    }
    checks
}

/// `const _: () = if cond { panic!("msg\n\nhelp: ..") };` at `span`.
fn panic_at(span: Span, cond: TokenStream, msg: String, help: String) -> TokenStream {
    let msg = escape_braces(&with_help(msg, help));
    quote_spanned!(span=> const _: () = if #cond { ::core::panic!(#msg) };)
}

/// `{` → `{{` so a message can be a `panic!` format string.
fn escape_braces(s: &str) -> String {
    s.replace('{', "{{").replace('}', "}}")
}

#[cfg(test)]
mod tests {
    use quote::quote;

    fn expand(args: proc_macro2::TokenStream, prompt: &str) -> String {
        let item = quote! {
            /// Classifies one review.
            ///
            /// More text.
            async fn classify(review: &str) -> TaskResult<Sentiment>;
        };
        let args = quote!(prompt = #prompt, #args);
        super::task(args, item).to_string()
    }

    fn contracts() -> proc_macro2::TokenStream {
        quote! {
            timeout = "20s",
            on_timeout = retry(2),
            on_rate_limited = retry(5, initial = "500ms"),
            on_provider_error = retry(2).then(fallback("gpt-4o-mini")),
            on_invalid_output = reask(2).then(fail),
            on_refusal = escalate,
            on_low_confidence(below = 0.7) = reask(1).then(escalate),
        }
    }

    fn version(out: &str) -> String {
        let at = out.find("version :").expect("a version field");
        out[at..].split('"').nth(1).unwrap().to_owned()
    }

    #[test]
    fn docs_carry_the_contract_table() {
        let out = expand(contracts(), "Review: {review}");
        assert!(!out.contains("compile_error"), "{out}");
        for needle in [
            "# Contract",
            "| timeout | 20s per attempt |",
            "| inputs | `review: &str` |",
            "| output | `Sentiment` |",
            "| timeout | `retry(2)` |",
            "| rate_limited | `retry(5, initial = \\\"500ms\\\")` |",
            "| provider_error | `retry(2).then(fallback(\\\"gpt-4o-mini\\\"))` |",
            "| low_confidence (below 0.7) | `reask(1).then(escalate)` |",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in {out}");
        }
        assert!(
            out.contains("description : \"Classifies one review.\""),
            "{out}"
        );
    }

    #[test]
    fn sources_move_the_version_and_reach_the_contract_and_its_docs() {
        let with = |source: proc_macro2::TokenStream| {
            let base = contracts();
            expand(quote!(#source, #base), "Review: {review}")
        };
        let plain = version(&expand(contracts(), "Review: {review}"));
        let kb = with(quote!(source(kb, budget = 800, on_unavailable = proceed)));
        assert!(!kb.contains("compile_error"), "{kb}");
        let bigger = with(quote!(source(kb, budget = 900, on_unavailable = proceed)));
        let (a, b) = (version(&kb), version(&bigger));
        assert_ne!(a, plain);
        assert_ne!(a, b);
        for needle in [
            "SourceSpec :: new (\"kb\" , 800u32)",
            "with_on_unavailable (& [",
            "Action :: Proceed",
            "| `kb` | 800 | 5 | 2s | `kb` | `proceed` |",
        ] {
            assert!(kb.contains(needle), "missing {needle:?} in {kb}");
        }
    }

    #[test]
    fn the_version_is_stable_and_follows_the_prompt() {
        let a = version(&expand(contracts(), "Review: {review}"));
        let b = version(&expand(contracts(), "Review: {review}"));
        let c = version(&expand(contracts(), "Rate: {review}"));
        assert_eq!(a.len(), 16);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// Identical contracts must keep identical versions across releases of the macro: these
    /// move only on purpose (last: `output_notation=notation-1`, the prompt's compact rendering
    /// of the output type, became part of every version).
    #[test]
    fn the_version_is_pinned() {
        assert_eq!(
            version(&expand(contracts(), "Review: {review}")),
            "38e991295048ee53"
        );
        let policy = quote!(
            policy = crate::Standard,
            temperature = 0.2,
            seed = 7,
            max_tokens = 9,
            deadline = "1m",
            on_refusal = fail,
            model = "m",
            provider = "p",
            system = "s"
        );
        assert_eq!(version(&expand(policy, "{review}")), "deab62686fbb6691");
    }

    #[test]
    fn the_contract_is_registered_through_the_facade() {
        let out = expand(contracts(), "Review: {review}");
        assert!(
            out.contains(
                ":: harness_core :: __private :: register ! (:: harness_core :: __private :: Linked :: Task (& classify :: CONTRACT))"
            ),
            "{out}"
        );
        let stub = expand(quote!(), "Review: {review}");
        assert!(!stub.contains("register !"), "{stub}");
    }

    #[test]
    fn errors_still_emit_stubs() {
        let out = expand(quote!(), "Review: {review}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("stub_contract"), "{out}");
        assert!(out.contains("pub async fn with"), "{out}");
    }
}
