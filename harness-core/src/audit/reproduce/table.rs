//! The comparison as rows (field, recorded, reproduced, same?) and the aligned text table.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::{RequestCheck, Run};

/// The widest a cell is printed; longer values are cut with `…` (the JSON output keeps them).
const MAX_CELL: usize = 60;

/// One compared field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Row {
    /// What is compared: `request #2`, `attempt #1`, `status`, `value.label`.
    pub field: String,
    /// Its recorded value, as text (`—` when absent).
    pub recorded: String,
    /// Its reproduced value, as text (`—` when absent).
    pub reproduced: String,
    /// Whether they are the same.
    pub same: bool,
}

impl Row {
    fn new(field: impl Into<String>, recorded: String, reproduced: String) -> Row {
        Row {
            field: field.into(),
            same: recorded == reproduced,
            recorded,
            reproduced,
        }
    }
}

const ABSENT: &str = "—";

fn short(hash: &str) -> String {
    match hash.get(..12) {
        Some(h) => h.to_owned(),
        None if hash.is_empty() => "(not recorded)".to_owned(),
        None => hash.to_owned(),
    }
}

/// The rows comparing a recorded run with its reproduction.
pub(super) fn rows(requests: &[RequestCheck], recorded: &Run, reproduced: &Run) -> Vec<Row> {
    let mut rows: Vec<Row> = requests
        .iter()
        .map(|c| Row {
            field: format!("request #{} ({})", c.n, c.kind),
            recorded: short(&c.recorded),
            reproduced: short(&c.rebuilt),
            same: c.matches(),
        })
        .collect();
    let path = |run: &Run| {
        run.attempts
            .iter()
            .map(|a| a.kind.as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    };
    rows.push(Row::new("attempts", path(recorded), path(reproduced)));
    for i in 0..recorded.attempts.len().max(reproduced.attempts.len()) {
        let (old, new) = (recorded.attempts.get(i), reproduced.attempts.get(i));
        let cell = |a: Option<&super::RunAttempt>| {
            a.map_or(ABSENT.to_owned(), |a| {
                format!("{} {} [{}]", a.model, a.verdict, short(&a.fingerprint))
            })
        };
        let mut row = Row::new(format!("attempt #{}", i + 1), cell(old), cell(new));
        // An attempt is the same when it sent the same request and got the same verdict.
        row.same = matches!((old, new), (Some(a), Some(b))
            if a.verdict == b.verdict && a.model == b.model
                && (a.fingerprint.is_empty() || a.fingerprint == b.fingerprint));
        rows.push(row);
    }
    let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| ABSENT.to_owned());
    rows.push(Row::new(
        "status",
        recorded.status.clone(),
        reproduced.status.clone(),
    ));
    rows.push(Row::new(
        "class",
        opt(&recorded.class),
        opt(&reproduced.class),
    ));
    value_rows(
        &mut rows,
        recorded.value.as_ref(),
        reproduced.value.as_ref(),
    );
    rows
}

/// One row per leaf of either value (`value.label`, `value.tags[1]`), in path order.
fn value_rows(rows: &mut Vec<Row>, old: Option<&Value>, new: Option<&Value>) {
    let mut leaves: Vec<(String, Option<&Value>, Option<&Value>)> = Vec::new();
    walk("value".to_owned(), old, new, &mut leaves);
    let text = |v: Option<&Value>| v.map_or(ABSENT.to_owned(), Value::to_string);
    rows.extend(
        leaves
            .into_iter()
            .map(|(path, a, b)| Row::new(path, text(a), text(b))),
    );
}

fn walk<'v>(
    path: String,
    old: Option<&'v Value>,
    new: Option<&'v Value>,
    out: &mut Vec<(String, Option<&'v Value>, Option<&'v Value>)>,
) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) if !(a.is_empty() && b.is_empty()) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                walk(format!("{path}.{k}"), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if !(a.is_empty() && b.is_empty()) => {
            for i in 0..a.len().max(b.len()) {
                walk(format!("{path}[{i}]"), a.get(i), b.get(i), out);
            }
        }
        (Some(Value::Object(a)), None) if !a.is_empty() => {
            for (k, v) in a {
                walk(format!("{path}.{k}"), Some(v), None, out);
            }
        }
        (None, Some(Value::Object(b))) if !b.is_empty() => {
            for (k, v) in b {
                walk(format!("{path}.{k}"), None, Some(v), out);
            }
        }
        (None, None) => {}
        _ => out.push((path, old, new)),
    }
}

/// Writes `rows` as a table: field, recorded, reproduced, same?
pub(super) fn write_rows(f: &mut fmt::Formatter<'_>, rows: &[Row]) -> fmt::Result {
    let header = ["FIELD", "RECORDED", "REPRODUCED", "SAME"].map(str::to_owned);
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.field.clone(),
                cut(&r.recorded),
                cut(&r.reproduced),
                if r.same { "yes" } else { "NO" }.to_owned(),
            ]
        })
        .collect();
    write_table(f, &header, &cells)
}

fn cut(text: &str) -> String {
    let one_line = text.replace('\n', "\\n");
    if one_line.chars().count() <= MAX_CELL {
        return one_line;
    }
    let head: String = one_line.chars().take(MAX_CELL - 1).collect();
    format!("{head}…")
}

/// Writes a table with columns aligned to their widest cell (in characters), two spaces apart,
/// no trailing spaces.
pub fn write_table<const N: usize>(
    f: &mut fmt::Formatter<'_>,
    header: &[String; N],
    rows: &[[String; N]],
) -> fmt::Result {
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for (i, row) in std::iter::once(header).chain(rows).enumerate() {
        if i > 0 {
            f.write_str("\n")?;
        }
        let mut line = String::new();
        for (j, (cell, w)) in row.iter().zip(widths).enumerate() {
            if j > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        f.write_str(line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_leaf_is_a_row_and_changes_are_marked() {
        let mut rows = Vec::new();
        let old = json!({"label": "positive", "tags": ["a", "b"], "n": {"x": 1}});
        let new = json!({"label": "negative", "tags": ["a"], "n": {"x": 1}});
        value_rows(&mut rows, Some(&old), Some(&new));
        let seen: Vec<(&str, bool)> = rows.iter().map(|r| (r.field.as_str(), r.same)).collect();
        assert_eq!(
            seen,
            [
                ("value.label", false),
                ("value.n.x", true),
                ("value.tags[0]", true),
                ("value.tags[1]", false),
            ]
        );
        assert_eq!(rows[3].reproduced, ABSENT);
        assert_eq!(cut(&"x".repeat(100)).chars().count(), MAX_CELL);
    }
}
