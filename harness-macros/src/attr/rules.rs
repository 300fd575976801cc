//! The grammar of the derive's `#[llm(...)]`: field rules (`confidence`, `range`, `length`,
//! `pattern`, `one_of`, `custom`) and the container option `crate = path`.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, LitStr, Path, Token};

use super::literal;
use crate::ctxt::Ctxt;
use crate::util::last_segment;

/// The names of the field rules.
pub const FIELD_RULES: &[&str] = &[
    "confidence",
    "range",
    "length",
    "pattern",
    "one_of",
    "custom",
];

/// `min`/`max` of `range` (numbers) or `length` (counts).
pub struct Bounds<T> {
    pub min: Option<T>,
    pub max: Option<T>,
    pub span: Span,
}

/// The rules on one field.
#[derive(Default)]
pub struct FieldRules {
    pub confidence: Option<Span>,
    pub range: Option<Bounds<f64>>,
    pub length: Option<Bounds<usize>>,
    pub pattern: Option<LitStr>,
    pub one_of: Option<(Vec<LitStr>, Span)>,
    pub custom: Option<Path>,
}

/// The container's `#[llm(crate = path)]`; anything else is reported.
pub fn container(cx: &Ctxt, attrs: &[Attribute]) -> Option<Path> {
    let mut krate = None;
    for a in attrs.iter().filter(|a| a.path().is_ident("llm")) {
        let r = a.parse_nested_meta(|m| {
            if m.path.is_ident("crate") {
                let v = m.value()?;
                krate = Some(if v.peek(LitStr) {
                    v.parse::<LitStr>()?.parse()?
                } else {
                    v.parse::<Path>()?
                });
                return Ok(());
            }
            let name = ident_name(&m);
            let help = if FIELD_RULES.contains(&name.as_str()) {
                format!("`{name}` is a field rule: put `#[llm({name}..)]` on a field")
            } else {
                "the only container option is `#[llm(crate = path::to::harness_core)]`".to_owned()
            };
            cx.error_spanned_by(
                &m.path,
                format_args!("unknown `#[llm]` option `{name}` on a type"),
                help,
            );
            skip(&m)
        });
        if let Err(e) = r {
            cx.syn_error(e);
        }
    }
    krate
}

/// Skips the value of a nested meta we do not use.
pub fn skip(m: &ParseNestedMeta) -> syn::Result<()> {
    if m.input.peek(Token![=]) {
        let _: Expr = m.value()?.parse()?;
    } else if m.input.peek(syn::token::Paren) {
        let _: proc_macro2::TokenTree = m.input.parse()?;
    }
    Ok(())
}

fn ident_name(m: &ParseNestedMeta) -> String {
    m.path
        .get_ident()
        .map(|i| i.to_string())
        .unwrap_or_default()
}

/// The `#[llm(...)]` rules of field `f`; `in_struct` is false inside an enum variant.
pub fn field(cx: &Ctxt, f: &syn::Field, in_struct: bool) -> FieldRules {
    let mut r = FieldRules::default();
    for a in f.attrs.iter().filter(|a| a.path().is_ident("llm")) {
        let res = a.parse_nested_meta(|m| {
            let name = ident_name(&m);
            match name.as_str() {
                "confidence" => confidence(cx, &m, f, in_struct, &mut r),
                "range" => range(cx, &m, &mut r),
                "length" => length(cx, &m, &mut r),
                "pattern" => pattern(cx, &m, &mut r),
                "one_of" => one_of(cx, &m, &mut r),
                "custom" => custom(cx, &m, &mut r),
                _ => unknown_rule(cx, &m, &name),
            }
        });
        if let Err(e) = res {
            cx.syn_error(e);
        }
    }
    r
}

fn dup(cx: &Ctxt, m: &ParseNestedMeta, present: bool) {
    if present {
        let name = ident_name(m);
        cx.error_spanned_by(
            &m.path,
            format_args!("`{name}` is given twice on this field"),
            "keep one",
        );
    }
}

fn is_float(ty: &syn::Type) -> bool {
    matches!(last_segment(ty), Some((n, a)) if (n == "f32" || n == "f64") && a.is_empty())
}

fn confidence(
    cx: &Ctxt,
    m: &ParseNestedMeta,
    f: &syn::Field,
    in_struct: bool,
    r: &mut FieldRules,
) -> syn::Result<()> {
    dup(cx, m, r.confidence.is_some());
    if !in_struct {
        cx.error_spanned_by(
            &m.path,
            "a confidence field must be a field of a struct",
            "put `#[llm(confidence)]` on a field of the output struct, not inside an enum variant",
        );
    } else if !is_float(&f.ty) {
        cx.error_spanned_by(
            &f.ty,
            "the confidence field must be `f32` or `f64`",
            "declare it as `confidence: f64` (a number from 0 to 1)",
        );
    }
    r.confidence = Some(m.path.span());
    skip(m)
}

/// How `range` and `length` word their errors.
struct BoundWords {
    rule: &'static str,
    /// What an inverted pair makes empty: "range", "length range".
    what: &'static str,
    bad_value: &'static str,
    bad_value_help: &'static str,
    missing_help: &'static str,
}

const RANGE: BoundWords = BoundWords {
    rule: "range",
    what: "range",
    bad_value: "a range bound must be a number literal",
    bad_value_help: "write e.g. `range(min = 0.0, max = 1.0)`",
    missing_help: "write e.g. `range(min = 0.0, max = 1.0)`",
};

