//! The grammar of `#[llm_task(...)]`, `#[llm_policy(...)]` and `#[llm(...)]`: tokens → raw values.
//! Problems that concern one key are reported here; rules across keys live in `check`.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Path, Token};

use crate::ctxt::Ctxt;
use crate::util::{expr_f64, parse_duration, suggest};

/// Keys of `#[llm_task]` that are not contracts.
pub const TASK_KEYS: &[&str] = &[
    "model",
    "provider",
    "system",
    "prompt",
    "timeout",
    "deadline",
    "temperature",
    "max_tokens",
    "seed",
    "policy",
    "crate",
];

/// A failure class, mirroring `harness_core::FailureClass` (the macro crate cannot depend on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Timeout,
    RateLimited,
    ProviderError,
    InvalidOutput,
    Refusal,
    LowConfidence,
}

impl Class {
    pub const ALL: [Class; 6] = [
        Class::Timeout,
        Class::RateLimited,
        Class::ProviderError,
        Class::InvalidOutput,
        Class::Refusal,
        Class::LowConfidence,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Class::Timeout => "on_timeout",
            Class::RateLimited => "on_rate_limited",
            Class::ProviderError => "on_provider_error",
            Class::InvalidOutput => "on_invalid_output",
            Class::Refusal => "on_refusal",
            Class::LowConfidence => "on_low_confidence",
        }
    }

    pub fn name(self) -> &'static str {
        &self.key()[3..]
    }

    pub fn variant(self) -> &'static str {
        match self {
            Class::Timeout => "Timeout",
            Class::RateLimited => "RateLimited",
            Class::ProviderError => "ProviderError",
            Class::InvalidOutput => "InvalidOutput",
            Class::Refusal => "Refusal",
            Class::LowConfidence => "LowConfidence",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn from_key(key: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.key() == key)
    }

    /// The line suggested when the contract is missing.
    pub fn example(self) -> &'static str {
        match self {
            Class::Timeout => "on_timeout = retry(2),",
            Class::RateLimited => "on_rate_limited = retry(5),",
            Class::ProviderError => "on_provider_error = retry(2).then(fail),",
            Class::InvalidOutput => "on_invalid_output = reask(2).then(fail),",
            Class::Refusal => "on_refusal = escalate,",
            Class::LowConfidence => "on_low_confidence(below = 0.7) = reask(1).then(escalate),",
        }
    }

    /// Same table as `FailureClass::allows`: asking the model again cannot cure a transport failure.
    pub fn allows(self, kind: Kind) -> bool {
        match kind {
            Kind::Reask => matches!(
                self,
                Class::InvalidOutput | Class::Refusal | Class::LowConfidence
            ),
            _ => true,
        }
    }
}

/// An action's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Retry,
    Reask,
    Fallback,
    Escalate,
    Default,
    Fail,
}

pub const ACTIONS: &[&str] = &["retry", "reask", "fallback", "escalate", "default", "fail"];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Retry => "retry",
            Kind::Reask => "reask",
            Kind::Fallback => "fallback",
            Kind::Escalate => "escalate",
            Kind::Default => "default",
            Kind::Fail => "fail",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Kind::Escalate | Kind::Default | Kind::Fail)
    }
}

/// Backoff parameters of `retry(n, ...)`, each optional (the runtime default fills the rest).
#[derive(Clone, Default)]
pub struct BackoffArgs {
    pub initial_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub multiplier: Option<f64>,
    pub jitter: Option<bool>,
}

/// One step of a chain.
#[derive(Clone)]
pub enum Step {
    Retry {
        times: u32,
        backoff: BackoffArgs,
    },
    Reask {
        times: u32,
    },
    Fallback {
        model: String,
        provider: Option<String>,
    },
    Escalate,
    Default(Box<Expr>),
    Fail,
}

