//! `#[derive(LlmOutput)]`: a hidden shadow copy of the type derives serde's `Deserialize` and
//! schemars' `JsonSchema` (so users write neither); the user's type converts from it, and gets
//! `LlmOutput` with the `#[llm(...)]` rules as `validate`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{DeriveInput, Ident};

use super::{allows, private};
use crate::ast::Output;
use crate::ast::output::{Body, Field, Style, Variant};
use crate::ctxt::Ctxt;

pub fn derive_output(input: DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let output = Output::from_ast(&cx, &input);
    match (cx.check(), output) {
        (Ok(()), Some(o)) => expand(&o),
        (Err(e), o) => {
            let err = e.into_compile_error();
            let p = private(o.as_ref().and_then(|o| o.krate.as_ref()));
            let fallback = fallback(&input, &p);
            quote!(#err #fallback)
        }
        (Ok(()), None) => unreachable!("a missing model is always reported"),
    }
}

/// Impls that let the rest of the crate compile while the derive reports its errors, so one
/// mistake in a type does not also fail every task that returns it.
fn fallback(input: &DeriveInput, p: &TokenStream) -> TokenStream {
    if !input.generics.params.is_empty() {
        return quote!();
    }
    let ident = &input.ident;
    let name = ident.to_string();
    let allows = allows();
    quote! {
        const _: () = {
            #allows
            impl<'de> #p::serde::Deserialize<'de> for #ident {
                fn deserialize<D: #p::serde::Deserializer<'de>>(_: D) -> ::core::result::Result<Self, D::Error> {
                    ::core::unimplemented!()
                }
            }
            #allows
            impl #p::schemars::JsonSchema for #ident {
                fn schema_name() -> #p::std::borrow::Cow<'static, str> {
                    #p::std::borrow::Cow::Borrowed(#name)
                }
                fn json_schema(_: &mut #p::schemars::SchemaGenerator) -> #p::schemars::Schema {
                    ::core::unimplemented!()
                }
            }
            #allows
            impl #p::LlmOutput for #ident {
                const TYPE_NAME: &'static str = #name;
                const HAS_CONFIDENCE: bool = false;
                fn validate(&self, _: &#p::FieldPath, _: &mut #p::ValidationErrors) {}
            }
            impl #p::HasConfidenceField for #ident {}
            impl #p::LacksConfidenceField for #ident {}
        };
    }
}

fn expand(o: &Output) -> TokenStream {
    let p = private(o.krate.as_ref());
    let shadow = shadow_type(o, &p);
    let impls = impls(o, &p);
    quote! {
        #[doc(hidden)]
        const _: () = {
            #shadow

            #impls
        };
    }
}