const LENGTH: BoundWords = BoundWords {
    rule: "length",
    what: "length range",
    bad_value: "a length bound must be a non-negative integer literal",
    bad_value_help: "write e.g. `length(min = 1, max = 280)`",
    missing_help: "write e.g. `length(max = 280)`",
};

/// `min = .., max = ..` of `range`/`length`, each value read by `value`; an empty or missing
/// range is reported at the rule's name.
fn bounds<T: PartialOrd + std::fmt::Display + Copy>(
    cx: &Ctxt,
    m: &ParseNestedMeta,
    words: &BoundWords,
    value: impl Fn(&Expr) -> Option<T>,
) -> syn::Result<Bounds<T>> {
    let rule = words.rule;
    let mut b = Bounds {
        min: None,
        max: None,
        span: m.path.span(),
    };
    m.parse_nested_meta(|inner| {
        let k = ident_name(&inner);
        let v: Expr = inner.value()?.parse()?;
        let n = value(&v);
        if n.is_none() {
            cx.error_spanned_by(&v, words.bad_value, words.bad_value_help);
        }
        match k.as_str() {
            "min" => b.min = n,
            "max" => b.max = n,
            _ => cx.error_spanned_by(
                &inner.path,
                format_args!("unknown `{rule}` bound `{k}`"),
                format_args!("write `{rule}(min = .., max = ..)` (either bound may be left out)"),
            ),
        }
        Ok(())
    })?;
    if let (Some(lo), Some(hi)) = (b.min, b.max) {
        if lo > hi {
            cx.error_spanned_by(
                &m.path,
                format_args!(
                    "this {} is empty: min {lo} is greater than max {hi}",
                    words.what
                ),
                "swap the bounds, or fix the one that is wrong",
            );
        }
    }
    if b.min.is_none() && b.max.is_none() {
        let msg = format!("`{rule}` needs `min`, `max` or both");
        cx.error_spanned_by(&m.path, msg, words.missing_help);
    }
    Ok(b)
}

fn range(cx: &Ctxt, m: &ParseNestedMeta, r: &mut FieldRules) -> syn::Result<()> {
    dup(cx, m, r.range.is_some());
    r.range = Some(bounds(cx, m, &RANGE, literal::number)?);
    Ok(())
}

fn length(cx: &Ctxt, m: &ParseNestedMeta, r: &mut FieldRules) -> syn::Result<()> {
    dup(cx, m, r.length.is_some());
    let count = |v: &Expr| match v {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse::<usize>().ok(),
        _ => None,
    };
    r.length = Some(bounds(cx, m, &LENGTH, count)?);
    Ok(())
}

fn pattern(cx: &Ctxt, m: &ParseNestedMeta, r: &mut FieldRules) -> syn::Result<()> {
    dup(cx, m, r.pattern.is_some());
    let lit: LitStr = m.value()?.parse()?;
    if let Err(e) = regex_syntax::Parser::new().parse(&lit.value()) {
        let why = match &e {
            regex_syntax::Error::Parse(p) => p.kind().to_string(),
            regex_syntax::Error::Translate(t) => t.kind().to_string(),
            other => other.to_string(),
        };
        cx.error_spanned_by(&lit, format_args!("invalid regular expression: {why}"), "fix the pattern (Rust `regex` syntax; escape `\\` as `\\\\` or use a raw string `r\"..\"`)");
    }
    r.pattern = Some(lit);
    Ok(())
}

fn one_of(cx: &Ctxt, m: &ParseNestedMeta, r: &mut FieldRules) -> syn::Result<()> {
    dup(cx, m, r.one_of.is_some());
    let mut values = Vec::new();
    if m.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in m.input);
        let list = content.parse_terminated(|p| p.parse::<LitStr>(), Token![,])?;
        values.extend(list);
    } else {
        let arr: syn::ExprArray = m.value()?.parse()?;
        for e in arr.elems {
            match e {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => values.push(s),
                other => cx.error_spanned_by(
                    &other,
                    "`one_of` takes string literals",
                    "write `one_of(\"a\", \"b\")`",
                ),
            }
        }
    }
    if values.is_empty() {
        cx.error_spanned_by(
            &m.path,
            "`one_of` needs at least one value",
            "write `one_of(\"a\", \"b\")`",
        );
    }
    r.one_of = Some((values, m.path.span()));
    Ok(())
}

fn custom(cx: &Ctxt, m: &ParseNestedMeta, r: &mut FieldRules) -> syn::Result<()> {
    dup(cx, m, r.custom.is_some());
    let v = m.value()?;
    let path = if v.peek(LitStr) {
        v.parse::<LitStr>()?.parse::<Path>()?
    } else {
        v.parse::<Path>()?
    };
    r.custom = Some(path);
    Ok(())
}

fn unknown_rule(cx: &Ctxt, m: &ParseNestedMeta, name: &str) -> syn::Result<()> {
    let help = if name == "crate" {
        "`crate = ..` goes on the type: `#[llm(crate = path::to::harness_core)]`".to_owned()
    } else {
        format!(
            "{}rules are `confidence`, `range(min = .., max = ..)`, `length(min = .., max = ..)`, `pattern = \"..\"`, `one_of(\"a\", ..)`, `custom = path::to_fn`",
            crate::util::did_you_mean(name, FIELD_RULES)
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default()
        )
    };
    cx.error_spanned_by(
        &m.path,
        format_args!("unknown `#[llm]` rule `{name}`"),
        help,
    );
    skip(m)
}
