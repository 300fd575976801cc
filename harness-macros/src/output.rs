//! The model of a `#[derive(LlmOutput)]` type and the grammar of its `#[llm(...)]` attributes.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Expr, Fields, Ident, LitStr, Path, Token, Type};

use crate::ctxt::Ctxt;
use crate::util::{expr_f64, last_segment};

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

/// A named field (or a positional one inside an enum variant).
pub struct Field {
    /// The Rust name, or `None` for a positional field.
    pub ident: Option<Ident>,
    /// The name in the JSON (after `#[serde(rename)]` / `rename_all`), for error paths.
    pub json_name: String,
    pub ty: Type,
    pub rules: FieldRules,
    /// `#[doc]`, `#[serde]`, `#[schemars]`: copied onto the shadow type.
    pub attrs: Vec<Attribute>,
}

pub struct Variant {
    pub ident: Ident,
    pub json_name: String,
    pub style: Style,
    pub fields: Vec<Field>,
    pub attrs: Vec<Attribute>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Unit,
    Tuple,
    Struct,
}

pub enum Body {
    Struct(Vec<Field>),
    Enum(Vec<Variant>),
}

pub struct Output<'a> {
    pub input: &'a DeriveInput,
    pub body: Body,
    pub krate: Option<Path>,
    /// The confidence field (structs only).
    pub confidence: Option<(Ident, Type)>,
    /// Container `#[doc]`, `#[serde]`, `#[schemars]`.
    pub attrs: Vec<Attribute>,
    /// Whether the user renamed the container in `#[serde(rename = ..)]`.
    pub renamed: bool,
    /// Whether the user set `#[serde(expecting = ..)]`.
    pub has_expecting: bool,
}

fn copied_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| {
            a.path().is_ident("doc") || a.path().is_ident("serde") || a.path().is_ident("schemars")
        })
        .cloned()
        .collect()
}

/// `#[serde(rename = "..")]` and `#[serde(rename_all = "..")]`, read for error paths only.
fn serde_name(attrs: &[Attribute], key: &str) -> Option<String> {
    let mut found = None;
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = a.parse_nested_meta(|m| {
            if m.path.is_ident(key) && m.input.peek(Token![=]) {
                let s: LitStr = m.value()?.parse()?;
                found = Some(s.value());
            } else if m.input.peek(Token![=]) {
                let _: Expr = m.value()?.parse()?;
            } else if m.input.peek(syn::token::Paren) {
                let _: proc_macro2::TokenTree = m.input.parse()?;
            }
            Ok(())
        });
    }
    found
}

fn rename_all(rule: Option<&str>, name: &str) -> String {
    let words: Vec<String> = {
        let mut words = Vec::new();
        let mut cur = String::new();
        for (i, ch) in name.chars().enumerate() {
            if ch == '_' {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            } else if ch.is_uppercase() && i > 0 && !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
                cur.extend(ch.to_lowercase());
            } else {
                cur.extend(ch.to_lowercase());
            }
        }
        if !cur.is_empty() {
            words.push(cur);
        }
        words
    };
    let cap = |w: &String| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    match rule {
        Some("lowercase") => name.to_lowercase(),
        Some("UPPERCASE") => name.to_uppercase(),
        Some("snake_case") => words.join("_"),
        Some("SCREAMING_SNAKE_CASE") => words.join("_").to_uppercase(),
        Some("kebab-case") => words.join("-"),
        Some("SCREAMING-KEBAB-CASE") => words.join("-").to_uppercase(),
        Some("camelCase") => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { w.clone() } else { cap(w) })
            .collect(),
        Some("PascalCase") => words.iter().map(cap).collect(),
        _ => name.to_owned(),
    }
}