/// The hidden `__HarnessShadow`: the user's type with its docs and serde/schemars attributes, the
/// rules as schemars attributes, and the user's name in schemas and serde's errors.
fn shadow_type(o: &Output, p: &TokenStream) -> TokenStream {
    let name = o.input.ident.to_string();
    let shadow = format_ident!("__HarnessShadow");
    let allows = allows();
    let serde_crate = quote!(#p::serde).to_string().replace(' ', "");
    let schemars_crate = quote!(#p::schemars).to_string().replace(' ', "");
    let container_attrs = &o.attrs;
    let rename = if o.renamed {
        quote!()
    } else {
        quote!(#[serde(rename = #name)])
    };
    // serde's "expected struct X" names the Rust type: make it the user's, not the shadow's.
    let kind = match &o.body {
        Body::Struct(_) => "struct",
        Body::Enum(_) => "enum",
    };
    let expecting = if o.has_expecting {
        quote!()
    } else {
        let e = format!("{kind} {name}");
        quote!(#[serde(expecting = #e)])
    };
    let def = shadow_def(o, p, &shadow);
    quote! {
        #[derive(#p::serde::Deserialize, #p::schemars::JsonSchema)]
        #[serde(crate = #serde_crate)]
        #[schemars(crate = #schemars_crate)]
        #rename
        #expecting
        #(#container_attrs)*
        #allows
        #def
    }
}

/// `struct __HarnessShadow { .. }` or `enum __HarnessShadow { .. }`.
fn shadow_def(o: &Output, p: &TokenStream, shadow: &Ident) -> TokenStream {
    let generics = &o.input.generics;
    let where_clause = &generics.where_clause;
    match &o.body {
        Body::Struct(fields) => {
            let fs = fields.iter().map(|f| shadow_field(f, p));
            quote!(struct #shadow #generics #where_clause { #(#fs),* })
        }
        Body::Enum(variants) => {
            let vs = variants.iter().map(|v| {
                let attrs = &v.attrs;
                let vid = &v.ident;
                let fs = v.fields.iter().map(|f| shadow_field(f, p));
                match v.style {
                    Style::Unit => quote!(#(#attrs)* #vid),
                    Style::Tuple => quote!(#(#attrs)* #vid(#(#fs),*)),
                    Style::Struct => quote!(#(#attrs)* #vid { #(#fs),* }),
                }
            });
            quote!(enum #shadow #generics #where_clause { #(#vs),* })
        }
    }
}

/// The names a variant's fields are bound to in a match: their own, or `f0`, `f1`, ...
fn bindings(v: &Variant) -> Vec<Ident> {
    v.fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            f.ident
                .clone()
                .unwrap_or_else(|| format_ident!("f{}", i, span = Span::mixed_site()))
        })
        .collect()
}

/// Shadow → user type.
fn convert(o: &Output, shadow: &Ident, shadow_value: &Ident) -> TokenStream {
    let ident = &o.input.ident;
    match &o.body {
        Body::Struct(fields) => {
            let inits = fields.iter().map(|f| {
                let id = &f.ident;
                quote!(#id: #shadow_value.#id)
            });
            quote!(#ident { #(#inits),* })
        }
        Body::Enum(variants) => {
            let arms = variants.iter().map(|v| {
                let vid = &v.ident;
                let binds = bindings(v);
                match v.style {
                    Style::Unit => quote!(#shadow::#vid => #ident::#vid),
                    Style::Tuple => quote!(#shadow::#vid(#(#binds),*) => #ident::#vid(#(#binds),*)),
                    Style::Struct => {
                        quote!(#shadow::#vid { #(#binds),* } => #ident::#vid { #(#binds),* })
                    }
                }
            });
            quote!(match #shadow_value { #(#arms),* })
        }
    }
}

/// The body of `validate()`: each field's rules and nested validation; for an enum, per variant,
/// with the variant's name in the path.
fn validate_body(o: &Output, p: &TokenStream, path: &Ident, errors: &Ident) -> TokenStream {
    match &o.body {
        Body::Struct(fields) => {
            let checks = fields.iter().map(|f| {
                let id = &f.ident;
                field_checks(f, quote!(&self.#id), &quote!(#path), errors, p)
            });
            quote!(#(#checks)*)
        }
        Body::Enum(variants) => {
            let arms = variants
                .iter()
                .filter(|v| v.style != Style::Unit)
                .map(|v| variant_checks(v, p, path, errors));
            quote! {
                #[allow(unreachable_patterns, unused_variables)]
                match self {
                    #(#arms)*
                    _ => {}
                }
            }
        }
    }
}

fn variant_checks(v: &Variant, p: &TokenStream, path: &Ident, errors: &Ident) -> TokenStream {
    let vid = &v.ident;
    let vname = &v.json_name;
    let vpath = format_ident!("variant_path", span = Span::mixed_site());
    let binds = bindings(v);
    let checks = v
        .fields
        .iter()
        .zip(&binds)
        .map(|(f, b)| field_checks(f, quote!(#b), &quote!(#vpath), errors, p));
    let pat = match v.style {
        Style::Tuple => quote!(Self::#vid(#(#binds),*)),
        _ => quote!(Self::#vid { #(#binds),* }),
    };
    quote!(#pat => { let #vpath = #path.field(#vname); #(#checks)* })
}

/// `impl Deserialize` and `impl JsonSchema` (through the shadow), `impl LlmOutput`,
/// `impl Nested` and the confidence marker.
fn impls(o: &Output, p: &TokenStream) -> TokenStream {
    let ident = &o.input.ident;
    let shadow = format_ident!("__HarnessShadow");
    let allows = allows();
    let generics = &o.input.generics;
    let (impl_g, ty_g, where_clause) = generics.split_for_impl();
    let mut de_generics = generics.clone();
    de_generics.params.insert(0, syn::parse_quote!('de));
    let (de_impl_g, _, _) = de_generics.split_for_impl();
    let where_preds = where_clause.map(|w| {
        let preds = &w.predicates;
        quote!(#preds,)
    });
    let shadow_value = format_ident!("shadow", span = Span::mixed_site());
    let convert = convert(o, &shadow, &shadow_value);
    let output = llm_output_impl(o, p, where_preds.as_ref());
    let marker = if o.confidence.is_some() {
        quote!(#p::HasConfidenceField)
    } else {
        quote!(#p::LacksConfidenceField)
    };
    quote! {
        #[automatically_derived]
        #allows
        impl #de_impl_g #p::serde::Deserialize<'de> for #ident #ty_g
        where
            #where_preds
            #shadow #ty_g: #p::serde::Deserialize<'de>,
        {
            fn deserialize<D: #p::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                let #shadow_value = <#shadow #ty_g as #p::serde::Deserialize<'de>>::deserialize(deserializer)?;
                ::core::result::Result::Ok(#convert)
            }
        }

        #[automatically_derived]
        #allows
        impl #impl_g #p::schemars::JsonSchema for #ident #ty_g
        where
            #where_preds
            #shadow #ty_g: #p::schemars::JsonSchema,
        {
            fn inline_schema() -> bool {
                <#shadow #ty_g as #p::schemars::JsonSchema>::inline_schema()
            }
            fn schema_name() -> #p::std::borrow::Cow<'static, str> {
                <#shadow #ty_g as #p::schemars::JsonSchema>::schema_name()
            }
            fn schema_id() -> #p::std::borrow::Cow<'static, str> {
                <#shadow #ty_g as #p::schemars::JsonSchema>::schema_id()
            }
            fn json_schema(generator: &mut #p::schemars::SchemaGenerator) -> #p::schemars::Schema {
                <#shadow #ty_g as #p::schemars::JsonSchema>::json_schema(generator)
            }
        }

        #output

        #[automatically_derived]
        impl #impl_g #marker for #ident #ty_g #where_clause {}
    }
}

/// `impl LlmOutput` (the rules as `validate`, the confidence) and `impl rules::Nested`.
fn llm_output_impl(o: &Output, p: &TokenStream, where_preds: Option<&TokenStream>) -> TokenStream {
    let ident = &o.input.ident;
    let name = ident.to_string();
    let allows = allows();
    let generics = &o.input.generics;
    let (impl_g, ty_g, _) = generics.split_for_impl();
    let path = format_ident!("path", span = Span::mixed_site());
    let errors = format_ident!("errors", span = Span::mixed_site());
    let validate_body = validate_body(o, p, &path, &errors);
    let has_conf = o.confidence.is_some();
    let confidence_fn = o.confidence.as_ref().map(|(id, _)| {
        quote! {
            fn confidence(&self) -> ::core::option::Option<f64> {
                ::core::option::Option::Some(::core::convert::From::from(self.#id))
            }
        }
    });
    // A generic output validates its type parameters' values only if it knows they are `Nested`
    // (outputs, containers of outputs, or leaves such as `String`); say so in the bounds.
    let type_bounds = if generics.params.is_empty() {
        quote!()
    } else {
        let params = generics.type_params().map(|t| &t.ident);
        quote! {
            Self: #p::serde::de::DeserializeOwned + #p::schemars::JsonSchema + ::core::marker::Send + 'static,
            #(#params: #p::rules::Nested,)*
        }
    };
    quote! {
        #[automatically_derived]
        #allows
        impl #impl_g #p::LlmOutput for #ident #ty_g
        where
            #where_preds
            #type_bounds
        {
            const TYPE_NAME: &'static str = #name;
            const HAS_CONFIDENCE: bool = #has_conf;

            fn validate(&self, #path: &#p::FieldPath, #errors: &mut #p::ValidationErrors) {
                #[allow(unused_imports)]
                use #p::{ValidateNested as _, ValidateNothing as _};
                #validate_body
            }

            #confidence_fn
        }

        #[automatically_derived]
        #allows
        impl #impl_g #p::rules::Nested for #ident #ty_g
        where
            #where_preds
            Self: #p::LlmOutput,
        {
            fn validate_nested(&self, #path: &#p::FieldPath, #errors: &mut #p::ValidationErrors) {
                #p::rules::validate_output(self, #path, #errors);
            }
        }
    }
}

/// A field of the shadow: its docs and serde/schemars attributes, plus its rules as schema keywords.
fn shadow_field(f: &Field, p: &TokenStream) -> TokenStream {
    let attrs = &f.attrs;
    let ty = &f.ty;
    let mut schema = Vec::new();
    let r = &f.rules;
    let range = r
        .range
        .as_ref()
        .map(|b| (b.min, b.max))
        .or_else(|| r.confidence.map(|_| (Some(0.0), Some(1.0))));
    if let Some((min, max)) = range {
        let min = min.map(|v| quote!(min = #v,));
        let max = max.map(|v| quote!(max = #v,));
        schema.push(quote!(#[schemars(range(#min #max))]));
    }
    if let Some(b) = &r.length {
        let min = b.min.map(|v| quote!(min = #v,));
        let max = b.max.map(|v| quote!(max = #v,));
        schema.push(quote!(#[schemars(length(#min #max))]));
    }
    if let Some(pat) = &r.pattern {
        schema.push(quote!(#[schemars(regex(pattern = #pat))]));
    }
    if let Some((values, _)) = &r.one_of {
        let s = format_ident!("schema", span = Span::mixed_site());
        schema.push(quote!(#[schemars(transform = |#s: &mut #p::schemars::Schema| #p::rules::schema_one_of(#s, &[#(#values),*]))]));
    }
    match &f.ident {
        Some(id) => quote!(#(#attrs)* #(#schema)* #id: #ty),
        None => quote!(#(#attrs)* #(#schema)* #ty),
    }
}

/// The rule checks and nested validation of one field. `access` is a `&FieldTy` expression.
fn field_checks(
    f: &Field,
    access: TokenStream,
    parent: &TokenStream,
    errors: &syn::Ident,
    p: &TokenStream,
) -> TokenStream {
    let name = &f.json_name;
    let fpath = format_ident!("field_path", span = Span::mixed_site());
    let value = format_ident!("value", span = Span::mixed_site());
    let r = &f.rules;
    let mut checks = Vec::new();
    // The value, located at a rule's tokens: a rule on a field of the wrong type is reported there.
    let value_at = |span: Span| syn::Ident::new("value", Span::mixed_site().located_at(span));
    let range = r
        .range
        .as_ref()
        .map(|b| (b.min, b.max, b.span))
        .or_else(|| r.confidence.map(|s| (Some(0.0), Some(1.0), s)));
    if let Some((min, max, span)) = range {
        let min = super::opt(min);
        let max = super::opt(max);
        let value = value_at(span);
        checks.push(quote_spanned!(span=> #p::rules::range(#value, #min, #max, &#fpath, #errors);));
    }
    if let Some(b) = &r.length {
        let min = super::opt(b.min);
        let max = super::opt(b.max);
        let value = value_at(b.span);
        checks.push(
            quote_spanned!(b.span=> #p::rules::length(#value, #min, #max, &#fpath, #errors);),
        );
    }
    if let Some(pat) = &r.pattern {
        let re = format_ident!("PATTERN", span = Span::mixed_site());
        let value = value_at(pat.span());
        checks.push(quote_spanned! {pat.span()=>
            {
                static #re: #p::rules::Pattern = #p::rules::Pattern::new(#pat);
                #p::rules::pattern(#value, &#re, &#fpath, #errors);
            }
        });
    }
    if let Some((values, span)) = &r.one_of {
        let value = value_at(*span);
        checks.push(
            quote_spanned!(*span=> #p::rules::one_of(#value, &[#(#values),*], &#fpath, #errors);),
        );
    }
    if let Some(c) = &r.custom {
        let value = value_at(syn::spanned::Spanned::span(c));
        checks.push(quote_spanned!(syn::spanned::Spanned::span(c)=> #p::rules::custom(#c(#value), &#fpath, #errors);));
    }
    quote! {
        {
            let #value = #access;
            let #fpath = #parent.field(#name);
            #(#checks)*
            (&#p::Probe(#value)).__harness_validate(&#fpath, #errors);
        }
    }
}

#[cfg(test)]
mod tests {
    /// `cargo test -p harness-macros -- --ignored --nocapture print_expansions | rustfmt` shows
    /// what the README example expands to (used for `docs/macros.md`).
    #[test]
    #[ignore]
    fn print_expansions() {
        let output: syn::DeriveInput = syn::parse_quote! {
            /// The sentiment of one customer review.
            struct Sentiment {
                label: Label,
                /// How sure the model is, from 0 to 1.
                #[llm(confidence, range(min = 0.0, max = 1.0))]
                confidence: f64,
                #[llm(length(max = 280))]
                rationale: String,
            }
        };
        println!("{}", super::derive_output(output));
        let args = quote::quote! {
            model = "smollm2-135m",
            system = "You classify customer reviews.",
            prompt = "Review: {review}",
            timeout = "20s",
            on_timeout = retry(2),
            on_rate_limited = retry(5),
            on_provider_error = retry(2).then(fallback("gpt-4o-mini")),
            on_invalid_output = reask(2).then(fail),
            on_refusal = escalate,
            on_low_confidence(below = 0.7) = reask(1).then(escalate),
        };
        let item = quote::quote! {
            /// Classifies the sentiment of one customer review.
            async fn classify(review: &str) -> TaskResult<Sentiment>;
        };
        println!("{}", crate::expand::task(args, item));
    }
}
