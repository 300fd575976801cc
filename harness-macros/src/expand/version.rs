//! `CONTRACT.version`: the first 16 hex digits of a SHA-256 over a canonical rendering of the task.
//! Identical contracts give identical versions, across builds and releases of the macro: the
//! rendering below is frozen (the tests pin hashes).

use quote::quote;
use sha2::{Digest, Sha256};

use crate::ast::Task;
use crate::util::type_string;

/// A hash of everything that changes what the task asks and how it recovers.
pub fn version(t: &Task) -> String {
    let digest = Sha256::digest(canonical(t).as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// One `key=value` line per part of the task, in a fixed order; absent values are empty.
fn canonical(t: &Task) -> String {
    let mut c = String::new();
    let mut line = |k: &str, v: &str| {
        c.push_str(k);
        c.push('=');
        c.push_str(v);
        c.push('\n');
    };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let shown = |v: Option<String>| v.unwrap_or_default();
    line("name", &t.name().to_string());
    line("model", &text(&t.model));
    line("provider", &text(&t.provider));
    line("system", &text(&t.system));
    line(
        "prompt",
        &shown(t.prompt.as_ref().map(|p| p.template.value())),
    );
    line("body", &shown(t.body.map(|b| quote!(#b).to_string())));
    for i in &t.inputs {
        line("input", &format!("{}: {}", i.ident, type_string(&i.ty)));
    }
    line("output", &type_string(&t.output));
    // How the prompt shows the output type (harness-core's `contract::notation`).
    line("output_notation", harness_spec::defaults::OUTPUT_NOTATION);
    line("timeout_ms", &t.limits.timeout_ms.to_string());
    line(
        "deadline_ms",
        &shown(t.limits.deadline_ms.map(|v| v.to_string())),
    );
    let params = &t.params;
    line(
        "temperature",
        &shown(params.temperature.map(|v| format!("{v:?}"))),
    );
    line(
        "max_tokens",
        &shown(params.max_tokens.map(|v| v.to_string())),
    );
    line("seed", &shown(params.seed.map(|v| v.to_string())));
    line(
        "policy",
        &shown(t.policy.as_ref().map(|p| quote!(#p).to_string())),
    );
    if !t.repairs_deny.is_empty() {
        // Only when given, so the versions of tasks without it stay what they were.
        let names: Vec<&str> = t.repairs_deny.iter().map(|k| k.name()).collect();
        line("repairs_deny", &names.join(","));
    }
    for c in t.contracts.iter() {
        let below = c
            .below
            .map(|b| format!("(below = {b:?})"))
            .unwrap_or_default();
        line(
            c.class.attribute_key(),
            &format!("{below}{}", c.render_chain()),
        );
    }
    // Only tasks with sources get these lines, so the versions of the others stay what they were.
    for s in &t.sources {
        line("source", &s.render());
    }
    // Only when named, for the same reason. The path, not the plan's contents (a macro cannot
    // read them): change the plan's own `version` when its sections change.
    if let Some(p) = &t.plan {
        line("plan", &quote!(#p).to_string());
    }
    c
}
