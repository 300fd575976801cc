//! Reading dataset files: JSONL lines and YAML lists into raw cases, each with its line.

use std::path::Path;

#[cfg(feature = "yaml")]
use serde_json::Value;

use super::{Errors, LoadErrors, RawCase};

pub(super) fn jsonl_cases(file: &Path, text: &str) -> Result<Vec<(usize, RawCase)>, LoadErrors> {
    let mut errors = Errors::new(file);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        match serde_json::from_str::<RawCase>(t) {
            Ok(c) => out.push((i + 1, c)),
            Err(e) => {
                let field = serde_field(&e.to_string());
                errors.push(i + 1, field, e.to_string());
            }
        }
    }
    errors.finish()?;
    Ok(out)
}

/// The field serde's message names (`unknown field `foo``, `missing field `id``), if any.
fn serde_field(message: &str) -> Option<String> {
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.split(marker).nth(1) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    None
}

#[cfg(feature = "yaml")]
pub(super) fn yaml_cases(file: &Path, text: &str) -> Result<Vec<(usize, RawCase)>, LoadErrors> {
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        LoadErrors::one(file, line, None, e.to_string())
    })?;
    let Value::Array(items) = value else {
        return Err(LoadErrors::one(
            file,
            1,
            None,
            "a YAML dataset is a list of cases",
        ));
    };
    // The line of the n-th top-level item: the n-th line starting with `- `.
    let starts: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("- ") || *l == "-")
        .map(|(i, _)| i + 1)
        .collect();
    let mut errors = Errors::new(file);
    let mut out = Vec::new();
    for (n, item) in items.into_iter().enumerate() {
        let line = starts.get(n).copied().unwrap_or(0);
        match serde_json::from_value::<RawCase>(item) {
            Ok(c) => out.push((line, c)),
            Err(e) => errors.push(line, serde_field(&e.to_string()), e.to_string()),
        }
    }
    errors.finish()?;
    Ok(out)
}

#[cfg(not(feature = "yaml"))]
pub(super) fn yaml_cases(file: &Path, _text: &str) -> Result<Vec<(usize, RawCase)>, LoadErrors> {
    Err(LoadErrors::one(
        file,
        0,
        None,
        "YAML datasets need harness-core's `yaml` feature",
    ))
}