impl Step {
    pub fn kind(&self) -> Kind {
        match self {
            Step::Retry { .. } => Kind::Retry,
            Step::Reask { .. } => Kind::Reask,
            Step::Fallback { .. } => Kind::Fallback,
            Step::Escalate => Kind::Escalate,
            Step::Default(_) => Kind::Default,
            Step::Fail => Kind::Fail,
        }
    }

    /// The step as written in the canonical form (docs and the version hash).
    pub fn render(&self) -> String {
        match self {
            Step::Retry { times, backoff } => {
                let mut s = format!("retry({times}");
                if let Some(v) = backoff.initial_ms {
                    s += &format!(", initial = \"{}\"", crate::util::format_ms(v));
                }
                if let Some(v) = backoff.max_ms {
                    s += &format!(", max = \"{}\"", crate::util::format_ms(v));
                }
                if let Some(v) = backoff.multiplier {
                    s += &format!(", multiplier = {v:?}");
                }
                if let Some(v) = backoff.jitter {
                    s += &format!(", jitter = {v}");
                }
                s + ")"
            }
            Step::Reask { times } => format!("reask({times})"),
            Step::Fallback { model, provider } => match provider {
                Some(p) => format!("fallback({model:?}, provider = {p:?})"),
                None => format!("fallback({model:?})"),
            },
            Step::Escalate => "escalate".into(),
            Step::Default(e) => format!("default({})", quote::quote!(#e)),
            Step::Fail => "fail".into(),
        }
    }
}

/// A step with the span of its action name.
#[derive(Clone)]
pub struct SpannedStep {
    pub step: Step,
    pub span: Span,
}

/// `on_x[(below = ..)] = chain`.
#[derive(Clone)]
pub struct ContractDecl {
    pub class: Class,
    pub key: Ident,
    pub below: Option<(f64, Span)>,
    pub steps: Vec<SpannedStep>,
}

/// Render a chain as written: `retry(2).then(fail)`.
pub fn render_chain(steps: &[SpannedStep]) -> String {
    let mut s = String::new();
    for (i, st) in steps.iter().enumerate() {
        if i == 0 {
            s += &st.step.render();
        } else {
            s += &format!(".then({})", st.step.render());
        }
    }
    s
}

/// A value with the span of its key (for "duplicate" and cross-key errors).
pub struct Keyed<T> {
    pub key: Ident,
    pub value: T,
}

/// Everything `#[llm_task(...)]` (or, with only contracts, `#[llm_policy(...)]`) says.
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
    pub krate: Option<Keyed<Path>>,
    pub contracts: Vec<ContractDecl>,
}

/// Which macro is being parsed: policies accept only contracts (and `crate`), and no `default`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Site {
    Task,
    Policy,
}

impl TaskArgs {
    pub fn contract(&self, class: Class) -> Option<&ContractDecl> {
        self.contracts.iter().find(|c| c.class == class)
    }
}

