//! The model of a tool: `#[llm_tool(...)] vis [async] fn name(args) -> Result<T, E> { body }`,
//! its arguments (name, type, doc, `#[llm(trusted)]`) and its spec with defaults filled in (the
//! timeout from harness-spec's defaults is the runtime's 30 s).

use proc_macro2::TokenStream;
use syn::{Attribute, FnArg, Ident, ItemFn, LitStr, Pat, Path, ReturnType, Type, Visibility};

use crate::attr::Keyed;
use crate::attr::tool::{ToolArgs, parse_tool_args};
use crate::ctxt::Ctxt;
use crate::util::{doc_lines, last_segment};

/// The runtime's default tool timeout (`harness_core::tools::DEFAULT_TIMEOUT`).
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// One argument of the tool function.
pub struct Arg {
    pub ident: Ident,
    pub ty: Type,
    /// Its `///` lines: the argument's description in the schema.
    pub docs: Vec<String>,
    /// `#[llm(trusted)]`: only values from the user or the program.
    pub trusted: bool,
}

/// A validated tool.
pub struct Tool<'a> {
    pub item: &'a ItemFn,
    pub vis: &'a Visibility,
    pub ident: &'a Ident,
    /// The name the model calls (`name = ...`, else the function's).
    pub name: String,
    /// The function's doc comment, joined.
    pub description: String,
    pub args: Vec<Arg>,
    /// `T` of `Result<T, E>`.
    pub output: &'a Type,
    pub is_async: bool,
    pub scope: Option<Keyed<LitStr>>,
    /// `scope = ...` was written, even if its value was refused (no second error then).
    pub scope_written: bool,
    pub approval: bool,
    /// (count, per seconds).
    pub rate: Option<(u32, u64)>,
    pub idempotent: bool,
    pub timeout_ms: u64,
    pub errors: Vec<String>,
    pub krate: Option<Path>,
}

/// Whether `a` is one of ours on an argument: `#[llm(...)]` or a doc comment, removed from the
/// function that is emitted again (rustc rejects doc comments on parameters).
pub fn is_arg_attr(a: &Attribute) -> bool {
    a.path().is_ident("llm") || a.path().is_ident("doc")
}

impl<'a> Tool<'a> {
    /// The model, or `None` when the signature cannot make a tool (each reason reported).
    pub fn from_ast(cx: &Ctxt, f: &'a ItemFn, args: TokenStream) -> Option<Tool<'a>> {
        let a: ToolArgs = parse_tool_args(cx, args);
        let sig = &f.sig;
        if let Some(g) = sig.generics.params.first() {
            cx.error_spanned_by(
                g,
                "a tool function cannot be generic",
                "the schema of its arguments must be known: use concrete types",
            );
        }
        let mut out_args = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => cx.error_spanned_by(
                    r,
                    "a tool is a free function, not a method",
                    "write a function without `self`; for a tool with state, implement `harness_core::tools::Tool` by hand",
                ),
                FnArg::Typed(pt) => {
                    let Pat::Ident(pi) = &*pt.pat else {
                        cx.error_spanned_by(
                            &pt.pat,
                            "a tool argument needs a plain name",
                            "the name is the argument's key in the JSON the model sends: write `name: Type`",
                        );
                        continue;
                    };
                    if let Type::Reference(r) = &*pt.ty {
                        cx.error_spanned_by(
                            r,
                            "a tool argument cannot be borrowed",
                            "arguments are read from the model's JSON into owned values: use `String` for `&str`, `Vec<T>` for `&[T]`",
                        );
                        continue;
                    }
                    let trusted = arg_flags(cx, &pt.attrs);
                    out_args.push(Arg {
                        ident: pi.ident.clone(),
                        ty: (*pt.ty).clone(),
                        docs: doc_lines(&pt.attrs),
                        trusted,
                    });
                }
            }
        }
        let output = match &sig.output {
            ReturnType::Type(_, ty) => match last_segment(ty) {
                Some((name, targs)) if name == "Result" && targs.len() == 2 => Some(targs[0]),
                _ => None,
            },
            ReturnType::Default => None,
        };
        let Some(output) = output else {
            let help = "write `-> Result<Output, ToolFailure>` (`harness_core::tools::ToolFailure`, or an error type that converts into it)";
            match &sig.output {
                ReturnType::Type(_, ty) => {
                    cx.error_spanned_by(ty, "a tool returns a `Result`", help)
                }
                ReturnType::Default => {
                    cx.error_spanned_by(&sig.ident, "a tool returns a `Result`", help)
                }
            }
            return None;
        };
        let doc = doc_lines(&f.attrs);
        let description = doc
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_owned();
        Some(Tool {
            item: f,
            vis: &f.vis,
            ident: &sig.ident,
            name: a
                .name
                .as_ref()
                .map_or_else(|| sig.ident.to_string(), |n| n.value.value()),
            description,
            args: out_args,
            output,
            is_async: sig.asyncness.is_some(),
            scope: a.scope,
            scope_written: a.scope_written,
            approval: a.approval.is_some(),
            rate: a.rate.map(|r| (r.value.count, r.value.per_seconds)),
            idempotent: a.idempotent.is_some(),
            timeout_ms: a.timeout_ms.map_or(DEFAULT_TIMEOUT_MS, |t| t.value),
            errors: a.errors.iter().map(LitStr::value).collect(),
            krate: a.krate.map(|k| k.value),
        })
    }
}

/// The `#[llm(...)]` keys of an argument: `trusted` only, for now.
fn arg_flags(cx: &Ctxt, attrs: &[Attribute]) -> bool {
    let mut trusted = false;
    for a in attrs.iter().filter(|a| a.path().is_ident("llm")) {
        let r = a.parse_nested_meta(|meta| {
            if meta.path.is_ident("trusted") {
                trusted = true;
            } else {
                cx.error_spanned_by(
                    &meta.path,
                    "unknown key in a tool argument's `#[llm(...)]`",
                    "a tool argument takes `#[llm(trusted)]` (values only from the user or the program)",
                );
            }
            Ok(())
        });
        if let Err(e) = r {
            cx.syn_error(e);
        }
    }
    trusted
}
