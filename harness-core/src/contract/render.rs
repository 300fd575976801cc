//! Prompt templates and the Markdown rendering of a contract.

use std::fmt;

use harness_spec::{Sheet, sheet};

use super::{Chain, FailureClass, TaskContract};

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

/// Displays a contract as Markdown: inputs, output, limits and the failure table. Rendered by
/// [`harness_spec::Sheet`], the same renderer as the "Contract" section `#[llm_task]` adds to a
/// task's rustdoc.
pub struct ContractDoc<'a>(pub(super) &'a TaskContract);

impl ContractDoc<'_> {
    /// The contract as a sheet.
    fn sheet(&self) -> Sheet {
        let c = self.0;
        let mut sheet = Sheet::new(format!(
            "## Contract: `{}` (version `{}`)",
            c.name, c.version
        ));
        if !c.description.is_empty() {
            sheet.paragraph(c.description);
        }
        sheet.facts(self.facts());
        let failures = c.applicable_classes().map(|class| match c.chain(class) {
            Some(chain) => (class, sheet::code(&chain.to_string())),
            None => (class, sheet::code("fail")),
        });
        sheet.failures(failures);
        if !c.sources.is_empty() {
            sheet.sources(c.sources.iter().map(|s| {
                let steps = Chain {
                    class: FailureClass::ContextUnavailable,
                    steps: c.source_steps(s),
                };
                let contract = if steps.steps.is_empty() {
                    "fail".to_owned()
                } else {
                    steps.to_string()
                };
                [
                    format!("`{}`", s.name),
                    s.budget.to_string(),
                    s.limit.to_string(),
                    format!("{:?}", s.timeout),
                    format!("`{}`", s.section),
                    sheet::code(&contract),
                ]
            }));
        }
        if let Some(plan) = c.plan {
            sheet.paragraph(plan.summary());
            sheet.table(&super::PLAN_COLUMNS, plan.rows());
        }
        let schema = c.output_schema();
        if let Some(fields) = fields(&schema) {
            sheet.table(&["field", "type", "description"], fields);
        }
        sheet.code_block(
            &format!(
                "The output as a prompt shows it when the server does not enforce the schema ({}):",
                super::NOTATION_VERSION
            ),
            "text",
            &super::notation(&schema),
        );
        sheet
    }

    fn facts(&self) -> Vec<(&'static str, String)> {
        let c = self.0;
        let inputs = c.inputs.iter().map(|i| (i.name, i.rust_type));
        let mut facts = vec![
            (
                "model",
                format!("`{}`", c.model.unwrap_or("(harness default)")),
            ),
            ("per-attempt timeout", format!("{:?}", c.timeout)),
            ("deadline", format!("{:?}", c.effective_deadline())),
            ("max attempts", c.max_attempts().to_string()),
            ("inputs", sheet::inputs_cell(inputs)),
            ("output", format!("`{}`", c.output.type_name)),
        ];
        if let Some(t) = c.confidence_threshold() {
            facts.push(("confidence threshold", t.to_string()));
        }
        if let Some(p) = c.policy {
            facts.push(("policy", format!("`{}`", p.name)));
        }
        if let Some(p) = c.plan {
            facts.push((
                "context plan",
                format!("`{}` (version {})", p.name, p.version),
            ));
        }
        facts
    }
}

/// One row per property of the output's schema: name, type, description.
fn fields(schema: &serde_json::Value) -> Option<Vec<[String; 3]>> {
    let props = schema.get("properties")?.as_object()?;
    let rows = props.iter().map(|(name, prop)| {
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
        [format!("`{name}`"), ty, desc.replace('\n', " ")]
    });
    Some(rows.collect())
}

impl fmt::Display for ContractDoc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.sheet().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::render_prompt;
    use crate::contract::{
        Action, Backoff, Chain, FailureClass, InputSpec, OutputSpec, TaskContract,
    };

    fn schema() -> serde_json::Value {
        serde_json::json!({"properties": {"label": {"type": "string", "description": "The\nlabel."}}})
    }

    #[test]
    fn the_doc_is_the_whole_sheet() {
        const C: TaskContract = TaskContract {
            description: "Classifies.",
            version: "0123456789abcdef",
            model: Some("m1"),
            prompt: Some("{review}"),
            inputs: &[InputSpec {
                name: "review",
                rust_type: "&str",
            }],
            output: OutputSpec {
                type_name: "Label",
                has_confidence: false,
                schema,
            },
            timeout: std::time::Duration::from_secs(20),
            deadline: Some(std::time::Duration::from_secs(60)),
            chains: &[Chain {
                class: FailureClass::Timeout,
                steps: &[
                    Action::Retry {
                        times: 2,
                        backoff: Backoff::DEFAULT,
                    },
                    Action::Fail,
                ],
            }],
            ..crate::__private::stub_contract("classify", "m")
        };
        assert_eq!(
            C.doc().to_string(),
            "## Contract: `classify` (version `0123456789abcdef`)\n\nClassifies.\n\n| | |\n|---|---|\n\
             | model | `m1` |\n| per-attempt timeout | 20s |\n| deadline | 60s |\n| max attempts | 3 |\n\
             | inputs | `review: &str` |\n| output | `Label` |\n\n| failure | contract |\n|---|---|\n\
             | timeout | `retry(2).then(fail)` |\n| rate_limited | `fail` |\n| provider_error | `fail` |\n\
             | invalid_output | `fail` |\n| refusal | `fail` |\n\n| field | type | description |\n\
             |---|---|---|\n| `label` | string | The label. |\n\n\
             The output as a prompt shows it when the server does not enforce the schema (notation-1):\n\
             ```text\n{\n  label?: string // The label.\n}\n```\n"
        );
    }

    #[test]
    fn sources_get_a_table_and_a_failure_row() {
        use crate::contract::SourceSpec;
        const C: TaskContract = TaskContract {
            sources: &[
                SourceSpec::new("kb", 800)
                    .with_section("docs")
                    .with_on_unavailable(&[
                        Action::FallbackSource {
                            source: "kb_mirror",
                        },
                        Action::Proceed,
                    ]),
                SourceSpec::new("profile", 100).with_limit(1),
            ],
            chains: &[Chain {
                class: FailureClass::ContextUnavailable,
                steps: &[Action::Fail],
            }],
            ..crate::__private::stub_contract("answer", "m")
        };
        let doc = C.doc().to_string();
        assert!(doc.contains("| context_unavailable | `fail` |"), "{doc}");
        assert!(
            doc.contains(
                "| source | budget (tokens) | limit (documents) | timeout | section | when unavailable |\n\
                 |---|---|---|---|---|---|\n\
                 | `kb` | 800 | 5 | 2s | `docs` | `fallback(\"kb_mirror\").then(proceed)` |\n\
                 | `profile` | 100 | 1 | 2s | `profile` | `fail` |\n"
            ),
            "{doc}"
        );
    }

    #[test]
    fn a_named_plan_gets_a_fact_and_its_table() {
        use crate::contract::{ContextPlan, Section, SectionKind};
        const PLAN: ContextPlan = ContextPlan::new(
            "answer",
            "3",
            &[Section::required("question", SectionKind::UserInput)],
            256,
        );
        const C: TaskContract = TaskContract {
            plan: Some(&PLAN),
            ..crate::__private::stub_contract("answer", "m")
        };
        let doc = C.doc().to_string();
        assert!(
            doc.contains("| context plan | `answer` (version 3) |\n"),
            "{doc}"
        );
        assert!(
            doc.contains(&format!("\n\n{}\n", PLAN.doc().trim_end())),
            "{doc}"
        );
    }

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
