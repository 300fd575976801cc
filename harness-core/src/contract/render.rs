//! Prompt templates and the Markdown rendering of a contract.

use std::fmt::{self, Write as _};

use super::{FailureClass, TaskContract};

/// Renders a `{placeholder}` template. `{{` and `}}` stand for literal braces. A placeholder with no
/// matching input is left as written (the macro rejects those at compile time).
pub fn render_prompt(template: &str, inputs: &[(&str, String)]) -> String {
    let mut out =
        String::with_capacity(template.len() + inputs.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if let Some(stripped) = tail.strip_prefix('{') {
            match stripped.find('}') {
                Some(end) => {
                    let name = stripped[..end].trim();
                    match inputs.iter().find(|(n, _)| *n == name) {
                        Some((_, value)) => out.push_str(value),
                        None => out.push_str(&tail[..end + 2]),
                    }
                    rest = &stripped[end + 1..];
                }
                None => {
                    out.push_str(tail);
                    rest = "";
                }
            }
        } else {
            out.push('}');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Displays a contract as Markdown: inputs, output, limits and the failure table.
pub struct ContractDoc<'a>(pub(super) &'a TaskContract);

impl fmt::Display for ContractDoc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        writeln!(f, "## Contract: `{}` (version `{}`)", c.name, c.version)?;
        if !c.description.is_empty() {
            writeln!(f, "\n{}", c.description)?;
        }
        writeln!(f, "\n| | |\n|---|---|")?;
        writeln!(
            f,
            "| model | `{}` |",
            c.model.unwrap_or("(harness default)")
        )?;
        writeln!(f, "| per-attempt timeout | {:?} |", c.timeout)?;
        writeln!(f, "| deadline | {:?} |", c.effective_deadline())?;
        writeln!(f, "| max attempts | {} |", c.max_attempts())?;
        let mut inputs = String::new();
        for (i, input) in c.inputs.iter().enumerate() {
            if i > 0 {
                inputs.push_str(", ");
            }
            let _ = write!(inputs, "`{}: {}`", input.name, input.rust_type);
        }
        writeln!(
            f,
            "| inputs | {} |",
            if inputs.is_empty() {
                "none".into()
            } else {
                inputs
            }
        )?;
        writeln!(f, "| output | `{}` |", c.output.type_name)?;
        if let Some(t) = c.confidence_threshold() {
            writeln!(f, "| confidence threshold | {t} |")?;
        }
        if let Some(p) = c.policy {
            writeln!(f, "| policy | `{}` |", p.name)?;
        }
        writeln!(f, "\n| failure | contract |\n|---|---|")?;
        for class in FailureClass::ALL {
            if class == FailureClass::LowConfidence && !c.output.has_confidence {
                continue;
            }
            match c.chain(class) {
                Some(chain) => writeln!(f, "| {} | `{}` |", class, chain)?,
                None => writeln!(f, "| {} | `fail` |", class)?,
            }
        }
        let schema = c.output_schema();
        if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
            writeln!(f, "\n| field | type | description |\n|---|---|---|")?;
            for (name, prop) in props {
                let ty = prop
                    .get("type")
                    .map(|t| t.to_string().replace('"', ""))
                    .or_else(|| {
                        prop.get("$ref")
                            .and_then(|r| r.as_str())
                            .map(|r| r.rsplit('/').next().unwrap_or(r).to_string())
                    })
                    .unwrap_or_else(|| "value".into());
                let desc = prop
                    .get("description")
                    .and_then(|d| d.as_str())
                    .unwrap_or("");
                writeln!(f, "| `{name}` | {ty} | {} |", desc.replace('\n', " "))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::render_prompt;

    #[test]
    fn substitutes_and_escapes() {
        let out = render_prompt(
            "Review: {review} {{literal}} { review }",
            &[("review", "great".into())],
        );
        assert_eq!(out, "Review: great {literal} great");
    }

    #[test]
    fn unknown_placeholder_and_unbalanced_braces_survive() {
        assert_eq!(render_prompt("{nope} } {open", &[]), "{nope} } {open");
    }
}
