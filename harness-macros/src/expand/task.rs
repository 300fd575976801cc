//! `#[llm_task(...)] async fn name(args) -> TaskResult<Out>;` → the function, a companion struct
//! `name` holding `CONTRACT` and `with(&harness, ..)`, and compile-time checks of the contract
//! against the output type.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use sha2::{Digest, Sha256};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, Pat, Signature};

use super::{allows, chain, private};
use crate::ast::{self, Input, TaskFn, TaskSig};
use crate::attr::{self, Class, Site, Step, TaskArgs, render_chain};
use crate::check;
use crate::ctxt::Ctxt;
use crate::util::{doc_lines, first_paragraph, format_ms, type_string};

/// The per-attempt timeout when the task does not declare one.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    let f: TaskFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                crate::ctxt::with_help(
                    "`#[llm_task]` goes on an `async fn`",
                    "write `#[llm_task(...)] async fn name(arg: &str) -> TaskResult<Output>;`",
                ),
            );
            let err = e.into_compile_error();
            return quote!(#err #item);
        }
    };
    let cx = Ctxt::new();
    let args = attr::parse_task_args(&cx, args, Site::Task);
    let sig = ast::task_sig(&cx, &f);
    if let Some(sig) = &sig {
        check::task(&cx, &f, &args, &sig.inputs);
    }
    match (cx.check(), sig) {
        (Ok(()), Some(sig)) => expand(&f, &args, &sig),
        (Err(e), sig) => {
            let err = e.into_compile_error();
            let stubs = stubs(&f, &args, sig.as_ref());
            quote!(#err #stubs)
        }
        (Ok(()), None) => unreachable!("a missing signature is always reported"),
    }
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
fn stubs(f: &TaskFn, args: &TaskArgs, sig: Option<&TaskSig>) -> TokenStream {
    let p = private(args.krate.as_ref().map(|k| &k.value));
    let func = ast::stub_fn(f);
    let vis = &f.vis;
    let name = &f.sig.ident;
    let name_str = name.to_string();
    let allows = allows();
    let cfgs = ast::cfg_attrs(&f.attrs);
    let with = sig.map(|s| {
        let params = input_params(&s.inputs, false);
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

fn opt_str(v: Option<String>) -> TokenStream {
    match v {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    }
}

fn opt<T: quote::ToTokens>(v: Option<T>) -> TokenStream {
    match v {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    }
}

fn expand(f: &TaskFn, args: &TaskArgs, sig: &TaskSig) -> TokenStream {
    let p = private(args.krate.as_ref().map(|k| &k.value));
    let name = &f.sig.ident;
    let name_str = name.to_string();
    let vis = &f.vis;
    let out = &sig.output;
    let out_span = ast::output_span(out);
    let ret = &f.sig.output;
    let generics = &f.sig.generics;
    let where_clause = &f.sig.generics.where_clause;
    let (docs, other_attrs) = ast::split_docs(&f.attrs);
    let cfgs = ast::cfg_attrs(&f.attrs);
    let allows = allows();
    let doc_text = doc_lines(&f.attrs);
    let description = first_paragraph(&doc_text);

    let model = args.model.as_ref().map(|k| k.value.value());
    let provider = args.provider.as_ref().map(|k| k.value.value());
    let system = args.system.as_ref().map(|k| k.value.value());
    let prompt = args.prompt.as_ref().map(|k| k.value.value());
    let timeout_ms = args
        .timeout_ms
        .as_ref()
        .map_or(DEFAULT_TIMEOUT_MS, |k| k.value);
    let deadline_ms = args.deadline_ms.as_ref().map(|k| k.value);
    let policy = args.policy.as_ref().map(|k| &k.value);

    let version = version(f, args, sig, timeout_ms);
    let contract_doc = contract_doc(f, args, sig, timeout_ms, &version);

    // CONTRACT.
    let input_specs = sig.inputs.iter().map(|i| {
        let n = i.ident.to_string();
        let t = type_string(&i.ty);
        quote!(#p::InputSpec { name: #n, rust_type: #t })
    });
    let p_out = super::private_spanned(args.krate.as_ref().map(|k| &k.value), out_span);
    let output_of = quote_spanned!(out_span=> <#out as #p_out::TaskOutput>);
    let output_spec = quote_spanned!(out_span=> #output_of::OPS.spec);
    let chains = chain::chains(&p, &args.contracts);
    let below = chain::threshold(&args.contracts);
    let policy_ref = match policy {
        Some(path) => {
            let p_pol = super::private_spanned(args.krate.as_ref().map(|k| &k.value), path.span());
            let policy_of = quote_spanned!(path.span()=> <#path as #p_pol::TaskPolicy>);
            quote_spanned!(path.span()=> ::core::option::Option::Some(#policy_of::DATA.policy))
        }
        None => quote!(::core::option::Option::None),
    };
    let deadline = opt(deadline_ms.map(|ms| quote!(#p::core::time::Duration::from_millis(#ms))));
    let temperature = opt(args.temperature.as_ref().map(|k| k.value));
    let max_tokens = opt(args.max_tokens.as_ref().map(|k| k.value));
    let seed = opt(args.seed.as_ref().map(|k| k.value));
    let model_t = opt_str(model);
    let provider_t = opt_str(provider);
    let system_t = opt_str(system.clone());
    let prompt_t = opt_str(prompt);

    // Inputs and context.
    let inputs_ident = Ident::new("inputs", Span::mixed_site());
    let context_ident = Ident::new("context", Span::mixed_site());
    let harness_ident = Ident::new("harness", Span::mixed_site());
    let probe_ident = Ident::new("probe", Span::mixed_site());
    let arg_idents: Vec<&Ident> = sig.inputs.iter().map(|i| &i.ident).collect();
    let renders = sig.inputs.iter().map(|i| {
        let ident = &i.ident;
        let n = ident.to_string();
        let ty_span = i.ty.span();
        let p_ty = super::private_spanned(args.krate.as_ref().map(|k| &k.value), ty_span);
        let probe_at = Ident::new("probe", Span::mixed_site().located_at(ty_span));
        let render = quote_spanned! {ty_span=>
            #p_ty::rendered(&#probe_at, (&&&#probe_at).__harness_render())
        };
        quote!((#n, { let #probe_ident = #p::InputProbe(&#ident); #render }))
    });
    let context_expr = match &f.body {
        Some(body) => quote! {
            ::core::option::Option::Some(#p::body_context(#system_t, async move #body.await))
        },
        None => quote!(::core::option::Option::None),
    };
    let prepare_params = input_params(&sig.inputs, true);
    let public_params = input_params(&sig.inputs, false);

    // Defaults.
    let default_arms: Vec<TokenStream> = args
        .contracts
        .iter()
        .filter_map(|c| {
            c.steps.iter().find_map(|s| match &s.step {
                Step::Default(e) => Some((c.class, e)),
                _ => None,
            })
        })
        .map(|(class, e)| {
            let class = chain::class(&p, class);
            let value = Ident::new("value", Span::mixed_site());
            quote!(#class => ::core::option::Option::Some({ let #value: #out = #e; #value }),)
        })
        .collect();
    let (defaults_fn, defaults_arg) = if default_arms.is_empty() {
        (quote!(), quote!(::core::option::Option::None))
    } else {
        let class_ident = Ident::new("class", Span::mixed_site());
        (
            quote! {
                #[doc(hidden)]
                fn __default(#class_ident: #p::FailureClass) -> ::core::option::Option<#out> {
                    #[allow(unreachable_patterns)]
                    match #class_ident {
                        #(#default_arms)*
                        _ => ::core::option::Option::None,
                    }
                }
            },
            quote!(::core::option::Option::Some(&#name::__default as #p::DefaultFn<'_, #out>)),
        )
    };

    // Compile-time checks against the output type and the policy. Each is a `const` that panics
    // with a message naming the task; they go through `OutputOf`/`PolicyOf` so that a type that
    // is not an output (or a policy) is reported once.
    let mut checks = Vec::new();
    let out_str = type_string(out);
    let panic_at = |span: Span, cond: TokenStream, msg: String, help: String| {
        let msg = escape_braces(&crate::ctxt::with_help(msg, help));
        quote_spanned!(span=> const _: () = if #cond { ::core::panic!(#msg) };)
    };
    let has_conf = quote_spanned!(out_span=> #output_of::OPS.has_confidence);
    let low_conf_example = Class::LowConfidence.example().trim_end_matches(',');
    if let Some(c) = args.contract(Class::LowConfidence) {
        checks.push(panic_at(
            c.key.span(),
            quote!(!#has_conf),
            format!("task `{name_str}` declares `on_low_confidence`, but its output `{out_str}` has no confidence field"),
            format!("remove `on_low_confidence(..)`, or add `#[llm(confidence)] confidence: f64` to `{out_str}`"),
        ));
    }
    match policy {
        None => {
            if args.contract(Class::LowConfidence).is_none() {
                checks.push(panic_at(
                    out_span,
                    quote!(#has_conf),
                    format!("task `{name_str}` has no contract for `on_low_confidence`, and its output `{out_str}` has a confidence field"),
                    format!("add `{low_conf_example}` to `#[llm_task(...)]`"),
                ));
            }
        }
        Some(path) => {
            let pspan = path.span();
            let pname = quote!(#path).to_string().replace(' ', "");
            let p_pol = super::private_spanned(args.krate.as_ref().map(|k| &k.value), pspan);
            let policy_of = quote_spanned!(pspan=> <#path as #p_pol::TaskPolicy>);
            for class in Class::ALL[..5]
                .iter()
                .filter(|c| args.contract(**c).is_none())
            {
                let i = class.index();
                checks.push(panic_at(
                    pspan,
                    { let covered = quote_spanned!(pspan=> #policy_of::DATA.covers[#i]); quote!(!#covered) },
                    format!("task `{name_str}` has no contract for `{}`, and policy `{pname}` does not declare one", class.key()),
                    format!("add `{}` to the task or to the policy", class.example().trim_end_matches(',')),
                ));
            }
            if args.contract(Class::LowConfidence).is_none() {
                let i = Class::LowConfidence.index();
                checks.push(panic_at(
                    pspan,
                    { let covered = quote_spanned!(pspan=> #policy_of::DATA.covers[#i]); quote!(#has_conf && !#covered) },
                    format!("task `{name_str}` has no contract for `on_low_confidence`, its output `{out_str}` has a confidence field, and policy `{pname}` does not declare one"),
                    format!("add `{low_conf_example}` to the task or to the policy"),
                ));
            }
        }
    }

    let fn_sig = public_sig(&f.sig);
    let run_global = quote_spanned!(out_span=> (#output_of::OPS.run_global));
    let run = quote_spanned!(out_span=> (#output_of::OPS.run));
    let struct_doc = format!(
        "The contract of [`{name_str}`](fn@{name_str}) (`{name_str}::CONTRACT`) and a way to run it on an explicit harness (`{name_str}::with`)."
    );

    quote! {
        #(#other_attrs)*
        #(#docs)*
        #contract_doc
        #vis #fn_sig {
            let (#inputs_ident, #context_ident) = #name::__prepare(#(#arg_idents),*).await;
            #run_global(&#name::CONTRACT, #inputs_ident, #context_ident, #defaults_arg).await
        }

        #(#cfgs)*
        #[doc = #struct_doc]
        #allows
        #vis struct #name {}

        #(#cfgs)*
        #allows
        impl #name {
            /// The task's contract, as data.
            pub const CONTRACT: #p::TaskContract = #p::TaskContract {
                name: #name_str,
                module: ::core::module_path!(),
                description: #description,
                version: #version,
                model: #model_t,
                provider: #provider_t,
                system: #system_t,
                prompt: #prompt_t,
                inputs: &[#(#input_specs),*],
                output: #output_spec,
                timeout: #p::core::time::Duration::from_millis(#timeout_ms),
                deadline: #deadline,
                chains: #chains,
                policy: #policy_ref,
                low_confidence_below: #below,
                params: #p::Params {
                    temperature: #temperature,
                    max_tokens: #max_tokens,
                    seed: #seed,
                },
            };

            /// Runs the task on `harness` instead of the process-wide one.
            pub async fn with #generics (#harness_ident: &#p::Harness, #(#public_params),*) #ret #where_clause {
                let (#inputs_ident, #context_ident) = Self::__prepare(#(#arg_idents),*).await;
                #run(#harness_ident, &Self::CONTRACT, #inputs_ident, #context_ident, #defaults_arg).await
            }

            /// The task's `default(...)` values by failure class, for tools that run the contract
            /// themselves (drills, evaluation); `None` when the contract has no `default` step.
            pub fn defaults() -> ::core::option::Option<#p::DefaultFn<'static, #out>> {
                #defaults_arg
            }

            #[doc(hidden)]
            async fn __prepare #generics (#(#prepare_params),*) -> (#p::Inputs, ::core::option::Option<#p::Context>) #where_clause {
                #[allow(unused_imports)]
                use #p::{RenderDisplay as _, RenderJson as _, RenderNone as _};
                let #inputs_ident: #p::Inputs = #p::std::vec![#(#renders),*];
                let #context_ident = #context_expr;
                (#inputs_ident, #context_ident)
            }

            #defaults_fn
        }

        #(#cfgs)*
        const _: () = {
            #(#checks)*
        };
    }
}

/// `{` → `{{` so a message can be a `panic!` format string.
fn escape_braces(s: &str) -> String {
    s.replace('{', "{{").replace('}', "}}")
}

/// A hash of everything that changes what the task asks and how it recovers.
fn version(f: &TaskFn, args: &TaskArgs, sig: &TaskSig, timeout_ms: u64) -> String {
    let mut c = String::new();
    let mut line = |k: &str, v: &str| {
        c.push_str(k);
        c.push('=');
        c.push_str(v);
        c.push('\n');
    };
    line("name", &f.sig.ident.to_string());
    line(
        "model",
        &args
            .model
            .as_ref()
            .map(|k| k.value.value())
            .unwrap_or_default(),
    );
    line(
        "provider",
        &args
            .provider
            .as_ref()
            .map(|k| k.value.value())
            .unwrap_or_default(),
    );
    line(
        "system",
        &args
            .system
            .as_ref()
            .map(|k| k.value.value())
            .unwrap_or_default(),
    );
    line(
        "prompt",
        &args
            .prompt
            .as_ref()
            .map(|k| k.value.value())
            .unwrap_or_default(),
    );
    let body = f
        .body
        .as_ref()
        .map(|b| quote!(#b).to_string())
        .unwrap_or_default();
    line("body", &body);
    for i in &sig.inputs {
        line("input", &format!("{}: {}", i.ident, type_string(&i.ty)));
    }
    line("output", &type_string(&sig.output));
    line("timeout_ms", &timeout_ms.to_string());
    line(
        "deadline_ms",
        &args
            .deadline_ms
            .as_ref()
            .map(|k| k.value.to_string())
            .unwrap_or_default(),
    );
    line(
        "temperature",
        &args
            .temperature
            .as_ref()
            .map(|k| format!("{:?}", k.value))
            .unwrap_or_default(),
    );
    line(
        "max_tokens",
        &args
            .max_tokens
            .as_ref()
            .map(|k| k.value.to_string())
            .unwrap_or_default(),
    );
    line(
        "seed",
        &args
            .seed
            .as_ref()
            .map(|k| k.value.to_string())
            .unwrap_or_default(),
    );
    let policy = args.policy.as_ref().map(|k| {
        let p = &k.value;
        quote!(#p).to_string()
    });
    line("policy", &policy.unwrap_or_default());
    for class in Class::ALL {
        if let Some(d) = args.contract(class) {
            let below = d
                .below
                .map(|b| format!("(below = {:?})", b.0))
                .unwrap_or_default();
            line(class.key(), &format!("{below}{}", render_chain(&d.steps)));
        }
    }
    let digest = Sha256::digest(c.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The "Contract" section appended to the function's docs.
fn contract_doc(
    f: &TaskFn,
    args: &TaskArgs,
    sig: &TaskSig,
    timeout_ms: u64,
    version: &str,
) -> TokenStream {
    let mut lines: Vec<String> = vec![String::new(), "# Contract".into(), String::new()];
    lines.push("| | |".into());
    lines.push("|---|---|".into());
    let model = args.model.as_ref().map_or("(harness default)".into(), |k| {
        format!("`{}`", k.value.value())
    });
    lines.push(format!("| model | {model} |"));
    if let Some(p) = &args.provider {
        lines.push(format!("| provider | `{}` |", p.value.value()));
    }
    lines.push(format!(
        "| timeout | {} per attempt |",
        format_ms(timeout_ms)
    ));
    lines.push(format!(
        "| deadline | {} |",
        args.deadline_ms.as_ref().map_or(
            "derived from the timeout and the chains".into(),
            |k| format!("{} per call", format_ms(k.value))
        )
    ));
    let inputs = sig
        .inputs
        .iter()
        .map(|i| format!("`{}: {}`", i.ident, type_string(&i.ty)))
        .collect::<Vec<_>>()
        .join(", ");
    lines.push(format!(
        "| inputs | {} |",
        if inputs.is_empty() {
            "none".into()
        } else {
            inputs
        }
    ));
    lines.push(format!("| output | `{}` |", type_string(&sig.output)));
    let context = if f.body.is_some() {
        "built by the function body".to_owned()
    } else {
        "`prompt` template".to_owned()
    };
    lines.push(format!("| context | {context} |"));
    if let Some(p) = &args.policy {
        let v = &p.value;
        lines.push(format!(
            "| policy | `{}` |",
            quote!(#v).to_string().replace(' ', "")
        ));
    }
    lines.push(format!("| version | `{version}` |"));
    lines.push(String::new());
    lines.push("| failure | contract |".into());
    lines.push("|---|---|".into());
    for class in Class::ALL {
        match args.contract(class) {
            Some(d) => {
                let label = match d.below {
                    Some((t, _)) => format!("{} (below {t})", class.name()),
                    None => class.name().to_owned(),
                };
                lines.push(format!(
                    "| {label} | `{}` |",
                    render_chain(&d.steps).replace('|', "\\|")
                ));
            }
            None => {
                if let Some(p) = &args.policy {
                    let v = &p.value;
                    let suffix = if class == Class::LowConfidence {
                        " (if the output has a confidence field)"
                    } else {
                        ""
                    };
                    lines.push(format!(
                        "| {} | from policy `{}`{suffix} |",
                        class.name(),
                        quote!(#v).to_string().replace(' ', "")
                    ));
                }
            }
        }
    }
    if let Some(p) = &args.prompt {
        lines.push(String::new());
        lines.push("Prompt:".into());
        lines.push("```text".into());
        lines.extend(p.value.value().lines().map(str::to_owned));
        lines.push("```".into());
    }
    let attrs = lines.iter().map(|l| quote!(#[doc = #l]));
    quote!(#(#attrs)*)
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
    fn the_version_is_stable_and_follows_the_prompt() {
        let a = version(&expand(contracts(), "Review: {review}"));
        let b = version(&expand(contracts(), "Review: {review}"));
        let c = version(&expand(contracts(), "Rate: {review}"));
        assert_eq!(a.len(), 16);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn errors_still_emit_stubs() {
        let out = expand(quote!(), "Review: {review}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("stub_contract"), "{out}");
        assert!(out.contains("pub async fn with"), "{out}");
    }
}