/// Parses the attribute arguments, reporting every problem into `cx`. Only a token-level syntax
/// error (something that is not `key = value` at all) stops the parse.
pub fn parse_task_args(cx: &Ctxt, tokens: TokenStream, site: Site) -> TaskArgs {
    let mut args = TaskArgs::default();
    let parser = |input: ParseStream| -> syn::Result<()> {
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            parse_entry(cx, input, &key, &mut args, site)?;
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
fn skip_value(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
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

fn parse_entry(
    cx: &Ctxt,
    input: ParseStream,
    key: &Ident,
    args: &mut TaskArgs,
    site: Site,
) -> syn::Result<()> {
    let name = key.to_string();
    if let Some(class) = Class::from_key(&name) {
        return parse_contract(cx, input, key, class, args, site);
    }
    let allowed: Vec<&str> = match site {
        Site::Task => TASK_KEYS
            .iter()
            .copied()
            .chain(Class::ALL.iter().map(|c| c.key()))
            .collect(),
        Site::Policy => std::iter::once("crate")
            .chain(Class::ALL.iter().map(|c| c.key()))
            .collect(),
    };
    if !allowed.contains(&name.as_str()) {
        let help = if site == Site::Policy && TASK_KEYS.contains(&name.as_str()) {
            format!(
                "`{name}` belongs on each `#[llm_task]`; a policy holds only failure contracts (`on_timeout = ...`, ...)"
            )
        } else {
            suggest(&name, &allowed)
        };
        let what = if site == Site::Policy {
            "llm_policy"
        } else {
            "llm_task"
        };
        cx.error_spanned_by(
            key,
            format_args!("unknown key `{name}` in `#[{what}]`"),
            help,
        );
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
        } else if input.peek(syn::token::Paren) {
            input.parse::<TokenTree>()?;
            if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
            }
        }
        return skip_value(input);
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
    match name.as_str() {
        "model" | "provider" | "system" | "prompt" => {
            let lit = lit_str(cx, &value, &name);
            let slot = match name.as_str() {
                "model" => &mut args.model,
                "provider" => &mut args.provider,
                "system" => &mut args.system,
                _ => &mut args.prompt,
            };
            if let Some(l) = &lit {
                if l.value().trim().is_empty() && name != "system" {
                    cx.error_spanned_by(
                        l,
                        format_args!("`{name}` is empty"),
                        format_args!("give `{name}` a non-empty string, or leave the key out"),
                    );
                }
            }
            set_once(cx, slot, key, lit);
        }
        "timeout" | "deadline" => {
            let ms = duration(cx, &value, &name);
            let slot = if name == "timeout" {
                &mut args.timeout_ms
            } else {
                &mut args.deadline_ms
            };
            set_once(cx, slot, key, ms);
        }
        "temperature" => {
            let v = match expr_f64(&value) {
                Some(v) if (0.0..=2.0).contains(&v) => Some(v),
                Some(v) => {
                    cx.error_spanned_by(
                        &value,
                        format_args!("temperature {v} is outside 0..=2"),
                        "use a temperature between 0.0 and 2.0, e.g. `temperature = 0.0`",
                    );
                    None
                }
                None => {
                    cx.error_spanned_by(
                        &value,
                        "`temperature` must be a number literal",
                        "write e.g. `temperature = 0.2`",
                    );
                    None
                }
            };
            set_once(cx, &mut args.temperature, key, v);
        }
        "max_tokens" => {
            let v = int_lit::<u32>(cx, &value, &name).filter(|v| {
                if *v == 0 {
                    cx.error_spanned_by(
                        &value,
                        "`max_tokens` must be at least 1",
                        "write e.g. `max_tokens = 256`",
                    );
                }
                *v > 0
            });
            set_once(cx, &mut args.max_tokens, key, v);
        }
        "seed" => {
            let v = int_lit::<u64>(cx, &value, &name);
            set_once(cx, &mut args.seed, key, v);
        }
        "policy" | "crate" => {
            let p = match &value {
                Expr::Path(p) if p.qself.is_none() => Some(p.path.clone()),
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
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
            };
            let slot = if name == "policy" {
                &mut args.policy
            } else {
                &mut args.krate
            };
            set_once(cx, slot, key, p);
        }
        _ => unreachable!("every allowed key is handled"),
    }
    Ok(())
}

fn lit_str(cx: &Ctxt, value: &Expr, name: &str) -> Option<LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
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

fn int_lit<T: std::str::FromStr>(cx: &Ctxt, value: &Expr, name: &str) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    match value {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
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

fn duration(cx: &Ctxt, value: &Expr, name: &str) -> Option<u64> {
    let lit = lit_str(cx, value, name)?;
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

fn parse_contract(
    cx: &Ctxt,
    input: ParseStream,
    key: &Ident,
    class: Class,
    args: &mut TaskArgs,
    site: Site,
) -> syn::Result<()> {
    let mut below = None;
    // A threshold that was written but rejected is already reported; do not also say it is missing.
    let mut below_written = false;
    if input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in input);
        while !content.is_empty() {
            let k = Ident::parse_any(&content)?;
            if k == "below" {
                below_written = true;
                content.parse::<Token![=]>()?;
                let v: Expr = content.parse()?;
                match expr_f64(&v) {
                    Some(t) if (0.0..=1.0).contains(&t) => below = Some((t, v.span())),
                    Some(t) => cx.error_spanned_by(
                        &v,
                        format_args!("threshold {t} is outside 0..=1"),
                        "confidence is between 0 and 1: write e.g. `below = 0.7`",
                    ),
                    None => cx.error_spanned_by(
                        &v,
                        "the threshold must be a number literal",
                        "write e.g. `below = 0.7`",
                    ),
                }
            } else {
                cx.error_spanned_by(&k, format_args!("unknown parameter `{k}` of `{}`", class.key()), if class == Class::LowConfidence { "the only parameter is the threshold: `on_low_confidence(below = 0.7) = ...`".to_owned() } else { format!("`{}` takes no parameters: write `{} = ...`", class.key(), class.key()) });
                if content.peek(Token![=]) {
                    content.parse::<Token![=]>()?;
                    content.parse::<Expr>()?;
                }
            }
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
    }
    if !input.peek(Token![=]) {
        cx.error_spanned_by(
            key,
            format_args!("`{}` needs a chain of actions", class.key()),
            format_args!("write e.g. `{}`", class.example().trim_end_matches(',')),
        );
        return skip_value(input);
    }
    input.parse::<Token![=]>()?;
    let value: Expr = input.parse()?;
    if class == Class::LowConfidence && !below_written {
        cx.error_spanned_by(key, "`on_low_confidence` needs a threshold", "write `on_low_confidence(below = 0.7) = ...`: answers whose confidence is below it trigger the chain");
    }
    if class != Class::LowConfidence && below_written {
        cx.error_spanned_by(
            key,
            format_args!("`below` only applies to `on_low_confidence`"),
            format_args!("write `{} = ...`", class.key()),
        );
    }
    let steps = parse_chain(cx, &value, class, site);
    if args.contract(class).is_some() {
        cx.error_spanned_by(
            key,
            format_args!("`{}` is declared twice", class.key()),
            format_args!("keep one `{}` contract; chain its steps with `.then(..)`, e.g. `retry(2).then(fail)`", class.key()),
        );
        return Ok(());
    }
    args.contracts.push(ContractDecl {
        class,
        key: key.clone(),
        below,
        steps,
    });
    Ok(())
}

/// `a.then(b).then(c)` → `[a, b, c]`.
fn flatten<'a>(cx: &Ctxt, e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::MethodCall(m) if m.method == "then" => {
            flatten(cx, &m.receiver, out);
            if m.args.len() == 1 {
                out.push(&m.args[0]);
            } else {
                cx.error_spanned_by(
                    &m.method,
                    "`.then(..)` takes exactly one action",
                    "write `.then(fail)`, `.then(fallback(\"model\"))`, ...",
                );
            }
        }
        Expr::MethodCall(m) => {
            flatten(cx, &m.receiver, out);
            cx.error_spanned_by(
                &m.method,
                format_args!("unknown combinator `.{}(..)`", m.method),
                "chain actions with `.then(..)`, e.g. `retry(2).then(fail)`",
            );
        }
        other => out.push(other),
    }
}

