//! The model of a task: `#[attrs] vis async fn name(args) -> TaskResult<Out>` followed by `;` or
//! a body (kept as tokens), with its contract resolved from `#[llm_task(...)]`.

use harness_spec::defaults;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{
    Attribute, Block, FnArg, Ident, LitStr, Pat, Path, ReturnType, Signature, Token, Type,
    Visibility,
};

use crate::attr::{self, Keyed, Site};
use crate::contract::{Contracts, Source};
use crate::ctxt::Ctxt;
use crate::util::{doc_lines, first_paragraph, last_segment};

/// `#[attrs] vis async fn name(args) -> TaskResult<Out>` followed by `;` or a body.
pub struct TaskFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    pub body: Option<Block>,
}

impl Parse for TaskFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        let body = if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
            None
        } else {
            Some(input.parse()?)
        };
        Ok(TaskFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

/// One argument: its name and type.
pub struct Input {
    pub ident: Ident,
    pub mutable: bool,
    pub ty: Type,
}

/// `prompt = "..."`: the template, and the key (where "prompt and body" points).
pub struct Prompt {
    pub template: LitStr,
    pub key: Ident,
}

/// Request parameters the task fixes.
pub struct Params {
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub seed: Option<u64>,
}

/// The per-attempt timeout (the default filled in) and the call's deadline.
pub struct Limits {
    pub timeout_ms: u64,
    /// Whether `timeout = ..` was written (the deadline is compared only with a declared timeout).
    pub timeout_declared: bool,
    pub deadline_ms: Option<u64>,
    /// The `deadline` key, where "shorter than the timeout" points.
    pub deadline_key: Option<Ident>,
}

/// A task, resolved: everything `expand` needs and nothing it has to decide.
pub struct Task<'a> {
    pub item: &'a TaskFn,
    pub krate: Option<Path>,
    /// The first paragraph of the doc comment.
    pub description: String,
    pub inputs: Vec<Input>,
    /// Whether every argument could be read (placeholders are only judged then).
    pub inputs_complete: bool,
    /// `Out` in `TaskResult<Out>`.
    pub output: Type,
    pub prompt: Option<Prompt>,
    pub body: Option<&'a Block>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub system: Option<String>,
    pub params: Params,
    pub limits: Limits,
    pub policy: Option<Path>,
    /// `plan = PATH`: the context plan the task names.
    pub plan: Option<Path>,
    /// The repair kinds the task does not accept.
    pub repairs_deny: Vec<harness_spec::RepairKind>,
    pub contracts: Contracts,
    /// The declared context sources, in declaration order.
    pub sources: Vec<Source>,
}

/// What is left when the signature cannot be used: enough for the stubs.
pub struct Unusable {
    pub krate: Option<Path>,
}

impl<'a> Task<'a> {
    /// Parses the attribute's arguments and reads the signature, reporting every problem into
    /// `cx`. `Err` when the signature cannot be used at all.
    pub fn from_ast(cx: &Ctxt, f: &'a TaskFn, args: TokenStream) -> Result<Task<'a>, Unusable> {
        let args = attr::parse_task_args(cx, args, Site::Task);
        qualifiers(cx, &f.sig);
        let inputs = inputs(cx, &f.sig);
        let Some(output) = output(cx, &f.sig) else {
            return Err(Unusable {
                krate: args.krate.map(|k| k.value),
            });
        };
        let string = |v: Option<Keyed<LitStr>>| v.map(|k| k.value.value());
        Ok(Task {
            item: f,
            krate: args.krate.map(|k| k.value),
            description: first_paragraph(&doc_lines(&f.attrs)),
            inputs_complete: inputs.len() == f.sig.inputs.len(),
            inputs,
            output,
            prompt: args.prompt.map(|k| Prompt {
                template: k.value,
                key: k.key,
            }),
            body: f.body.as_ref(),
            model: string(args.model),
            provider: string(args.provider),
            system: string(args.system),
            params: Params {
                temperature: args.temperature.map(|k| k.value),
                max_tokens: args.max_tokens.map(|k| k.value),
                seed: args.seed.map(|k| k.value),
            },
            limits: Limits {
                timeout_ms: args
                    .timeout_ms
                    .as_ref()
                    .map_or(defaults::TIMEOUT_MS, |k| k.value),
                timeout_declared: args.timeout_ms.is_some(),
                deadline_ms: args.deadline_ms.as_ref().map(|k| k.value),
                deadline_key: args.deadline_ms.map(|k| k.key),
            },
            policy: args.policy.map(|k| k.value),
            plan: args.plan.map(|k| k.value),
            repairs_deny: args.repairs_deny.map(|k| k.value).unwrap_or_default(),
            contracts: args.contracts,
            sources: args.sources,
        })
    }

    pub fn name(&self) -> &'a Ident {
        &self.item.sig.ident
    }
}