impl<'a> Output<'a> {
    pub fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Output<'a>> {
        let krate = container_attrs(cx, &input.attrs);
        for p in &input.generics.params {
            if let syn::GenericParam::Lifetime(l) = p {
                cx.error_spanned_by(l, "an LLM output cannot borrow", "use owned types (`String`, `Vec<T>`): outputs are parsed from the model's text and must be `'static`");
            }
        }
        let rename_rule = serde_name(&input.attrs, "rename_all");
        let body = match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(named) => {
                    Body::Struct(fields(cx, named.named.iter(), rename_rule.as_deref(), true))
                }
                Fields::Unnamed(_) => {
                    cx.error_spanned_by(&input.ident, format_args!("`LlmOutput` needs named fields, and `{}` is a tuple struct", input.ident), "name the fields (`struct Answer { text: String }`): the model fills in a JSON object by field name");
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(&input.ident, format_args!("`LlmOutput` needs named fields, and `{}` is a unit struct", input.ident), "give it named fields (`struct Answer { text: String }`), or use a fieldless `enum` for a choice");
                    return None;
                }
            },
            Data::Enum(e) => {
                if e.variants.is_empty() {
                    cx.error_spanned_by(
                        &input.ident,
                        "an enum without variants cannot be produced",
                        "add the variants the model chooses from",
                    );
                }
                let mut variants = Vec::new();
                for v in &e.variants {
                    for a in v.attrs.iter().filter(|a| a.path().is_ident("llm")) {
                        cx.error_spanned_by(
                            a,
                            "`#[llm(...)]` rules go on fields, not on variants",
                            "move the rule onto a field of the variant, or remove it",
                        );
                    }
                    let (style, fs) = match &v.fields {
                        Fields::Unit => (Style::Unit, Vec::new()),
                        Fields::Named(n) => {
                            (Style::Struct, fields(cx, n.named.iter(), None, false))
                        }
                        Fields::Unnamed(u) => {
                            (Style::Tuple, fields(cx, u.unnamed.iter(), None, false))
                        }
                    };
                    let json_name = serde_name(&v.attrs, "rename").unwrap_or_else(|| {
                        rename_all(rename_rule.as_deref(), &v.ident.to_string())
                    });
                    variants.push(Variant {
                        ident: v.ident.clone(),
                        json_name,
                        style,
                        fields: fs,
                        attrs: copied_attrs(&v.attrs),
                    });
                }
                Body::Enum(variants)
            }
            Data::Union(u) => {
                cx.error_spanned_by(
                    u.union_token,
                    "`LlmOutput` cannot be derived for a union",
                    "use a struct with named fields, or an enum",
                );
                return None;
            }
        };
        let confidence = match &body {
            Body::Struct(fs) => {
                let mut conf = fs.iter().filter(|f| f.rules.confidence.is_some());
                let first = conf.next();
                for extra in conf {
                    cx.error_at(
                        extra.rules.confidence.unwrap_or_else(Span::call_site),
                        format_args!("`{}` has more than one confidence field", input.ident),
                        format_args!(
                            "keep `#[llm(confidence)]` on one field; the first is `{}`",
                            first
                                .and_then(|f| f.ident.as_ref())
                                .map(|i| i.to_string())
                                .unwrap_or_default()
                        ),
                    );
                }
                first.and_then(|f| f.ident.clone().map(|i| (i, f.ty.clone())))
            }
            Body::Enum(_) => None,
        };
        Some(Output {
            input,
            body,
            krate,
            confidence,
            attrs: copied_attrs(&input.attrs),
            renamed: serde_name(&input.attrs, "rename").is_some(),
            has_expecting: serde_name(&input.attrs, "expecting").is_some(),
        })
    }
}

fn container_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Option<Path> {
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
            } else {
                let name = m
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                let help = if FIELD_RULES.contains(&name.as_str()) {
                    format!("`{name}` is a field rule: put `#[llm({name}..)]` on a field")
                } else {
                    "the only container option is `#[llm(crate = path::to::harness_core)]`"
                        .to_owned()
                };
                cx.error_spanned_by(
                    &m.path,
                    format_args!("unknown `#[llm]` option `{name}` on a type"),
                    help,
                );
                skip(&m)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            cx.syn_error(e);
        }
    }
    krate
}

fn skip(m: &ParseNestedMeta) -> syn::Result<()> {
    if m.input.peek(Token![=]) {
        let _: Expr = m.value()?.parse()?;
    } else if m.input.peek(syn::token::Paren) {
        let _: proc_macro2::TokenTree = m.input.parse()?;
    }
    Ok(())
}

fn fields<'f>(
    cx: &Ctxt,
    fs: impl Iterator<Item = &'f syn::Field>,
    rename_rule: Option<&str>,
    in_struct: bool,
) -> Vec<Field> {
    fs.enumerate()
        .map(|(i, f)| {
            let rules = field_rules(cx, f, in_struct);
            let json_name = match &f.ident {
                Some(id) => serde_name(&f.attrs, "rename").unwrap_or_else(|| {
                    rename_all(rename_rule, id.to_string().trim_start_matches("r#"))
                }),
                None => i.to_string(),
            };
            Field {
                ident: f.ident.clone(),
                json_name,
                ty: f.ty.clone(),
                rules,
                attrs: copied_attrs(&f.attrs),
            }
        })
        .collect()
}

fn is_float(ty: &Type) -> bool {
    matches!(last_segment(ty), Some((n, a)) if (n == "f32" || n == "f64") && a.is_empty())
}