fn parse_chain(cx: &Ctxt, value: &Expr, class: Class, site: Site) -> Vec<SpannedStep> {
    let mut exprs = Vec::new();
    flatten(cx, value, &mut exprs);
    let mut steps: Vec<SpannedStep> = Vec::new();
    for e in exprs {
        let Some(step) = parse_step(cx, e, class, site) else {
            continue;
        };
        steps.push(step);
    }
    steps
}

fn parse_step(cx: &Ctxt, e: &Expr, class: Class, site: Site) -> Option<SpannedStep> {
    let (ident, args): (
        &Ident,
        Option<&syn::punctuated::Punctuated<Expr, Token![,]>>,
    ) = match e {
        Expr::Path(p) if p.path.get_ident().is_some() => (p.path.get_ident()?, None),
        Expr::Call(c) => match &*c.func {
            Expr::Path(p) if p.path.get_ident().is_some() => (p.path.get_ident()?, Some(&c.args)),
            other => {
                cx.error_spanned_by(
                    other,
                    "expected an action",
                    format_args!("actions are {}", ACTIONS.join(", ")),
                );
                return None;
            }
        },
        other => {
            cx.error_spanned_by(other, "expected an action", "write e.g. `retry(2)`, `reask(1)`, `fallback(\"gpt-4o-mini\")`, `escalate`, `default(value)` or `fail`, chained with `.then(..)`");
            return None;
        }
    };
    let name = ident.to_string();
    let span = ident.span();
    let step = match name.as_str() {
        "retry" | "reask" => {
            let Some(args) = args.filter(|a| !a.is_empty()) else {
                cx.error_spanned_by(
                    ident,
                    format_args!("`{name}` needs a count"),
                    format_args!("write `{name}(2)`: how many more attempts"),
                );
                return None;
            };
            let mut it = args.iter();
            let count = it.next()?;
            let times = match count {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Int(i),
                    ..
                }) => match i.base10_parse::<u32>() {
                    Ok(0) => {
                        cx.error_spanned_by(
                            i,
                            format_args!("`{name}(0)` makes no attempt"),
                            format_args!("use at least `{name}(1)`, or remove the step"),
                        );
                        return None;
                    }
                    Ok(n) if n > 100 => {
                        cx.error_spanned_by(
                            i,
                            format_args!(
                                "`{name}({n})` is more attempts than any call should make"
                            ),
                            format_args!("use at most {name}(100); a handful is usually right"),
                        );
                        return None;
                    }
                    Ok(n) => n,
                    Err(_) => {
                        cx.error_spanned_by(
                            i,
                            "the count must be a small positive integer",
                            format_args!("write e.g. `{name}(2)`"),
                        );
                        return None;
                    }
                },
                other => {
                    cx.error_spanned_by(
                        other,
                        "the count must be an integer literal",
                        format_args!("write e.g. `{name}(2)`"),
                    );
                    return None;
                }
            };
            if name == "reask" {
                if let Some(extra) = it.next() {
                    cx.error_spanned_by(extra, "`reask` takes only a count", "write `reask(2)`");
                }
                Step::Reask { times }
            } else {
                let mut backoff = BackoffArgs::default();
                for a in it {
                    parse_backoff_arg(cx, a, &mut backoff);
                }
                // The runtime default is 200ms..10s: compare against it when one bound is left out.
                let (initial, max) = (
                    backoff.initial_ms.unwrap_or(200),
                    backoff.max_ms.unwrap_or(10_000),
                );
                if initial > max {
                    cx.error_spanned_by(
                        e,
                        format_args!("the first delay ({}) is longer than the longest ({})", crate::util::format_ms(initial), crate::util::format_ms(max)),
                        "make `initial` at most `max` (defaults: initial = \"200ms\", max = \"10s\")",
                    );
                }
                Step::Retry { times, backoff }
            }
        }
        "fallback" => {
            let Some(args) = args.filter(|a| !a.is_empty()) else {
                cx.error_spanned_by(ident, "`fallback` needs a model", "write `fallback(\"gpt-4o-mini\")` or `fallback(\"claude-3-5-haiku\", provider = \"anthropic\")`");
                return None;
            };
            let mut it = args.iter();
            let model = match it.next()? {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) if !s.value().trim().is_empty() => s.value(),
                other => {
                    cx.error_spanned_by(
                        other,
                        "the fallback model must be a non-empty string literal",
                        "write `fallback(\"gpt-4o-mini\")`",
                    );
                    return None;
                }
            };
            let mut provider = None;
            for a in it {
                match a {
                    Expr::Assign(asg) if matches!(&*asg.left, Expr::Path(p) if p.path.is_ident("provider")) => {
                        match &*asg.right {
                            Expr::Lit(syn::ExprLit {
                                lit: syn::Lit::Str(s),
                                ..
                            }) => provider = Some(s.value()),
                            other => cx.error_spanned_by(
                                other,
                                "`provider` must be a string literal",
                                "write `provider = \"anthropic\"`",
                            ),
                        }
                    }
                    other => cx.error_spanned_by(
                        other,
                        "unexpected argument to `fallback`",
                        "the only named argument is `provider = \"name\"`",
                    ),
                }
            }
            Step::Fallback { model, provider }
        }
        "escalate" | "fail" => {
            if let Some(args) = args {
                cx.error_spanned_by(
                    e,
                    format_args!("`{name}` takes no arguments"),
                    format_args!("write `{name}`"),
                );
                let _ = args;
            }
            if name == "fail" {
                Step::Fail
            } else {
                Step::Escalate
            }
        }
        "default" => {
            if site == Site::Policy {
                cx.error_spanned_by(ident, "`default(..)` cannot be used in a policy", "a default value has the task's output type: put `default(..)` in the task's own contract for this class, which overrides the policy's");
                return None;
            }
            match args.map(|a| a.len()) {
                Some(1) => Step::Default(Box::new(args?[0].clone())),
                _ => {
                    cx.error_spanned_by(
                        e,
                        "`default` takes one value of the task's output type",
                        "write `default(expr)`, e.g. `default(Sentiment::unknown())`",
                    );
                    return None;
                }
            }
        }
        other => {
            cx.error_spanned_by(
                ident,
                format_args!("unknown action `{other}`"),
                suggest(other, ACTIONS),
            );
            return None;
        }
    };
    let kind = step.kind();
    if !class.allows(kind) {
        cx.error_spanned_by(
            ident,
            format_args!("`{}` cannot answer `{}`", kind.name(), class.key()),
            format_args!("asking the model again does not help when the request never got an answer; use `retry(n)`, `fallback(\"model\")`, `escalate`, `default(..)` or `fail`"),
        );
    }
    Some(SpannedStep { step, span })
}

