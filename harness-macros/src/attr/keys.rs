//! The keys of `#[llm_task]` that are not contracts (`model = "..."`, `timeout = "20s"`, ...), and
//! which keys each macro accepts.

use harness_spec::FailureClass;
use proc_macro2::TokenTree;
use syn::parse::ParseStream;
use syn::{Expr, Ident, Token};

use super::repairs::{self, REPAIRS};
use super::{Keyed, Site, TaskArgs, chain, literal, skip_value};
use crate::ctxt::Ctxt;
use crate::util::suggest;

/// Keys of `#[llm_task]` that are not contracts.
pub const TASK_KEYS: &[&str] = &[
    MODEL,
    PROVIDER,
    SYSTEM,
    PROMPT,
    TIMEOUT,
    DEADLINE,
    TEMPERATURE,
    MAX_TOKENS,
    SEED,
    POLICY,
    PLAN,
    REPAIRS,
    SOURCE,
    CRATE,
];

const MODEL: &str = "model";
const PROVIDER: &str = "provider";
const SYSTEM: &str = "system";
const PROMPT: &str = "prompt";
const TIMEOUT: &str = "timeout";
const DEADLINE: &str = "deadline";
const TEMPERATURE: &str = "temperature";
const MAX_TOKENS: &str = "max_tokens";
const SEED: &str = "seed";
const POLICY: &str = "policy";
const PLAN: &str = "plan";
const CRATE: &str = "crate";
const SOURCE: &str = "source";

/// One `key = value` (or contract), after the key.
pub(super) fn parse_entry(
    cx: &Ctxt,
    input: ParseStream,
    key: &Ident,
    args: &mut TaskArgs,
    site: Site,
) -> syn::Result<()> {
    let name = key.to_string();
    if let Some(class) = FailureClass::from_attribute_key(&name) {
        return chain::parse_contract(cx, input, key, class, &mut args.contracts, site);
    }
    let allowed = allowed_keys(site);
    if !allowed.contains(&name.as_str()) {
        unknown_key(cx, key, &name, &allowed, site);
        return skip_unknown(input);
    }
    if name == REPAIRS {
        return repairs::parse(cx, input, key, args);
    }
    if name == SOURCE {
        return super::source::parse(cx, input, key, args);
    }
    if !input.peek(Token![=]) {
        cx.error_spanned_by(
            key,
            format_args!("`{name}` needs a value"),
            format_args!("write `{name} = ...`"),
        );
        return skip_value(input);
    }
    input.parse::<Token![=]>()?;
    let value: Expr = input.parse()?;
    value_key(cx, args, key, &name, &value);
    Ok(())
}

fn allowed_keys(site: Site) -> Vec<&'static str> {
    let contracts = FailureClass::ALL.map(FailureClass::attribute_key);
    match site {
        Site::Task => TASK_KEYS.iter().copied().chain(contracts).collect(),
        Site::Policy => std::iter::once(CRATE).chain(contracts).collect(),
    }
}

fn unknown_key(cx: &Ctxt, key: &Ident, name: &str, allowed: &[&str], site: Site) {
    let help = if site == Site::Policy && TASK_KEYS.contains(&name) {
        format!(
            "`{name}` belongs on each `#[llm_task]`; a policy holds only failure contracts (`on_timeout = ...`, ...)"
        )
    } else {
        suggest(name, allowed)
    };
    let what = match site {
        Site::Policy => "llm_policy",
        Site::Task => "llm_task",
    };
    cx.error_spanned_by(
        key,
        format_args!("unknown key `{name}` in `#[{what}]`"),
        help,
    );
}

/// Skips `= value`, `(..)` or `(..) = value` after an unknown key.
fn skip_unknown(input: ParseStream) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
    } else if input.peek(syn::token::Paren) {
        input.parse::<TokenTree>()?;
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
        }
    }
    skip_value(input)
}

/// Stores the value of an allowed key, reporting a bad value at the value and a repeated key at
/// the key.
fn value_key(cx: &Ctxt, args: &mut TaskArgs, key: &Ident, name: &str, value: &Expr) {
    match name {
        MODEL => set_once(cx, &mut args.model, key, text(cx, value, name)),
        PROVIDER => set_once(cx, &mut args.provider, key, text(cx, value, name)),
        SYSTEM => set_once(cx, &mut args.system, key, text(cx, value, name)),
        PROMPT => set_once(cx, &mut args.prompt, key, text(cx, value, name)),
        TIMEOUT => set_once(
            cx,
            &mut args.timeout_ms,
            key,
            literal::duration(cx, value, name),
        ),
        DEADLINE => set_once(
            cx,
            &mut args.deadline_ms,
            key,
            literal::duration(cx, value, name),
        ),
        TEMPERATURE => set_once(cx, &mut args.temperature, key, temperature(cx, value)),
        MAX_TOKENS => set_once(cx, &mut args.max_tokens, key, max_tokens(cx, value)),
        SEED => set_once(
            cx,
            &mut args.seed,
            key,
            literal::int::<u64>(cx, value, name),
        ),
        POLICY => set_once(cx, &mut args.policy, key, literal::path(cx, value, name)),
        PLAN => set_once(cx, &mut args.plan, key, literal::bare_path(cx, value, name)),
        CRATE => set_once(cx, &mut args.krate, key, literal::path(cx, value, name)),
        _ => unreachable!("every allowed key is handled"),
    }
}

fn set_once<T>(cx: &Ctxt, slot: &mut Option<Keyed<T>>, key: &Ident, value: Option<T>) {
    if slot.is_some() {
        cx.error_spanned_by(
            key,
            format_args!("`{key}` is given twice"),
            format_args!("keep one `{key} = ...`"),
        );
        return;
    }
    if let Some(value) = value {
        *slot = Some(Keyed {
            key: key.clone(),
            value,
        });
    }
}

/// A string key; only `system` may be empty.
fn text(cx: &Ctxt, value: &Expr, name: &str) -> Option<syn::LitStr> {
    let lit = literal::string(cx, value, name)?;
    if lit.value().trim().is_empty() && name != SYSTEM {
        cx.error_spanned_by(
            &lit,
            format_args!("`{name}` is empty"),
            format_args!("give `{name}` a non-empty string, or leave the key out"),
        );
    }
    Some(lit)
}

fn temperature(cx: &Ctxt, value: &Expr) -> Option<f64> {
    match literal::number(value) {
        Some(v) if (0.0..=2.0).contains(&v) => return Some(v),
        Some(v) => cx.error_spanned_by(
            value,
            format_args!("temperature {v} is outside 0..=2"),
            "use a temperature between 0.0 and 2.0, e.g. `temperature = 0.0`",
        ),
        None => cx.error_spanned_by(
            value,
            "`temperature` must be a number literal",
            "write e.g. `temperature = 0.2`",
        ),
    }
    None
}

fn max_tokens(cx: &Ctxt, value: &Expr) -> Option<u32> {
    let v = literal::int::<u32>(cx, value, MAX_TOKENS)?;
    if v == 0 {
        cx.error_spanned_by(
            value,
            "`max_tokens` must be at least 1",
            "write e.g. `max_tokens = 256`",
        );
        return None;
    }
    Some(v)
}
