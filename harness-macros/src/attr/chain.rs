//! Contracts and their chains: `on_x[(below = ..)] = action.then(action)...`, each action checked
//! against its class (`FailureClass::allows`, from harness-spec).

use harness_spec::{ActionKind, FailureClass};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, Token};

use super::literal;
use super::{Site, skip_value};
use crate::contract::{Backoff, Contract, Contracts, SpannedStep, Step};
use crate::ctxt::Ctxt;
use crate::util::format_ms;

/// The arguments of an action call: `retry(2, initial = "1s")` → `2, initial = "1s"`.
type Args = Punctuated<Expr, Token![,]>;

/// The names of `retry`'s backoff parameters.
const BACKOFF_KEYS: &[&str] = &["initial", "max", "multiplier", "jitter"];

/// The line suggested when the contract for `class` is missing.
pub fn example(class: FailureClass) -> &'static str {
    match class {
        FailureClass::Timeout => "on_timeout = retry(2),",
        FailureClass::RateLimited => "on_rate_limited = retry(5),",
        FailureClass::ProviderError => "on_provider_error = retry(2).then(fail),",
        FailureClass::InvalidOutput => "on_invalid_output = reask(2).then(fail),",
        FailureClass::Refusal => "on_refusal = escalate,",
        FailureClass::LowConfidence => "on_low_confidence(below = 0.7) = reask(1).then(escalate),",
        FailureClass::ContextUnavailable => "on_context_unavailable = retry(1).then(proceed),",
    }
}

/// `on_x[(below = ..)] = chain`, after the key.
pub(super) fn parse_contract(
    cx: &Ctxt,
    input: ParseStream,
    key: &Ident,
    class: FailureClass,
    contracts: &mut Contracts,
    site: Site,
) -> syn::Result<()> {
    let (below, below_written) = parse_threshold(cx, input, class)?;
    if !input.peek(Token![=]) {
        cx.error_spanned_by(
            key,
            format_args!("`{}` needs a chain of actions", class.attribute_key()),
            format_args!("write e.g. `{}`", example(class).trim_end_matches(',')),
        );
        return skip_value(input);
    }
    input.parse::<Token![=]>()?;
    let value: Expr = input.parse()?;
    threshold_belongs(cx, key, class, below_written);
    let steps = parse_chain(cx, &value, class, site);
    let contract = Contract {
        class,
        key: key.clone(),
        below,
        steps,
    };
    if !contracts.insert(contract) {
        cx.error_spanned_by(
            key,
            format_args!("`{}` is declared twice", class.attribute_key()),
            format_args!("keep one `{}` contract; chain its steps with `.then(..)`, e.g. `retry(2).then(fail)`", class.attribute_key()),
        );
    }
    Ok(())
}

