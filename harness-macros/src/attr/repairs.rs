//! `repairs(deny = ["closed_truncated", ...])`: the lenient parser's repair kinds a task does not
//! accept, each name checked against harness-spec's [`RepairKind`] list.

use harness_spec::RepairKind;
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::{Expr, ExprLit, Ident, Lit, Token};

use super::{Keyed, TaskArgs, parens, skip_value};
use crate::ctxt::Ctxt;
use crate::util::suggest;

/// The key.
pub const REPAIRS: &str = "repairs";
const DENY: &str = "deny";

/// After the `repairs` key: `(deny = ["...", ...])`.
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
        "`repairs` takes a list of denied repair kinds",
        "write e.g. `repairs(deny = [\"closed_truncated\"])`",
    )?
    else {
        return Ok(());
    };
    let mut denied = Vec::new();
    while !content.is_empty() {
        let inner = Ident::parse_any(&content)?;
        if inner != DENY {
            cx.error_spanned_by(
                &inner,
                format_args!("unknown key `{inner}` in `repairs(...)`"),
                "the only key is `deny`: `repairs(deny = [\"closed_truncated\"])`",
            );
            skip_value(&content)?;
        } else {
            content.parse::<Token![=]>()?;
            let list: Expr = content.parse()?;
            kinds(cx, &list, &mut denied);
        }
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    if args.repairs_deny.is_some() {
        cx.error_spanned_by(
            key,
            "`repairs` is given twice",
            "keep one `repairs(deny = [...])`",
        );
        return Ok(());
    }
    args.repairs_deny = Some(Keyed {
        key: key.clone(),
        value: denied,
    });
    Ok(())
}

/// The kinds of `["a", "b"]`, each unknown name reported at its string.
fn kinds(cx: &Ctxt, list: &Expr, out: &mut Vec<RepairKind>) {
    let Expr::Array(array) = list else {
        cx.error_spanned_by(
            list,
            "`deny` takes a list of repair kind names",
            "write e.g. `deny = [\"closed_truncated\", \"coerced\"]`",
        );
        return;
    };
    let names = RepairKind::ALL.map(RepairKind::name);
    for elem in &array.elems {
        let Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) = elem
        else {
            cx.error_spanned_by(
                elem,
                "a repair kind is a string",
                "write its name in quotes, e.g. `\"closed_truncated\"`",
            );
            continue;
        };
        let name = s.value();
        match RepairKind::from_name(&name) {
            Some(kind) if !out.contains(&kind) => out.push(kind),
            Some(_) => cx.error_spanned_by(
                s,
                format_args!("`{name}` is denied twice"),
                "name each repair kind once",
            ),
            None => cx.error_spanned_by(
                s,
                format_args!("unknown repair kind `{name}`"),
                suggest(&name, &names),
            ),
        }
    }
}