fn field_rules(cx: &Ctxt, f: &syn::Field, in_struct: bool) -> FieldRules {
    let mut r = FieldRules::default();
    for a in f.attrs.iter().filter(|a| a.path().is_ident("llm")) {
        let res = a.parse_nested_meta(|m| {
            let name = m.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
            let dup = |present: bool| {
                if present {
                    cx.error_spanned_by(&m.path, format_args!("`{name}` is given twice on this field"), "keep one");
                }
            };
            match name.as_str() {
                "confidence" => {
                    dup(r.confidence.is_some());
                    if !in_struct {
                        cx.error_spanned_by(&m.path, "a confidence field must be a field of a struct", "put `#[llm(confidence)]` on a field of the output struct, not inside an enum variant");
                    } else if !is_float(&f.ty) {
                        cx.error_spanned_by(&f.ty, "the confidence field must be `f32` or `f64`", "declare it as `confidence: f64` (a number from 0 to 1)");
                    }
                    r.confidence = Some(m.path.span());
                    skip(&m)?;
                }
                "range" => {
                    dup(r.range.is_some());
                    let mut b = Bounds { min: None, max: None, span: m.path.span() };
                    m.parse_nested_meta(|inner| {
                        let k = inner.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                        let v: Expr = inner.value()?.parse()?;
                        let n = expr_f64(&v);
                        if n.is_none() {
                            cx.error_spanned_by(&v, "a range bound must be a number literal", "write e.g. `range(min = 0.0, max = 1.0)`");
                        }
                        match k.as_str() {
                            "min" => b.min = n,
                            "max" => b.max = n,
                            _ => cx.error_spanned_by(&inner.path, format_args!("unknown `range` bound `{k}`"), "write `range(min = .., max = ..)` (either bound may be left out)"),
                        }
                        Ok(())
                    })?;
                    if let (Some(lo), Some(hi)) = (b.min, b.max) {
                        if lo > hi {
                            cx.error_spanned_by(&m.path, format_args!("this range is empty: min {lo} is greater than max {hi}"), "swap the bounds, or fix the one that is wrong");
                        }
                    }
                    if b.min.is_none() && b.max.is_none() {
                        cx.error_spanned_by(&m.path, "`range` needs `min`, `max` or both", "write e.g. `range(min = 0.0, max = 1.0)`");
                    }
                    r.range = Some(b);
                }
                "length" => {
                    dup(r.length.is_some());
                    let mut b = Bounds { min: None, max: None, span: m.path.span() };
                    m.parse_nested_meta(|inner| {
                        let k = inner.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                        let v: Expr = inner.value()?.parse()?;
                        let n = match &v {
                            Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<usize>().ok(),
                            _ => None,
                        };
                        if n.is_none() {
                            cx.error_spanned_by(&v, "a length bound must be a non-negative integer literal", "write e.g. `length(min = 1, max = 280)`");
                        }
                        match k.as_str() {
                            "min" => b.min = n,
                            "max" => b.max = n,
                            _ => cx.error_spanned_by(&inner.path, format_args!("unknown `length` bound `{k}`"), "write `length(min = .., max = ..)` (either bound may be left out)"),
                        }
                        Ok(())
                    })?;
                    if let (Some(lo), Some(hi)) = (b.min, b.max) {
                        if lo > hi {
                            cx.error_spanned_by(&m.path, format_args!("this length range is empty: min {lo} is greater than max {hi}"), "swap the bounds, or fix the one that is wrong");
                        }
                    }
                    if b.min.is_none() && b.max.is_none() {
                        cx.error_spanned_by(&m.path, "`length` needs `min`, `max` or both", "write e.g. `length(max = 280)`");
                    }
                    r.length = Some(b);
                }
                "pattern" => {
                    dup(r.pattern.is_some());
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
                }
                "one_of" => {
                    dup(r.one_of.is_some());
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
                                Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => values.push(s),
                                other => cx.error_spanned_by(&other, "`one_of` takes string literals", "write `one_of(\"a\", \"b\")`"),
                            }
                        }
                    }
                    if values.is_empty() {
                        cx.error_spanned_by(&m.path, "`one_of` needs at least one value", "write `one_of(\"a\", \"b\")`");
                    }
                    r.one_of = Some((values, m.path.span()));
                }
                "custom" => {
                    dup(r.custom.is_some());
                    let v = m.value()?;
                    let path = if v.peek(LitStr) { v.parse::<LitStr>()?.parse::<Path>()? } else { v.parse::<Path>()? };
                    r.custom = Some(path);
                }
                _ => {
                    let help = if name == "crate" {
                        "`crate = ..` goes on the type: `#[llm(crate = path::to::harness_core)]`".to_owned()
                    } else {
                        format!("{}rules are `confidence`, `range(min = .., max = ..)`, `length(min = .., max = ..)`, `pattern = \"..\"`, `one_of(\"a\", ..)`, `custom = path::to_fn`", crate::util::did_you_mean(&name, FIELD_RULES).map(|c| format!("did you mean `{c}`? ")).unwrap_or_default())
                    };
                    cx.error_spanned_by(&m.path, format_args!("unknown `#[llm]` rule `{name}`"), help);
                    skip(&m)?;
                }
            }
            Ok(())
        });
        if let Err(e) = res {
            cx.syn_error(e);
        }
    }
    r
}