/// `async` is required; `const`, `unsafe`, an ABI, variadics and type generics are not allowed.
fn qualifiers(cx: &Ctxt, sig: &Signature) {
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            format_args!("`#[llm_task]` functions must be `async`"),
            format_args!(
                "write `async fn {}(..)`: a task waits on the network",
                sig.ident
            ),
        );
    }
    if let Some(c) = &sig.constness {
        cx.error_spanned_by(c, "a task cannot be `const`", "remove `const`");
    }
    if let Some(u) = &sig.unsafety {
        cx.error_spanned_by(u, "a task cannot be `unsafe`", "remove `unsafe`");
    }
    if let Some(a) = &sig.abi {
        cx.error_spanned_by(a, "a task cannot have an ABI", "remove the `extern`");
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(
            v,
            "a task cannot be variadic",
            "take a `Vec` or a slice instead",
        );
    }
    for p in &sig.generics.params {
        if !matches!(p, syn::GenericParam::Lifetime(_)) {
            cx.error_spanned_by(p, "a task cannot be generic over types or consts", "its contract is one constant: use concrete argument types (or `&dyn Trait`/`impl Display` values rendered before the call)");
        }
    }
}

/// The arguments that are plain names; the others are reported.
fn inputs(cx: &Ctxt, sig: &Signature) -> Vec<Input> {
    let mut inputs = Vec::new();
    for arg in &sig.inputs {
        let pt = match arg {
            FnArg::Receiver(r) => {
                cx.error_spanned_by(
                    r,
                    "a task cannot take `self`",
                    "declare the task as a free function; pass what it needs as arguments",
                );
                continue;
            }
            FnArg::Typed(pt) => pt,
        };
        match &*pt.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                if let Type::ImplTrait(it) = &*pt.ty {
                    cx.error_spanned_by(
                        it,
                        "task arguments cannot be `impl Trait`",
                        "use a concrete type such as `&str` or `String`",
                    );
                }
                inputs.push(Input {
                    ident: pi.ident.clone(),
                    mutable: pi.mutability.is_some(),
                    ty: (*pt.ty).clone(),
                });
            }
            other => cx.error_spanned_by(
                other,
                "task arguments must be plain names",
                "write `name: Type`; the name is the `{placeholder}` in the prompt",
            ),
        }
    }
    inputs
}

/// `Out` in `-> TaskResult<Out>`, or an error.
fn output(cx: &Ctxt, sig: &Signature) -> Option<Type> {
    match &sig.output {
        ReturnType::Default => {
            cx.error_at(sig.paren_token.span.close(), "a task must return `TaskResult<Output>`", format_args!("write `async fn {}(..) -> TaskResult<YourOutput>;` where `YourOutput` derives `LlmOutput`", sig.ident));
            None
        }
        ReturnType::Type(_, ty) => match last_segment(ty) {
            Some((name, args)) if name == "TaskResult" && args.len() == 1 => Some(args[0].clone()),
            _ => {
                cx.error_spanned_by(ty, "a task must return `TaskResult<Output>`", "write `-> TaskResult<YourOutput>` (from `harness_core::prelude`): the harness returns an `Outcome` or a `TaskError`");
                None
            }
        },
    }
}

/// Re-emit the user's fn unchanged except for the missing body, which becomes a stub.
pub fn stub_fn(f: &TaskFn) -> TokenStream {
    let attrs = &f.attrs;
    let vis = &f.vis;
    let sig = &f.sig;
    let mut ts = quote::quote!(#(#attrs)* #[allow(unused_variables)] #vis #sig);
    quote::quote!({ ::core::unimplemented!() }).to_tokens(&mut ts);
    ts
}

/// The span to blame for the output type.
pub fn output_span(ty: &Type) -> Span {
    syn::spanned::Spanned::span(ty)
}