fn parse_backoff_arg(cx: &Ctxt, a: &Expr, b: &mut BackoffArgs) {
    const KEYS: &[&str] = &["initial", "max", "multiplier", "jitter"];
    let Expr::Assign(asg) = a else {
        cx.error_spanned_by(a, "unexpected argument to `retry`", "after the count, `retry` takes `initial = \"200ms\"`, `max = \"10s\"`, `multiplier = 2.0`, `jitter = true`");
        return;
    };
    let Some(k) = (match &*asg.left {
        Expr::Path(p) => p.path.get_ident(),
        _ => None,
    }) else {
        cx.error_spanned_by(&asg.left, "expected a parameter name", suggest("", KEYS));
        return;
    };
    let v = &*asg.right;
    match k.to_string().as_str() {
        "initial" => b.initial_ms = duration(cx, v, "initial"),
        "max" => b.max_ms = duration(cx, v, "max"),
        "multiplier" => match expr_f64(v) {
            Some(m) if (1.0..=10.0).contains(&m) => b.multiplier = Some(m),
            _ => cx.error_spanned_by(
                v,
                "`multiplier` must be a number between 1.0 and 10.0",
                "write e.g. `multiplier = 2.0` (1.0 gives a fixed delay)",
            ),
        },
        "jitter" => match v {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Bool(x),
                ..
            }) => b.jitter = Some(x.value),
            _ => cx.error_spanned_by(
                v,
                "`jitter` must be `true` or `false`",
                "write `jitter = true`",
            ),
        },
        other => cx.error_spanned_by(
            k,
            format_args!("unknown `retry` parameter `{other}`"),
            suggest(other, KEYS),
        ),
    }
}
