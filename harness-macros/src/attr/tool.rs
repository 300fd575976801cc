//! The grammar of `#[llm_tool(...)]`: `scope = "orders:read"`, `approval`, `rate = "10/min"`,
//! `idempotent`, `timeout = "5s"`, `name = "..."`, `errors = ["not_found"]`, `crate = path`.
//! Each value is checked here, under its own tokens; that `scope` is there at all is `check`'s.

use harness_spec::tool::{RateSpec, parse_rate, scope_error};
use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprArray, Ident, LitStr, Path, Token};

use super::{Keyed, literal, skip_value};
use crate::ctxt::Ctxt;
use crate::util::suggest;

const SCOPE: &str = "scope";
const APPROVAL: &str = "approval";
const RATE: &str = "rate";
const IDEMPOTENT: &str = "idempotent";
const TIMEOUT: &str = "timeout";
const NAME: &str = "name";
const ERRORS: &str = "errors";
const CRATE: &str = "crate";

/// The keys `#[llm_tool]` accepts.
pub const TOOL_KEYS: &[&str] = &[
    SCOPE, APPROVAL, RATE, IDEMPOTENT, TIMEOUT, NAME, ERRORS, CRATE,
];

/// Everything `#[llm_tool(...)]` says, as written.
#[derive(Default)]
pub struct ToolArgs {
    pub scope: Option<Keyed<LitStr>>,
    /// `scope = ...` was written (even with a value that was refused).
    pub scope_written: bool,
    pub approval: Option<Ident>,
    pub rate: Option<Keyed<RateSpec>>,
    pub idempotent: Option<Ident>,
    pub timeout_ms: Option<Keyed<u64>>,
    pub name: Option<Keyed<LitStr>>,
    pub errors: Vec<LitStr>,
    pub krate: Option<Keyed<Path>>,
}

/// Parses the arguments, reporting every problem into `cx`.
pub fn parse_tool_args(cx: &Ctxt, tokens: TokenStream) -> ToolArgs {
    let mut args = ToolArgs::default();
    let parser = |input: ParseStream| -> syn::Result<()> {
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            entry(cx, input, &key, &mut args)?;
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

fn entry(cx: &Ctxt, input: ParseStream, key: &Ident, args: &mut ToolArgs) -> syn::Result<()> {
    let name = key.to_string();
    match name.as_str() {
        APPROVAL | IDEMPOTENT => {
            if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                let value: Expr = input.parse()?;
                cx.error_spanned_by(
                    &value,
                    format_args!("`{name}` takes no value"),
                    format_args!("write `{name}` alone to turn it on, or leave it out"),
                );
                return Ok(());
            }
            let slot = if name == APPROVAL {
                &mut args.approval
            } else {
                &mut args.idempotent
            };
            if slot.is_some() {
                twice(cx, key, &name);
            }
            *slot = Some(key.clone());
            Ok(())
        }
        SCOPE | RATE | TIMEOUT | NAME | ERRORS | CRATE => {
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
            valued(cx, key, &name, &value, args);
            Ok(())
        }
        _ => {
            cx.error_spanned_by(
                key,
                format_args!("unknown key `{name}` in `#[llm_tool]`"),
                suggest(&name, TOOL_KEYS),
            );
            if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
            }
            skip_value(input)
        }
    }
}

fn twice(cx: &Ctxt, key: &Ident, name: &str) {
    cx.error_spanned_by(
        key,
        format_args!("`{name}` is set twice"),
        "keep one of them",
    );
}

fn set<T>(cx: &Ctxt, slot: &mut Option<Keyed<T>>, key: &Ident, name: &str, value: Option<T>) {
    if slot.is_some() {
        twice(cx, key, name);
    } else if let Some(value) = value {
        *slot = Some(Keyed {
            key: key.clone(),
            value,
        });
    }
}

fn valued(cx: &Ctxt, key: &Ident, name: &str, value: &Expr, args: &mut ToolArgs) {
    match name {
        SCOPE => {
            args.scope_written = true;
            let lit = literal::string(cx, value, name).filter(|lit| {
                let Some(why) = scope_error(&lit.value()) else {
                    return true;
                };
                cx.error_spanned_by(
                    lit,
                    format_args!("`{}` is not a scope: {why}", lit.value()),
                    "write `scope = \"resource:action\"`, e.g. `scope = \"orders:read\"`",
                );
                false
            });
            set(cx, &mut args.scope, key, name, lit);
        }
        RATE => {
            let rate = literal::string(cx, value, name).and_then(|lit| {
                parse_rate(&lit.value())
                    .map_err(|why| {
                        cx.error_spanned_by(
                            &lit,
                            format_args!("`{}` is not a rate", lit.value()),
                            why,
                        );
                    })
                    .ok()
            });
            set(cx, &mut args.rate, key, name, rate);
        }
        TIMEOUT => {
            let ms = literal::duration(cx, value, name).filter(|ms| {
                if *ms == 0 {
                    cx.error_spanned_by(
                        value,
                        "a tool's timeout cannot be zero",
                        "give the tool time to run, e.g. `timeout = \"5s\"`",
                    );
                }
                *ms > 0
            });
            set(cx, &mut args.timeout_ms, key, name, ms);
        }
        NAME => {
            let lit = literal::string(cx, value, name).filter(|lit| {
                let v = lit.value();
                let ok = (1..=64).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !ok {
                    cx.error_spanned_by(
                        lit,
                        format_args!("`{v}` is not a tool name the model APIs accept"),
                        "use 1 to 64 ASCII letters, digits, `_` or `-`",
                    );
                }
                ok
            });
            set(cx, &mut args.name, key, name, lit);
        }
        ERRORS => match value {
            Expr::Array(ExprArray { elems, .. }) => {
                for e in elems {
                    if let Some(lit) = literal::string(cx, e, "errors") {
                        args.errors.push(lit);
                    }
                }
            }
            other => cx.error_spanned_by(
                other,
                "`errors` is a list of error class names",
                "write `errors = [\"not_found\", \"conflict\"]`",
            ),
        },
        _ => {
            let path = literal::path(cx, value, name);
            set(cx, &mut args.krate, key, name, path);
        }
    }
}
