//! Rules that involve several attributes or the signature: every class has a contract, chains end
//! where they end, the prompt's placeholders are arguments, the context comes from one place.

use harness_spec::FailureClass;
use syn::{Ident, LitStr};

use crate::ast::task::Input;
use crate::ast::{Policy, Task};
use crate::attr::chain::example;
use crate::contract::{Contracts, SpannedStep};
use crate::ctxt::Ctxt;

/// Every check on a task.
pub fn task(cx: &Ctxt, t: &Task) {
    chains(cx, &t.contracts);
    for s in &t.sources {
        if let Some(steps) = &s.on_unavailable {
            chain_order(cx, steps);
        }
    }
    missing_contracts(cx, t.name(), &t.contracts, t.policy.is_some());
    sources(cx, t);
    context_source(cx, t);
    // With an argument the signature check rejected, placeholders cannot be judged fairly.
    if let Some(p) = t.prompt.as_ref().filter(|_| t.inputs_complete) {
        placeholders(cx, &p.template, &t.inputs, t.name());
    }
    let limits = &t.limits;
    if let (true, Some(d), Some(key)) = (
        limits.timeout_declared,
        limits.deadline_ms,
        &limits.deadline_key,
    ) {
        if d < limits.timeout_ms {
            cx.error_spanned_by(key, "the deadline is shorter than one attempt's timeout", "make `deadline` at least as long as `timeout` (the deadline covers every attempt of one call)");
        }
    }
}

/// Every check on a policy.
pub fn policy(cx: &Ctxt, p: &Policy) {
    chains(cx, &p.contracts);
    if p.contracts.is_empty() {
        cx.error_spanned_by(&p.item.ident, "this policy declares no contracts", "add contracts such as `#[llm_policy(on_timeout = retry(2), on_rate_limited = retry(5))]`");
    }
}

/// Nothing may follow a terminal action.
fn chains(cx: &Ctxt, contracts: &Contracts) {
    for c in contracts.iter() {
        chain_order(cx, &c.steps);
    }
}

/// Nothing may follow a terminal action in `steps`.
fn chain_order(cx: &Ctxt, steps: &[SpannedStep]) {
    if let Some(pos) = steps.iter().position(|s| s.step.kind().is_terminal()) {
        let term = steps[pos].step.kind();
        if let Some(next) = steps.get(pos + 1) {
            cx.error_at(
                next.span,
                format_args!(
                    "`{}` can never run: `{term}` ends the chain",
                    next.step.kind()
                ),
                format_args!("remove the steps after `{term}`, or move `{term}` to the end"),
            );
        }
    }
}

/// Every declared source has a contract for `context_unavailable` (its own `on_unavailable`, the
/// task's `on_context_unavailable`, or — checked at compile time — its policy's), and a task
/// without sources declares no `on_context_unavailable`.
fn sources(cx: &Ctxt, t: &Task) {
    let class = FailureClass::ContextUnavailable;
    let task_level = t.contracts.get(class);
    if let (Some(c), true) = (task_level, t.sources.is_empty()) {
        cx.error_spanned_by(
            &c.key,
            format_args!("task `{}` declares no context source, so `on_context_unavailable` can never run", t.name()),
            "declare the source it is for with `source(name, budget = 800)`, or remove `on_context_unavailable`",
        );
    }
    if task_level.is_some() || t.policy.is_some() {
        return;
    }
    for s in t.sources.iter().filter(|s| s.on_unavailable.is_none()) {
        let name = &s.name;
        cx.error_spanned_by(
            name,
            format_args!("source `{name}` has no contract for `context_unavailable`"),
            format_args!("say what happens when `{name}` fails, times out or is over budget: add `on_unavailable = retry(1).then(proceed)` to `source({name}, ...)`, or `{}` to the task; the steps are `retry(n)`, `fallback(\"other_source\")`, `proceed`, `default(..)`, `escalate` and `fail`", example(class).trim_end_matches(',')),
        );
    }
}

