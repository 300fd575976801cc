//! The validated model of what a macro was applied to: a task function or an output type.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Block, FnArg, Ident, Pat, ReturnType, Signature, Token, Type, Visibility};

use crate::ctxt::Ctxt;
use crate::util::last_segment;

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
        if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
            Ok(TaskFn {
                attrs,
                vis,
                sig,
                body: None,
            })
        } else {
            let body: Block = input.parse()?;
            Ok(TaskFn {
                attrs,
                vis,
                sig,
                body: Some(body),
            })
        }
    }
}

/// One argument: its name and type.
pub struct Input {
    pub ident: Ident,
    pub mutable: bool,
    pub ty: Type,
}

/// The parts of a task's signature the expansion needs.
pub struct TaskSig {
    pub inputs: Vec<Input>,
    /// `Out` in `TaskResult<Out>`.
    pub output: Type,
}

/// Checks the signature's shape and extracts the inputs and output type. Problems go to `cx`;
/// `None` means the signature cannot be used at all.
pub fn task_sig(cx: &Ctxt, f: &TaskFn) -> Option<TaskSig> {
    let sig = &f.sig;
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
    let mut inputs = Vec::new();
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) => cx.error_spanned_by(
                r,
                "a task cannot take `self`",
                "declare the task as a free function; pass what it needs as arguments",
            ),
            FnArg::Typed(pt) => match &*pt.pat {
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
            },
        }
    }
    let output = match &sig.output {
        ReturnType::Default => {
            cx.error_at(sig.paren_token.span.close(), "a task must return `TaskResult<Output>`", format_args!("write `async fn {}(..) -> TaskResult<YourOutput>;` where `YourOutput` derives `LlmOutput`", sig.ident));
            return None;
        }
        ReturnType::Type(_, ty) => match last_segment(ty) {
            Some((name, args)) if name == "TaskResult" && args.len() == 1 => args[0].clone(),
            _ => {
                cx.error_spanned_by(ty, "a task must return `TaskResult<Output>`", "write `-> TaskResult<YourOutput>` (from `harness_core::prelude`): the harness returns an `Outcome` or a `TaskError`");
                return None;
            }
        },
    };
    Some(TaskSig { inputs, output })
}

/// Doc attributes and the rest, separately.
pub fn split_docs(attrs: &[Attribute]) -> (Vec<&Attribute>, Vec<&Attribute>) {
    attrs.iter().partition(|a| a.path().is_ident("doc"))
}

/// `#[cfg(..)]` attributes, repeated on every item generated next to the user's.
pub fn cfg_attrs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("cfg")).collect()
}

/// The span to blame for the output type.
pub fn output_span(ty: &Type) -> Span {
    ty.span()
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
