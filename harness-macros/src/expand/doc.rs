//! The "Contract" section appended to a task's rustdoc, rendered by harness-spec's [`Sheet`] (the
//! renderer `TaskContract::doc()` uses too).

use harness_spec::{FailureClass, Sheet, defaults, sheet};
use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Task;
use crate::contract::render_steps;
use crate::util::format_ms;
use crate::util::type_string;

/// One `#[doc = ".."]` per line, after a blank line that ends the user's own docs.
pub fn contract_doc(t: &Task, version: &str) -> TokenStream {
    let mut s = Sheet::new("# Contract");
    s.facts(facts(t, version)).failures(failures(t));
    if !t.sources.is_empty() {
        s.sources(sources(t));
    }
    if let Some(p) = &t.prompt {
        s.code_block("Prompt:", "text", &p.template.value());
    }
    let lines = std::iter::once("").chain(s.lines());
    let attrs = lines.map(|l| quote!(#[doc = #l]));
    quote!(#(#attrs)*)
}

fn facts(t: &Task, version: &str) -> Vec<(&'static str, String)> {
    let model = t
        .model
        .as_ref()
        .map_or("(harness default)".into(), |m| format!("`{m}`"));
    let mut facts = vec![("model", model)];
    if let Some(p) = &t.provider {
        facts.push(("provider", format!("`{p}`")));
    }
    let limits = &t.limits;
    facts.push((
        "timeout",
        format!("{} per attempt", format_ms(limits.timeout_ms)),
    ));
    let deadline = limits
        .deadline_ms
        .map_or("derived from the timeout and the chains".into(), |ms| {
            format!("{} per call", format_ms(ms))
        });
    facts.push(("deadline", deadline));
    let inputs = t.inputs.iter().map(|i| (&i.ident, type_string(&i.ty)));
    facts.push(("inputs", sheet::inputs_cell(inputs)));
    facts.push(("output", format!("`{}`", type_string(&t.output))));
    let context = if t.body.is_some() {
        "built by the function body"
    } else {
        "`prompt` template"
    };
    facts.push(("context", context.to_owned()));
    if let Some(p) = policy_name(t) {
        facts.push(("policy", format!("`{p}`")));
    }
    if let Some(p) = &t.plan {
        let p = quote!(#p).to_string().replace(' ', "");
        facts.push((
            "context plan",
            format!("`{p}` (its sections: `{}::CONTRACT.doc()`)", t.name()),
        ));
    }
    facts.push(("version", format!("`{version}`")));
    facts
}

/// The task's own chains, and for the other classes the policy they come from.
fn failures(t: &Task) -> Vec<(String, String)> {
    let policy = policy_name(t);
    let mut rows = Vec::new();
    for class in FailureClass::ALL {
        if class.is_context() && t.sources.is_empty() {
            continue;
        }
        match (t.contracts.get(class), &policy) {
            (Some(c), _) => {
                let label = match c.below {
                    Some(b) => format!("{class} (below {b})"),
                    None => class.to_string(),
                };
                rows.push((label, sheet::code(&c.render_chain())));
            }
            (None, Some(p)) => {
                let suffix = if class == FailureClass::LowConfidence {
                    " (if the output has a confidence field)"
                } else {
                    ""
                };
                rows.push((class.to_string(), format!("from policy `{p}`{suffix}")));
            }
            (None, None) => {}
        }
    }
    rows
}

/// One row per declared source: its options (defaults filled in) and its contract.
fn sources(t: &Task) -> Vec<[String; 6]> {
    let task_level = t.contracts.get(FailureClass::ContextUnavailable);
    t.sources
        .iter()
        .map(|s| {
            let contract = match (&s.on_unavailable, task_level, policy_name(t)) {
                (Some(steps), _, _) => sheet::code(&render_steps(steps)),
                (None, Some(c), _) => format!("{} (the task's)", sheet::code(&c.render_chain())),
                (None, None, Some(p)) => format!("from policy `{p}`"),
                (None, None, None) => sheet::code("fail"),
            };
            [
                format!("`{}`", s.name),
                s.budget.to_string(),
                s.limit.unwrap_or(defaults::SOURCE_LIMIT).to_string(),
                format_ms(s.timeout_ms.unwrap_or(defaults::SOURCE_TIMEOUT_MS)),
                format!(
                    "`{}`",
                    s.section.clone().unwrap_or_else(|| s.name.to_string())
                ),
                contract,
            ]
        })
        .collect()
}

fn policy_name(t: &Task) -> Option<String> {
    let p = t.policy.as_ref()?;
    Some(quote!(#p).to_string().replace(' ', ""))
}
