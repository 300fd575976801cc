//! The grammar of `#[llm_task(...)]`, `#[llm_policy(...)]` and `#[llm(...)]`: tokens → raw values,
//! by kind of grammar: [`keys`] (the task's own keys), [`chain`] (contracts and their actions),
//! `repairs` (`repairs(deny = [...])`),
//! [`literal`] (strings, numbers, durations, paths) and [`rules`] (the derive's `#[llm(...)]`).
//! Problems that concern one key are reported here; `ast` resolves the values into the model and
//! rules across keys live in `check`.

pub mod chain;
mod keys;
pub mod literal;
mod repairs;
pub mod rules;
mod source;
pub mod tool;

use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitStr, Path, Token};

use crate::contract::{Contracts, Source};
use crate::ctxt::Ctxt;

/// A value with its key (for "duplicate" and cross-key errors).
pub struct Keyed<T> {
    pub key: Ident,
    pub value: T,
}

/// Everything `#[llm_task(...)]` (or, with only contracts, `#[llm_policy(...)]`) says, as written.
#[derive(Default)]
pub struct TaskArgs {
    pub model: Option<Keyed<LitStr>>,
    pub provider: Option<Keyed<LitStr>>,
    pub system: Option<Keyed<LitStr>>,
    pub prompt: Option<Keyed<LitStr>>,
    pub timeout_ms: Option<Keyed<u64>>,
    pub deadline_ms: Option<Keyed<u64>>,
    pub temperature: Option<Keyed<f64>>,
    pub max_tokens: Option<Keyed<u32>>,
    pub seed: Option<Keyed<u64>>,
    pub policy: Option<Keyed<Path>>,
    /// `plan = PATH`: a `static` or `const` `ContextPlan`.
    pub plan: Option<Keyed<Path>>,
    pub krate: Option<Keyed<Path>>,
    /// `repairs(deny = [...])`.
    pub repairs_deny: Option<Keyed<Vec<harness_spec::RepairKind>>>,
    pub contracts: Contracts,
    /// `source(name, ...)`, in declaration order.
    pub sources: Vec<Source>,
}

/// Which macro is being parsed: policies accept only contracts (and `crate`), and no `default`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Site {
    Task,
    Policy,
}

/// Parses the attribute arguments, reporting every problem into `cx`. Only a token-level syntax
/// error (something that is not `key = value` at all) stops the parse.
pub fn parse_task_args(cx: &Ctxt, tokens: TokenStream, site: Site) -> TaskArgs {
    let mut args = TaskArgs::default();
    let parser = |input: ParseStream| -> syn::Result<()> {
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            keys::parse_entry(cx, input, &key, &mut args, site)?;
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(())
    };
    if let Err(e) = parser.parse2(tokens) {
        cx.syn_error(e);
    }
    args
}

/// Skips a value we could not use, up to the next top-level comma.
/// The parenthesised group that must follow `key` (`repairs(...)`, `source(...)`), or an error
/// under `key` saying what to write, the rest of the value skipped, and `None`.
fn parens<'a>(
    cx: &Ctxt,
    input: ParseStream<'a>,
    key: &Ident,
    message: &str,
    help: &str,
) -> syn::Result<Option<syn::parse::ParseBuffer<'a>>> {
    if !input.peek(syn::token::Paren) {
        cx.error_spanned_by(key, message, help);
        skip_value(input)?;
        return Ok(None);
    }
    let content;
    syn::parenthesized!(content in input);
    Ok(Some(content))
}

fn skip_value(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}