/// `(below = 0.7)` after the key: the threshold, and whether one was written at all (a threshold
/// that was written but rejected is already reported; it must not also be said to be missing).
fn parse_threshold(
    cx: &Ctxt,
    input: ParseStream,
    class: FailureClass,
) -> syn::Result<(Option<f64>, bool)> {
    let (mut below, mut written) = (None, false);
    if !input.peek(syn::token::Paren) {
        return Ok((below, written));
    }
    let content;
    syn::parenthesized!(content in input);
    while !content.is_empty() {
        let k = Ident::parse_any(&content)?;
        if k == "below" {
            written = true;
            content.parse::<Token![=]>()?;
            below = threshold_value(cx, &content.parse()?).or(below);
        } else {
            unknown_contract_param(cx, &k, class);
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
    Ok((below, written))
}

fn threshold_value(cx: &Ctxt, v: &Expr) -> Option<f64> {
    match literal::number(v) {
        Some(t) if (0.0..=1.0).contains(&t) => return Some(t),
        Some(t) => cx.error_spanned_by(
            v,
            format_args!("threshold {t} is outside 0..=1"),
            "confidence is between 0 and 1: write e.g. `below = 0.7`",
        ),
        None => cx.error_spanned_by(
            v,
            "the threshold must be a number literal",
            "write e.g. `below = 0.7`",
        ),
    }
    None
}

fn unknown_contract_param(cx: &Ctxt, k: &Ident, class: FailureClass) {
    let key = class.attribute_key();
    let help = if class == FailureClass::LowConfidence {
        "the only parameter is the threshold: `on_low_confidence(below = 0.7) = ...`".to_owned()
    } else {
        format!("`{key}` takes no parameters: write `{key} = ...`")
    };
    cx.error_spanned_by(k, format_args!("unknown parameter `{k}` of `{key}`"), help);
}

/// `on_low_confidence` needs `below`; no other class takes it.
fn threshold_belongs(cx: &Ctxt, key: &Ident, class: FailureClass, below_written: bool) {
    if class == FailureClass::LowConfidence && !below_written {
        cx.error_spanned_by(key, "`on_low_confidence` needs a threshold", "write `on_low_confidence(below = 0.7) = ...`: answers whose confidence is below it trigger the chain");
    }
    if class != FailureClass::LowConfidence && below_written {
        cx.error_spanned_by(
            key,
            format_args!("`below` only applies to `on_low_confidence`"),
            format_args!("write `{} = ...`", class.attribute_key()),
        );
    }
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

pub(super) fn parse_chain(
    cx: &Ctxt,
    value: &Expr,
    class: FailureClass,
    site: Site,
) -> Vec<SpannedStep> {
    let mut exprs = Vec::new();
    flatten(cx, value, &mut exprs);
    exprs
        .into_iter()
        .filter_map(|e| parse_step(cx, e, class, site))
        .collect()
}

/// One action, checked against its class.
fn parse_step(cx: &Ctxt, e: &Expr, class: FailureClass, site: Site) -> Option<SpannedStep> {
    let (ident, args) = action_call(cx, e)?;
    let name = ident.to_string();
    let step = match ActionKind::from_name(&name) {
        Some(ActionKind::Retry) => retry(cx, e, ident, args)?,
        Some(ActionKind::Reask) => reask(cx, ident, args)?,
        Some(ActionKind::Fallback) => fallback(cx, ident, args)?,
        Some(ActionKind::Default) => default(cx, e, ident, args, site)?,
        Some(kind @ (ActionKind::Escalate | ActionKind::Fail | ActionKind::Proceed)) => {
            terminal(cx, e, kind, args)
        }
        None => {
            let actions = ActionKind::ALL.map(ActionKind::as_str);
            let help = crate::util::suggest(&name, &actions);
            cx.error_spanned_by(ident, format_args!("unknown action `{name}`"), help);
            return None;
        }
    };
    let kind = step.kind();
    if !class.allows(kind) {
        let help = if kind == ActionKind::Proceed {
            "`proceed` goes on without a context source that is down: it only answers `on_context_unavailable` and a source's `on_unavailable`; here use `retry(n)`, `fallback(\"model\")`, `escalate`, `default(..)` or `fail`"
        } else if class.is_context() {
            "the model is not asked anything until the sources are fetched; use `retry(n)`, `fallback(\"other_source\")`, `proceed`, `escalate`, `default(..)` or `fail`"
        } else {
            "asking the model again does not help when the request never got an answer; use `retry(n)`, `fallback(\"model\")`, `escalate`, `default(..)` or `fail`"
        };
        cx.error_spanned_by(
            ident,
            format_args!("`{kind}` cannot answer `{}`", class.attribute_key()),
            help,
        );
    }
    if let (
        true,
        Step::Fallback {
            provider: Some(_), ..
        },
    ) = (class.is_context(), &step)
    {
        cx.error_spanned_by(
            ident,
            "a source's `fallback` names another registered source, not a provider",
            "write `fallback(\"kb_mirror\")`: the name the other source is registered under",
        );
    }
    Some(SpannedStep {
        step,
        span: ident.span(),
    })
}

/// `name` or `name(args)`.
fn action_call<'a>(cx: &Ctxt, e: &'a Expr) -> Option<(&'a Ident, Option<&'a Args>)> {
    match e {
        Expr::Path(p) if p.path.get_ident().is_some() => Some((p.path.get_ident()?, None)),
        Expr::Call(c) => match &*c.func {
            Expr::Path(p) if p.path.get_ident().is_some() => {
                Some((p.path.get_ident()?, Some(&c.args)))
            }
            other => {
                let actions = ActionKind::ALL.map(ActionKind::as_str);
                cx.error_spanned_by(
                    other,
                    "expected an action",
                    format_args!("actions are {}", actions.join(", ")),
                );
                None
            }
        },
        other => {
            cx.error_spanned_by(other, "expected an action", "write e.g. `retry(2)`, `reask(1)`, `fallback(\"gpt-4o-mini\")`, `escalate`, `default(value)` or `fail`, chained with `.then(..)`");
            None
        }
    }
}

/// The count of `retry(n, ..)`/`reask(n)` (1..=100), and the arguments after it.
fn count<'a>(
    cx: &Ctxt,
    ident: &Ident,
    args: Option<&'a Args>,
) -> Option<(u32, impl Iterator<Item = &'a Expr>)> {
    let Some(args) = args.filter(|a| !a.is_empty()) else {
        cx.error_spanned_by(
            ident,
            format_args!("`{ident}` needs a count"),
            format_args!("write `{ident}(2)`: how many more attempts"),
        );
        return None;
    };
    let mut it = args.iter();
    let times = count_value(cx, ident, it.next()?)?;
    Some((times, it))
}

fn count_value(cx: &Ctxt, name: &Ident, count: &Expr) -> Option<u32> {
    let Expr::Lit(ExprLit {
        lit: Lit::Int(i), ..
    }) = count
    else {
        cx.error_spanned_by(
            count,
            "the count must be an integer literal",
            format_args!("write e.g. `{name}(2)`"),
        );
        return None;
    };
    match i.base10_parse::<u32>() {
        Ok(0) => cx.error_spanned_by(
            i,
            format_args!("`{name}(0)` makes no attempt"),
            format_args!("use at least `{name}(1)`, or remove the step"),
        ),
        Ok(n) if n > 100 => cx.error_spanned_by(
            i,
            format_args!("`{name}({n})` is more attempts than any call should make"),
            format_args!("use at most {name}(100); a handful is usually right"),
        ),
        Ok(n) => return Some(n),
        Err(_) => cx.error_spanned_by(
            i,
            "the count must be a small positive integer",
            format_args!("write e.g. `{name}(2)`"),
        ),
    }
    None
}

fn reask(cx: &Ctxt, ident: &Ident, args: Option<&Args>) -> Option<Step> {
    let (times, mut rest) = count(cx, ident, args)?;
    if let Some(extra) = rest.next() {
        cx.error_spanned_by(extra, "`reask` takes only a count", "write `reask(2)`");
    }
    Some(Step::Reask { times })
}

fn retry(cx: &Ctxt, e: &Expr, ident: &Ident, args: Option<&Args>) -> Option<Step> {
    let (times, rest) = count(cx, ident, args)?;
    let mut backoff = Backoff::default();
    for a in rest {
        parse_backoff_arg(cx, a, &mut backoff);
    }
    // Compare against the runtime default when one bound is left out.
    let (initial, max) = (backoff.initial_or_default(), backoff.max_or_default());
    if initial > max {
        cx.error_spanned_by(
            e,
            format_args!(
                "the first delay ({}) is longer than the longest ({})",
                format_ms(initial),
                format_ms(max)
            ),
            format_args!(
                "make `initial` at most `max` (defaults: initial = \"{}\", max = \"{}\")",
                format_ms(harness_spec::defaults::BACKOFF_INITIAL_MS),
                format_ms(harness_spec::defaults::BACKOFF_MAX_MS)
            ),
        );
    }
    Some(Step::Retry { times, backoff })
}

fn parse_backoff_arg(cx: &Ctxt, a: &Expr, b: &mut Backoff) {
    let Expr::Assign(asg) = a else {
        cx.error_spanned_by(a, "unexpected argument to `retry`", "after the count, `retry` takes `initial = \"200ms\"`, `max = \"10s\"`, `multiplier = 2.0`, `jitter = true`");
        return;
    };
    let Some(k) = (match &*asg.left {
        Expr::Path(p) => p.path.get_ident(),
        _ => None,
    }) else {
        let help = crate::util::suggest("", BACKOFF_KEYS);
        cx.error_spanned_by(&asg.left, "expected a parameter name", help);
        return;
    };
    let v = &*asg.right;
    match k.to_string().as_str() {
        "initial" => b.initial_ms = literal::duration(cx, v, "initial"),
        "max" => b.max_ms = literal::duration(cx, v, "max"),
        "multiplier" => match literal::number(v) {
            Some(m) if (1.0..=10.0).contains(&m) => b.multiplier = Some(m),
            _ => cx.error_spanned_by(
                v,
                "`multiplier` must be a number between 1.0 and 10.0",
                "write e.g. `multiplier = 2.0` (1.0 gives a fixed delay)",
            ),
        },
        "jitter" => match v {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(x), ..
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
            crate::util::suggest(other, BACKOFF_KEYS),
        ),
    }
}

fn fallback(cx: &Ctxt, ident: &Ident, args: Option<&Args>) -> Option<Step> {
    let Some(args) = args.filter(|a| !a.is_empty()) else {
        cx.error_spanned_by(ident, "`fallback` needs a model", "write `fallback(\"gpt-4o-mini\")` or `fallback(\"claude-3-5-haiku\", provider = \"anthropic\")`");
        return None;
    };
    let mut it = args.iter();
    let model = match it.next()? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
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
        fallback_arg(cx, a, &mut provider);
    }
    Some(Step::Fallback { model, provider })
}

