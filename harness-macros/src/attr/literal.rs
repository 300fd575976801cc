//! Literal values: strings, integers, numbers, durations and paths, each reported at the value's
//! own tokens when it is not what the key needs.

use syn::{Expr, ExprLit, Lit, LitStr, Path};

use crate::ctxt::Ctxt;

/// `"..."`, or an error at `value`.
pub fn string(cx: &Ctxt, value: &Expr, name: &str) -> Option<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        other => {
            cx.error_spanned_by(
                other,
                format_args!("`{name}` must be a string literal"),
                format_args!("write `{name} = \"...\"`"),
            );
            None
        }
    }
}

/// An integer literal that fits `T`, or an error at `value`.
pub fn int<T: std::str::FromStr>(cx: &Ctxt, value: &Expr, name: &str) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => match i.base10_parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                cx.error_spanned_by(
                    i,
                    format_args!("`{name}`: {e}"),
                    "use a smaller non-negative integer",
                );
                None
            }
        },
        other => {
            cx.error_spanned_by(
                other,
                format_args!("`{name}` must be an integer literal"),
                format_args!("write e.g. `{name} = 256`"),
            );
            None
        }
    }
}

/// A duration string (`"500ms"`, `"20s"`) in milliseconds, or an error at the string.
pub fn duration(cx: &Ctxt, value: &Expr, name: &str) -> Option<u64> {
    let lit = string(cx, value, name)?;
    match parse_duration(&lit.value()) {
        Ok(ms) => Some(ms),
        Err(why) => {
            cx.error_spanned_by(
                &lit,
                format_args!("`{}` is not a duration: {why}", lit.value()),
                "write a number followed by `ms`, `s` or `m`, e.g. \"500ms\", \"20s\", \"2m\"",
            );
            None
        }
    }
}

/// A path written bare (`policy = Standard`) or, for compatibility, quoted.
pub fn path(cx: &Ctxt, value: &Expr, name: &str) -> Option<Path> {
    match value {
        Expr::Path(p) if p.qself.is_none() => Some(p.path.clone()),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => match s.parse::<Path>() {
            Ok(p) => Some(p),
            Err(_) => {
                cx.error_spanned_by(
                    s,
                    format_args!("`{name}` must be a path"),
                    format_args!("write `{name} = path::to::Item` without quotes"),
                );
                None
            }
        },
        other => {
            cx.error_spanned_by(
                other,
                format_args!("`{name}` must be a path"),
                format_args!("write `{name} = path::to::Item`"),
            );
            None
        }
    }
}

/// A path written bare (`plan = SUPPORT_PLAN`): the name of an item, not a string.
pub fn bare_path(cx: &Ctxt, value: &Expr, name: &str) -> Option<Path> {
    match value {
        Expr::Path(p) if p.qself.is_none() => Some(p.path.clone()),
        other => {
            cx.error_spanned_by(
                other,
                format_args!("`{name}` must be a path to a `static` or `const` item"),
                format_args!("name the item without quotes, e.g. `{name} = SUPPORT_PLAN`"),
            );
            None
        }
    }
}

/// A numeric literal (optionally negated) as `f64`.
pub fn number(e: &Expr) -> Option<f64> {
    match e {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Float(f) => f.base10_parse().ok(),
            Lit::Int(i) => i.base10_parse::<i128>().ok().map(|v| v as f64),
            _ => None,
        },
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => number(&u.expr).map(|v| -v),
        Expr::Group(g) => number(&g.expr),
        Expr::Paren(p) => number(&p.expr),
        _ => None,
    }
}

/// `"500ms"`, `"20s"`, `"2m"`, `"1.5s"` → milliseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| "it has no unit".to_owned())?;
    let (num, unit) = s.split_at(split);
    let unit = unit.trim();
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{num}` is not a number"))?;
    let factor = match unit {
        "ms" => 1.0,
        "s" => 1000.0,
        "m" | "min" => 60_000.0,
        other => return Err(format!("`{other}` is not a unit")),
    };
    let ms = n * factor;
    if ms < 1.0 {
        return Err("it is shorter than 1ms".to_owned());
    }
    if ms > 86_400_000.0 {
        return Err("it is longer than a day".to_owned());
    }
    Ok(ms.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::format_ms;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Ok(20_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("2m"), Ok(120_000));
        assert_eq!(parse_duration("1.5s"), Ok(1500));
        assert!(parse_duration("20").is_err());
        assert!(parse_duration("20 sec").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(format_ms(20_000), "20s");
        assert_eq!(format_ms(1500), "1500ms");
    }
}
