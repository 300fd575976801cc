//! The model of a `#[derive(LlmOutput)]` type: its fields or variants with their JSON names
//! (serde renames followed) and `#[llm(...)]` rules, the confidence field, the container options.

use proc_macro2::Span;
use syn::{Attribute, Data, DeriveInput, Expr, Fields, Ident, LitStr, Path, Token, Type};

use crate::attr::rules::{self, FieldRules};
use crate::ctxt::Ctxt;

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
        let krate = rules::container(cx, &input.attrs);
        for p in &input.generics.params {
            if let syn::GenericParam::Lifetime(l) = p {
                cx.error_spanned_by(l, "an LLM output cannot borrow", "use owned types (`String`, `Vec<T>`): outputs are parsed from the model's text and must be `'static`");
            }
        }
        let rename_rule = serde_name(&input.attrs, "rename_all");
        let body = match &input.data {
            Data::Struct(s) => {
                Body::Struct(struct_fields(cx, input, &s.fields, rename_rule.as_deref())?)
            }
            Data::Enum(e) => Body::Enum(variants(cx, input, e, rename_rule.as_deref())),
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
            Body::Struct(fs) => confidence_field(cx, &input.ident, fs),
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

/// The named fields of a struct; tuple and unit structs are reported.
fn struct_fields(
    cx: &Ctxt,
    input: &DeriveInput,
    fields: &Fields,
    rename_rule: Option<&str>,
) -> Option<Vec<Field>> {
    match fields {
        Fields::Named(named) => Some(self::fields(cx, named.named.iter(), rename_rule, true)),
        Fields::Unnamed(_) => {
            cx.error_spanned_by(&input.ident, format_args!("`LlmOutput` needs named fields, and `{}` is a tuple struct", input.ident), "name the fields (`struct Answer { text: String }`): the model fills in a JSON object by field name");
            None
        }
        Fields::Unit => {
            cx.error_spanned_by(&input.ident, format_args!("`LlmOutput` needs named fields, and `{}` is a unit struct", input.ident), "give it named fields (`struct Answer { text: String }`), or use a fieldless `enum` for a choice");
            None
        }
    }
}

fn variants(
    cx: &Ctxt,
    input: &DeriveInput,
    e: &syn::DataEnum,
    rename_rule: Option<&str>,
) -> Vec<Variant> {
    if e.variants.is_empty() {
        cx.error_spanned_by(
            &input.ident,
            "an enum without variants cannot be produced",
            "add the variants the model chooses from",
        );
    }
    e.variants
        .iter()
        .map(|v| variant(cx, v, rename_rule))
        .collect()
}

fn variant(cx: &Ctxt, v: &syn::Variant, rename_rule: Option<&str>) -> Variant {
    for a in v.attrs.iter().filter(|a| a.path().is_ident("llm")) {
        cx.error_spanned_by(
            a,
            "`#[llm(...)]` rules go on fields, not on variants",
            "move the rule onto a field of the variant, or remove it",
        );
    }
    let (style, fs) = match &v.fields {
        Fields::Unit => (Style::Unit, Vec::new()),
        Fields::Named(n) => (Style::Struct, fields(cx, n.named.iter(), None, false)),
        Fields::Unnamed(u) => (Style::Tuple, fields(cx, u.unnamed.iter(), None, false)),
    };
    let json_name = serde_name(&v.attrs, "rename")
        .unwrap_or_else(|| rename_all(rename_rule, &v.ident.to_string()));
    Variant {
        ident: v.ident.clone(),
        json_name,
        style,
        fields: fs,
        attrs: copied_attrs(&v.attrs),
    }
}

/// The one `#[llm(confidence)]` field of a struct; a second one is reported.
fn confidence_field(cx: &Ctxt, ty: &Ident, fs: &[Field]) -> Option<(Ident, Type)> {
    let mut conf = fs.iter().filter(|f| f.rules.confidence.is_some());
    let first = conf.next();
    for extra in conf {
        cx.error_at(
            extra.rules.confidence.unwrap_or_else(Span::call_site),
            format_args!("`{ty}` has more than one confidence field"),
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

fn fields<'f>(
    cx: &Ctxt,
    fs: impl Iterator<Item = &'f syn::Field>,
    rename_rule: Option<&str>,
    in_struct: bool,
) -> Vec<Field> {
    fs.enumerate()
        .map(|(i, f)| {
            let rules = rules::field(cx, f, in_struct);
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
