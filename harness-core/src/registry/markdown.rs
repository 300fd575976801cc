//! The Markdown page of an export: one page per program, one section per task.

use std::fmt::Write;

use super::export::{Export, FailureDoc, TaskDoc};

/// `|` and line breaks would break a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn opt(v: Option<impl ToString>, none: &str) -> String {
    v.map_or_else(|| none.to_owned(), |v| v.to_string())
}

fn ms(ms: u64) -> String {
    format!("{:?}", std::time::Duration::from_millis(ms))
}

fn fence(out: &mut String, lang: &str, body: &str) {
    // A fence longer than any run of backticks in the body.
    let mut ticks = 3;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        ticks = ticks.max(run + 1);
    }
    let f = "`".repeat(ticks);
    let _ = writeln!(out, "{f}{lang}\n{body}\n{f}\n");
}

fn failures_table(out: &mut String, failures: &[FailureDoc]) {
    out.push_str("| failure class | chain | declared by |\n|---|---|---|\n");
    for f in failures {
        let class = match f.below {
            Some(b) => format!("{} (below {b})", f.class),
            None => f.class.to_string(),
        };
        let _ = writeln!(
            out,
            "| {class} | `{}` | {} |",
            cell(&f.chain),
            cell(&f.declared_by)
        );
    }
    out.push('\n');
}

fn prompt(out: &mut String, t: &TaskDoc) {
    let _ = writeln!(out, "### Prompt (version `{}`)\n", t.prompt.version);
    match &t.prompt.system {
        Some(s) => {
            out.push_str("System message:\n\n");
            fence(out, "text", s);
        }
        None => out.push_str("No system message in the attribute.\n\n"),
    }
    match &t.prompt.template {
        Some(p) => {
            out.push_str("Template (`{input}` placeholders):\n\n");
            fence(out, "text", p);
        }
        None => out.push_str(
            "No template: the function body assembles the context in code (its code is part of the version hash).\n\n",
        ),
    }
}

fn task(out: &mut String, t: &TaskDoc) {
    let _ = writeln!(out, "## `{}`\n", t.name);
    if !t.description.is_empty() {
        let _ = writeln!(out, "{}\n", t.description);
    }
    let _ = writeln!(
        out,
        "| | |\n|---|---|\n| module | `{}` |\n| version | `{}` |\n| model | {} |\n| provider | {} |\n| policy | {} |\n",
        t.module,
        t.version,
        opt(
            t.model.as_ref().map(|m| format!("`{m}`")),
            "the harness's default"
        ),
        opt(
            t.provider.as_ref().map(|p| format!("`{p}`")),
            "routed by model"
        ),
        opt(t.policy.as_ref().map(|p| format!("`{p}`")), "none"),
    );
    out.push_str("### Inputs\n\n");
    if t.inputs.is_empty() {
        out.push_str("None.\n\n");
    } else {
        out.push_str("| name | type |\n|---|---|\n");
        for i in &t.inputs {
            let _ = writeln!(out, "| `{}` | `{}` |", i.name, cell(&i.rust_type));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "### Output: `{}`{}\n",
        t.output.type_name,
        if t.output.has_confidence {
            " (with a confidence field)"
        } else {
            ""
        }
    );
    let schema = serde_json::to_string_pretty(&t.output.schema).unwrap_or_default();
    fence(out, "json", &schema);
    prompt(out, t);
    out.push_str("### Failure contract\n\n");
    failures_table(out, &t.failures);
    limits(out, t);
    match &t.plan {
        Some(plan) => {
            out.push_str("### Context plan\n\n");
            let body = serde_json::to_string_pretty(plan).unwrap_or_default();
            fence(out, "json", &body);
        }
        None => {
            let _ = writeln!(
                out,
                "### Context plan and sources\n\nNot in the contract: {}.\n",
                t.context_plan.note
            );
        }
    }
    let _ = writeln!(
        out,
        "### Tools and scopes\n\nNot present yet: {}.\n",
        t.tools.note
    );
}

fn limits(out: &mut String, t: &TaskDoc) {
    let l = &t.limits;
    let deadline = match l.deadline_ms {
        Some(d) => format!("{} (declared)", ms(d)),
        None => format!("{} (derived)", ms(l.effective_deadline_ms)),
    };
    let _ = writeln!(
        out,
        "### Limits\n\n| | |\n|---|---|\n| timeout per attempt | {} |\n| deadline per call | {deadline} |\n| max attempts per call | {} |\n| temperature | {} |\n| max tokens | {} |\n| seed | {} |\n",
        ms(l.timeout_ms),
        l.max_attempts,
        opt(t.params.temperature, "provider default"),
        opt(t.params.max_tokens, "provider default"),
        opt(t.params.seed, "none"),
    );
}

/// The page.
pub(super) fn page(e: &Export) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Contracts of `{}`\n\n{} task{} and {} polic{}, exported by harness {} (format `{}` version {}).\n",
        e.program,
        e.tasks.len(),
        if e.tasks.len() == 1 { "" } else { "s" },
        e.policies.len(),
        if e.policies.len() == 1 { "y" } else { "ies" },
        e.harness_version,
        e.format,
        e.format_version
    );
    for t in &e.tasks {
        let _ = writeln!(
            out,
            "- [`{}`](#{}): {}",
            t.name,
            t.name.to_lowercase(),
            t.description
        );
    }
    out.push('\n');
    for t in &e.tasks {
        task(&mut out, t);
    }
    if !e.policies.is_empty() {
        out.push_str("## Policies\n\n");
        for p in &e.policies {
            let _ = writeln!(
                out,
                "### `{}` (`{}`)\n\nUsed by: {}.\n",
                p.name,
                p.module,
                if p.used_by.is_empty() {
                    "no task".to_owned()
                } else {
                    p.used_by
                        .iter()
                        .map(|u| format!("`{u}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            failures_table(&mut out, &p.failures);
        }
    }
    out
}
