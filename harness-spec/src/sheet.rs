//! [`Sheet`]: the one Markdown renderer of a contract. The macro fills it from the attribute (the
//! rustdoc "Contract" section of a task), harness-core from a `TaskContract` (`contract.doc()`).

use core::fmt;

/// A contract as Markdown: a heading, then blocks separated by blank lines (paragraphs, the
/// key/value table, the failure table, other tables, code blocks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sheet {
    lines: Vec<String>,
}

impl Sheet {
    /// A sheet that starts with `heading` (a Markdown heading line such as `# Contract`).
    pub fn new(heading: impl Into<String>) -> Sheet {
        Sheet {
            lines: vec![heading.into()],
        }
    }

    /// A paragraph, on one line.
    pub fn paragraph(&mut self, text: impl Into<String>) -> &mut Sheet {
        self.block([text.into()])
    }

    /// The key/value table (`| model | ... |`), with an empty header row.
    pub fn facts<K: fmt::Display, V: fmt::Display>(
        &mut self,
        rows: impl IntoIterator<Item = (K, V)>,
    ) -> &mut Sheet {
        let rows = rows.into_iter().map(|(k, v)| format!("| {k} | {v} |"));
        self.block(
            ["| | |".to_owned(), "|---|---|".to_owned()]
                .into_iter()
                .chain(rows),
        )
    }

    /// The failure table: one row per class, `label` (the class, maybe with its threshold) and
    /// `contract` (already formatted, e.g. with [`code`]).
    pub fn failures<K: fmt::Display, V: fmt::Display>(
        &mut self,
        rows: impl IntoIterator<Item = (K, V)>,
    ) -> &mut Sheet {
        self.table(
            &["failure", "contract"],
            rows.into_iter()
                .map(|(k, v)| [k.to_string(), v.to_string()]),
        )
    }

    /// The context sources table: one row per declared source, cells in the order of
    /// [`SOURCE_COLUMNS`] (the contract cell already formatted, e.g. with [`code`]).
    pub fn sources(&mut self, rows: impl IntoIterator<Item = [String; 6]>) -> &mut Sheet {
        self.table(&SOURCE_COLUMNS, rows)
    }

    /// A table with a header row.
    pub fn table<const N: usize>(
        &mut self,
        header: &[&str; N],
        rows: impl IntoIterator<Item = [String; N]>,
    ) -> &mut Sheet {
        let head = [row(header), "|---".repeat(N) + "|"];
        self.block(head.into_iter().chain(rows.into_iter().map(|r| row(&r))))
    }

    /// A fenced code block of language `lang` after a line `title`, one sheet line per line of
    /// `text` (as [`str::lines`] splits it).
    pub fn code_block(&mut self, title: &str, lang: &str, text: &str) -> &mut Sheet {
        let open = [title.to_owned(), format!("```{lang}")];
        let body = text.lines().map(str::to_owned);
        self.block(open.into_iter().chain(body).chain(["```".to_owned()]))
    }

    /// The sheet's lines, without line endings (the macro emits one `#[doc]` per line).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }

    fn block(&mut self, lines: impl IntoIterator<Item = String>) -> &mut Sheet {
        self.lines.push(String::new());
        self.lines.extend(lines);
        self
    }
}

impl fmt::Display for Sheet {
    /// Every line followed by `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// The columns of [`Sheet::sources`].
pub const SOURCE_COLUMNS: [&str; 6] = [
    "source",
    "budget (tokens)",
    "limit (documents)",
    "timeout",
    "section",
    "when unavailable",
];

fn row<S: AsRef<str>>(cells: &[S]) -> String {
    let mut s = String::from("|");
    for c in cells {
        s.push(' ');
        s.push_str(c.as_ref());
        s.push_str(" |");
    }
    s
}

/// `text` as inline code in a table cell: in backticks, with `|` escaped so the row stays whole.
pub fn code(text: &str) -> String {
    format!("`{}`", text.replace('|', "\\|"))
}

/// The `inputs` cell: `` `name: Type` `` for each input, comma-separated, or `none`.
pub fn inputs_cell<N: fmt::Display, T: fmt::Display>(
    inputs: impl IntoIterator<Item = (N, T)>,
) -> String {
    let cells: Vec<String> = inputs
        .into_iter()
        .map(|(n, t)| format!("`{n}: {t}`"))
        .collect();
    if cells.is_empty() {
        "none".to_owned()
    } else {
        cells.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_separated_by_one_blank_line() {
        let mut s = Sheet::new("# Contract");
        s.facts([("model", "`m`")])
            .failures([("timeout", code("retry(2)")), ("refusal", code("a|b"))])
            .table(
                &["field", "type", "description"],
                [["`x`".into(), "string".into(), String::new()]],
            )
            .code_block("Prompt:", "text", "Review: {r}\n\nEnd");
        assert_eq!(
            s.to_string(),
            "# Contract\n\n| | |\n|---|---|\n| model | `m` |\n\n| failure | contract |\n|---|---|\n\
             | timeout | `retry(2)` |\n| refusal | `a\\|b` |\n\n| field | type | description |\n\
             |---|---|---|\n| `x` | string |  |\n\nPrompt:\n```text\nReview: {r}\n\nEnd\n```\n"
        );
        assert_eq!(s.lines().count(), s.to_string().lines().count());
    }

    #[test]
    fn the_inputs_cell_lists_names_and_types() {
        assert_eq!(inputs_cell::<&str, &str>([]), "none");
        assert_eq!(
            inputs_cell([("a", "&str"), ("b", "u8")]),
            "`a: &str`, `b: u8`"
        );
    }
}