/// One error on the task's name listing every class without a contract (low confidence is
/// checked against the output type by the compiler, see `expand::task`). A policy's coverage is
/// checked at compile time, per class.
fn missing_contracts(cx: &Ctxt, name: &Ident, contracts: &Contracts, has_policy: bool) {
    if has_policy {
        return;
    }
    let missing: Vec<FailureClass> = FailureClass::ALWAYS
        .into_iter()
        .filter(|c| contracts.get(*c).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let list = missing
        .iter()
        .map(|c| format!("`{}`", c.attribute_key()))
        .collect::<Vec<_>>()
        .join(", ");
    let lines = missing
        .iter()
        .map(|c| format!("    {}", example(*c)))
        .collect::<Vec<_>>()
        .join("\n");
    let noun = if missing.len() == 1 {
        "contract"
    } else {
        "contracts"
    };
    cx.error_spanned_by(
        name,
        format_args!("task `{name}` has no {noun} for {list}"),
        format_args!("every way a call can fail needs a contract; add to `#[llm_task(...)]`, for example:\n{lines}\nor use a shared policy: `policy = Standard`"),
    );
}

/// The context comes from `prompt` or from the body, never both, never neither.
fn context_source(cx: &Ctxt, t: &Task) {
    let name = t.name();
    match (&t.prompt, t.body) {
        (Some(p), Some(_)) => cx.error_spanned_by(&p.key, "the task has both a `prompt` and a body", "the body builds the context in code: remove `prompt = ...`, or remove the body and end the signature with `;`"),
        (None, None) => cx.error_spanned_by(name, format_args!("task `{name}` has no prompt"), "add `prompt = \"... {argument} ...\"` to `#[llm_task(...)]`, or give the function a body that returns the context (a `String`, `Context` or `Vec<Message>`)"),
        _ => {}
    }
}

/// The names of the `{placeholders}` in a template, or an error message.
pub fn template_placeholders(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(pos) = rest.find(['{', '}']) {
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            rest = &tail[2..];
        } else if let Some(stripped) = tail.strip_prefix('{') {
            let Some(end) = stripped
                .find(['}', '{'])
                .filter(|e| stripped.as_bytes()[*e] == b'}')
            else {
                return Err("a `{` is never closed".into());
            };
            out.push(stripped[..end].trim().to_owned());
            rest = &stripped[end + 1..];
        } else {
            return Err("a `}` has no matching `{`".into());
        }
    }
    Ok(out)
}

fn placeholders(cx: &Ctxt, prompt: &LitStr, inputs: &[Input], task: &Ident) {
    let names: Vec<String> = inputs.iter().map(|i| i.ident.to_string()).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    match template_placeholders(&prompt.value()) {
        Err(why) => cx.error_spanned_by(
            prompt,
            format_args!("the prompt is not a valid template: {why}"),
            "write `{{` and `}}` for literal braces",
        ),
        Ok(found) => {
            for p in found {
                if name_refs.contains(&p.as_str()) {
                    continue;
                }
                let help = if p.is_empty() {
                    "name an argument inside the braces, e.g. `{review}`; write `{{` and `}}` for literal braces".to_owned()
                } else if name_refs.is_empty() {
                    format!(
                        "`{task}` has no arguments: add `{p}: &str` to its signature, or write `{{{{{p}}}}}` for literal braces"
                    )
                } else {
                    format!(
                        "{}the arguments are {}; write `{{{{` and `}}}}` for literal braces",
                        crate::util::did_you_mean(&p, &name_refs)
                            .map(|c| format!("did you mean `{{{c}}}`? "))
                            .unwrap_or_default(),
                        name_refs
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                cx.error_spanned_by(
                    prompt,
                    format_args!("`{{{p}}}` in the prompt is not an argument of `{task}`"),
                    help,
                );
            }
        }
    }
}

/// Every check on a tool: the scope it requires is declared (its syntax was checked with the
/// value).
pub fn tool(cx: &Ctxt, t: &crate::ast::tool::Tool) {
    if !t.scope_written {
        cx.error_spanned_by(
            t.ident,
            format_args!("the tool `{}` declares no scope", t.name),
            "every tool names the permission it needs: add `scope = \"resource:action\"`, e.g. `#[llm_tool(scope = \"orders:read\")]`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::template_placeholders;

    #[test]
    fn placeholders() {
        assert_eq!(
            template_placeholders("Review: {review} {{x}} { a }").unwrap(),
            ["review", "a"]
        );
        assert!(template_placeholders("{open").is_err());
        assert!(template_placeholders("close}").is_err());
        assert!(template_placeholders("{a{b}").is_err());
    }
}