/// `provider = "name"`, the only named argument of `fallback`.
fn fallback_arg(cx: &Ctxt, a: &Expr, provider: &mut Option<String>) {
    match a {
        Expr::Assign(asg) if matches!(&*asg.left, Expr::Path(p) if p.path.is_ident("provider")) => {
            match &*asg.right {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => *provider = Some(s.value()),
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

/// `escalate` or `fail`: no arguments.
fn terminal(cx: &Ctxt, e: &Expr, kind: ActionKind, args: Option<&Args>) -> Step {
    if args.is_some() {
        cx.error_spanned_by(
            e,
            format_args!("`{kind}` takes no arguments"),
            format_args!("write `{kind}`"),
        );
    }
    match kind {
        ActionKind::Fail => Step::Fail,
        ActionKind::Proceed => Step::Proceed,
        _ => Step::Escalate,
    }
}

/// `default(expr)`: one value of the task's output type; not in a policy.
fn default(cx: &Ctxt, e: &Expr, ident: &Ident, args: Option<&Args>, site: Site) -> Option<Step> {
    if site == Site::Policy {
        cx.error_spanned_by(ident, "`default(..)` cannot be used in a policy", "a default value has the task's output type: put `default(..)` in the task's own contract for this class, which overrides the policy's");
        return None;
    }
    match args {
        Some(a) if a.len() == 1 => Some(Step::Default(Box::new(a[0].clone()))),
        _ => {
            cx.error_spanned_by(
                e,
                "`default` takes one value of the task's output type",
                "write `default(expr)`, e.g. `default(Sentiment::unknown())`",
            );
            None
        }
    }
}
