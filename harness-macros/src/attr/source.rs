//! `source(kb, budget = 800, limit = 5, timeout = "2s", section = "docs", on_unavailable = ...)`:
//! a declared context source. The name comes first; `budget` is required; the others have
//! defaults (harness-spec's `SOURCE_LIMIT` and `SOURCE_TIMEOUT_MS`, the name as the section).

use harness_spec::FailureClass;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, Token};

use super::{Site, TaskArgs, chain, literal, parens};
use crate::contract::Source;
use crate::ctxt::Ctxt;
use crate::util::suggest;

/// The options of `source(name, ...)`.
const SOURCE_KEYS: &[&str] = &["budget", "limit", "timeout", "section", "on_unavailable"];

/// `(name, key = value, ...)` after the `source` key.
pub(super) fn parse(
    cx: &Ctxt,
    input: ParseStream,
    key: &Ident,
    args: &mut TaskArgs,
) -> syn::Result<()> {
    let Some(content) = parens(
        cx,
        input,
        key,
        "`source` needs a name and a budget",
        "write `source(kb, budget = 800)`: the name it is registered under on the harness, and the most tokens its documents may take",
    )?
    else {
        return Ok(());
    };
    let items = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
    let mut items = items.iter();
    let Some(name) = items.next().and_then(|e| match e {
        Expr::Path(p) => p.path.get_ident().cloned(),
        _ => None,
    }) else {
        cx.error_spanned_by(
            key,
            "a source's name comes first",
            "write `source(kb, budget = 800)`: `kb` is the name it is registered under (`HarnessBuilder::source(\"kb\", ..)`)",
        );
        return Ok(());
    };
    let mut source = Source {
        name: name.clone(),
        budget: 0,
        limit: None,
        timeout_ms: None,
        section: None,
        on_unavailable: None,
    };
    let mut budget = None;
    let mut seen: Vec<String> = Vec::new();
    for item in items {
        let Some((k, v)) = option(item) else {
            cx.error_spanned_by(
                item,
                "expected `option = value`",
                format_args!("a source takes {}", list(SOURCE_KEYS)),
            );
            continue;
        };
        let kname = k.to_string();
        if seen.contains(&kname) {
            cx.error_spanned_by(
                k,
                format_args!("`{kname}` is given twice for source `{name}`"),
                format_args!("keep one `{kname} = ...`"),
            );
            continue;
        }
        seen.push(kname.clone());
        match kname.as_str() {
            "budget" => budget = positive(cx, v, "budget", "budget = 800"),
            "limit" => source.limit = positive(cx, v, "limit", "limit = 5"),
            "timeout" => source.timeout_ms = literal::duration(cx, v, "timeout"),
            "section" => source.section = section(cx, v),
            "on_unavailable" => {
                let steps = chain::parse_chain(cx, v, FailureClass::ContextUnavailable, Site::Task);
                source.on_unavailable = Some(steps);
            }
            other => cx.error_spanned_by(
                k,
                format_args!("unknown option `{other}` of source `{name}`"),
                suggest(other, SOURCE_KEYS),
            ),
        }
    }
    match budget {
        Some(b) => source.budget = b,
        None => {
            if !seen.iter().any(|s| s == "budget") {
                cx.error_spanned_by(
                    &name,
                    format_args!("source `{name}` has no budget"),
                    format_args!("write `source({name}, budget = 800, ...)`: the most tokens its documents may take in the prompt"),
                );
            }
            return Ok(());
        }
    }
    if args.sources.iter().any(|s| s.name == name) {
        cx.error_spanned_by(
            &name,
            format_args!("source `{name}` is declared twice"),
            format_args!("keep one `source({name}, ...)`"),
        );
        return Ok(());
    }
    args.sources.push(source);
    Ok(())
}

/// `key = value`, with a plain name as the key.
fn option(e: &Expr) -> Option<(&Ident, &Expr)> {
    match e {
        Expr::Assign(a) => match &*a.left {
            Expr::Path(p) => Some((p.path.get_ident()?, &a.right)),
            _ => None,
        },
        _ => None,
    }
}

fn positive(cx: &Ctxt, v: &Expr, name: &str, example: &str) -> Option<u32> {
    let n = literal::int::<u32>(cx, v, name)?;
    if n == 0 {
        cx.error_spanned_by(
            v,
            format_args!("a source's `{name}` must be at least 1"),
            format_args!("write e.g. `{example}`"),
        );
        return None;
    }
    Some(n)
}

fn section(cx: &Ctxt, v: &Expr) -> Option<String> {
    if let Expr::Lit(l) = v
        && let Lit::Str(s) = &l.lit
        && !s.value().trim().is_empty()
    {
        return Some(s.value());
    }
    cx.error_spanned_by(
        v,
        "a source's `section` must be a non-empty string literal",
        "write e.g. `section = \"docs\"`: the heading its documents are sent under",
    );
    None
}

fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k} = ..`"))
        .collect::<Vec<_>>()
        .join(", ")
}
