//! Datasets typed by the task: cases read from JSONL (or YAML, feature `yaml`) and checked
//! against the task's own input type and output schema, so a case that does not fit is a
//! [`LoadError`] naming the file, line and field; inline cases built in Rust; and cases taken
//! from an audit trail (real traffic, the recorded answer as the reference).

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::audit::AuditRecord;
use crate::digest::hash_hex;
use crate::output::SchemaValidator;

use crate::eval::EvalTask;
use crate::eval::assertion::Assertion;

mod parse;
use parse::{jsonl_cases, yaml_cases};

/// One case: an id, the task's typed input, what is expected of the answer, and tags.
#[derive(Clone, Debug)]
pub struct Case<I> {
    /// Unique within its dataset; comparisons pair cases by it.
    pub id: String,
    /// The task's input.
    pub input: I,
    /// The input as JSON, as written in the dataset (what reports show).
    pub inputs_json: Value,
    /// The expected output, or the part of it that is scored (`{"label": "Positive"}`).
    pub expected: Option<Value>,
    /// Checks of this case beyond the expected value.
    pub assertions: Vec<Assertion>,
    /// Tags for the by-tag breakdown.
    pub tags: Vec<String>,
    /// Where the case was read from, if from a file: `(file, line)`.
    pub source: Option<(PathBuf, usize)>,
}

impl<I: serde::Serialize> Case<I> {
    /// An inline case: the input is checked by the compiler.
    pub fn new(id: impl Into<String>, input: I) -> Self {
        let inputs_json = serde_json::to_value(&input).unwrap_or(Value::Null);
        Case {
            id: id.into(),
            input,
            inputs_json,
            expected: None,
            assertions: Vec::new(),
            tags: Vec::new(),
            source: None,
        }
    }
}

impl<I> Case<I> {
    /// With this expected output (or part of it); checked against the task's output schema when
    /// the case joins a [`Dataset`].
    pub fn expect(mut self, expected: Value) -> Self {
        self.expected = Some(expected);
        self
    }

    /// With this tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// With this assertion.
    pub fn assert(mut self, assertion: Assertion) -> Self {
        self.assertions.push(assertion);
        self
    }

    /// Where it came from, as `file:line`, or its id.
    pub fn place(&self) -> String {
        match &self.source {
            Some((f, l)) => format!("{}:{l}", f.display()),
            None => format!("case `{}`", self.id),
        }
    }
}

/// A case that could not be loaded: where, which field, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file (empty for inline cases and audit trails read from memory).
    pub file: PathBuf,
    /// The 1-based line (0 when not known).
    pub line: usize,
    /// The field, as a path (`inputs.review`, `expected.label`); `None` for the whole line.
    pub field: Option<String>,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.as_os_str().is_empty() {
            write!(f, "{}:", self.file.display())?;
        }
        if self.line > 0 {
            write!(f, "{}: ", self.line)?;
        } else if !self.file.as_os_str().is_empty() {
            f.write_str(" ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every case of a dataset that did not load (at most [`LoadErrors::MAX`] are kept).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl LoadErrors {
    /// How many errors are kept; a file with more reports the first ones and how many more.
    pub const MAX: usize = 50;

    fn one(file: &Path, line: usize, field: Option<String>, message: impl Into<String>) -> Self {
        LoadErrors(vec![LoadError {
            file: file.to_owned(),
            line,
            field,
            message: message.into(),
        }])
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} case(s) do not fit the task:")?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// The cases of one task, checked against its types.
#[derive(Clone, Debug)]
pub struct Dataset<I> {
    /// The dataset's name (the file's stem, or as given).
    pub name: String,
    /// SHA-256 of the source (the file's bytes, or the cases' JSON): results record it, so a
    /// comparison can tell an edited dataset.
    pub sha256: String,
    /// The cases.
    pub cases: Vec<Case<I>>,
}

/// The raw shape of a case line.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: String,
    inputs: Value,
    #[serde(default)]
    expected: Option<Value>,
    #[serde(default, rename = "assert")]
    assertions: Vec<Assertion>,
    #[serde(default)]
    tags: Vec<String>,
}

/// Checks cases against a task's input and output types.
struct Checker {
    inputs: SchemaValidator,
    expected: SchemaValidator,
}

impl Checker {
    fn new<T: EvalTask>() -> Self {
        let mut inputs = serde_json::to_value(
            schemars::SchemaGenerator::default().into_root_schema_for::<T::Input>(),
        )
        .unwrap_or(Value::Bool(true));
        crate::output::close_objects(&mut inputs);
        let mut expected = <T::Output as crate::output::LlmOutput>::output_schema();
        // The expected value may name only the fields that are scored.
        if let Value::Object(m) = &mut expected {
            m.remove("required");
        }
        Checker {
            inputs: SchemaValidator::new(inputs),
            expected: SchemaValidator::new(expected),
        }
    }

    /// The case's problems, as `(field, message)`.
    fn problems<I: DeserializeOwned>(&self, raw: &RawCase) -> Result<I, Vec<(String, String)>> {
        let mut problems: Vec<(String, String)> = Vec::new();
        for e in self.inputs.errors(&raw.inputs) {
            problems.push((join("inputs", &e.path), e.message));
        }
        if let Some(expected) = &raw.expected {
            for e in self.expected.errors(expected) {
                problems.push((join("expected", &e.path), e.message));
            }
        }
        if raw.id.trim().is_empty() {
            problems.push(("id".into(), "must not be empty".into()));
        }
        let input = serde_json::from_value::<I>(raw.inputs.clone());
        match input {
            Ok(i) if problems.is_empty() => Ok(i),
            Ok(_) => Err(problems),
            Err(e) => {
                if problems.is_empty() {
                    problems.push(("inputs".into(), e.to_string()));
                }
                Err(problems)
            }
        }
    }
}

fn join(root: &str, path: &str) -> String {
    if path.is_empty() {
        root.to_owned()
    } else {
        format!("{root}.{path}")
    }
}

/// Collects load errors, keeping at most [`LoadErrors::MAX`].
struct Errors {
    file: PathBuf,
    list: Vec<LoadError>,
    more: usize,
}

impl Errors {
    fn new(file: &Path) -> Self {
        Errors {
            file: file.to_owned(),
            list: Vec::new(),
            more: 0,
        }
    }

    fn push(&mut self, line: usize, field: Option<String>, message: impl Into<String>) {
        if self.list.len() < LoadErrors::MAX {
            self.list.push(LoadError {
                file: self.file.clone(),
                line,
                field,
                message: message.into(),
            });
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Result<(), LoadErrors> {
        if self.list.is_empty() {
            return Ok(());
        }
        if self.more > 0 {
            let more = self.more;
            self.list.push(LoadError {
                file: self.file,
                line: 0,
                field: None,
                message: format!("and {more} more error(s)"),
            });
        }
        Err(LoadErrors(self.list))
    }
}

impl<I: DeserializeOwned> Dataset<I> {
    /// Loads `path` for task `T`: `.yaml`/`.yml` as YAML (feature `yaml`), anything else as
    /// JSONL (one case per line; blank lines and lines starting with `//` are skipped).
    pub fn load<T: EvalTask<Input = I>>(path: impl AsRef<Path>) -> Result<Self, LoadErrors> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| LoadErrors::one(path, 0, None, format!("cannot read: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| LoadErrors::one(path, 0, None, format!("not UTF-8: {e}")))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let lines = if matches!(ext, "yaml" | "yml") {
            yaml_cases(path, &text)?
        } else {
            jsonl_cases(path, &text)?
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::check::<T>(name, hash_hex(text.as_bytes()), path, lines)
    }

    /// Parses JSONL text for task `T` (named `name`; errors name `file`).
    pub fn from_jsonl<T: EvalTask<Input = I>>(
        name: &str,
        file: impl AsRef<Path>,
        text: &str,
    ) -> Result<Self, LoadErrors> {
        let file = file.as_ref();
        let lines = jsonl_cases(file, text)?;
        Self::check::<T>(name.to_owned(), hash_hex(text.as_bytes()), file, lines)
    }

    fn check<T: EvalTask<Input = I>>(
        name: String,
        sha256: String,
        file: &Path,
        raw: Vec<(usize, RawCase)>,
    ) -> Result<Self, LoadErrors> {
        let checker = Checker::new::<T>();
        let mut errors = Errors::new(file);
        let mut seen = HashSet::new();
        let mut cases = Vec::with_capacity(raw.len());
        for (line, raw) in raw {
            if !seen.insert(raw.id.clone()) {
                errors.push(
                    line,
                    Some("id".into()),
                    format!("`{}` is used twice", raw.id),
                );
            }
            match checker.problems::<I>(&raw) {
                Ok(input) => cases.push(Case {
                    id: raw.id,
                    input,
                    inputs_json: raw.inputs,
                    expected: raw.expected,
                    assertions: raw.assertions,
                    tags: raw.tags,
                    source: (!file.as_os_str().is_empty()).then(|| (file.to_owned(), line)),
                }),
                Err(problems) => {
                    for (field, message) in problems {
                        errors.push(line, Some(field), message);
                    }
                }
            }
        }
        errors.finish()?;
        if cases.is_empty() {
            return Err(LoadErrors::one(file, 0, None, "the dataset has no case"));
        }
        Ok(Dataset {
            name,
            sha256,
            cases,
        })
    }
}

impl<I: serde::Serialize> Dataset<I> {
    /// A dataset of inline cases for task `T`: inputs are checked by the compiler, expected
    /// values against the task's output schema here.
    pub fn inline<T: EvalTask<Input = I>>(
        name: impl Into<String>,
        cases: Vec<Case<I>>,
    ) -> Result<Self, LoadErrors> {
        let checker = Checker::new::<T>();
        let mut errors = Errors::new(Path::new(""));
        let mut seen = HashSet::new();
        let mut digest = Vec::new();
        for case in &cases {
            if !seen.insert(case.id.clone()) {
                errors.push(0, Some("id".into()), format!("`{}` is used twice", case.id));
            }
            if let Some(expected) = &case.expected {
                for e in checker.expected.errors(expected) {
                    let field = format!("case `{}`: {}", case.id, join("expected", &e.path));
                    errors.push(0, Some(field), e.message);
                }
            }
            digest.extend(case.id.as_bytes());
            digest.extend(case.inputs_json.to_string().as_bytes());
            digest.extend(
                case.expected
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
        errors.finish()?;
        Ok(Dataset {
            name: name.into(),
            sha256: hash_hex(&digest),
            cases,
        })
    }
}

impl<I: DeserializeOwned> Dataset<I> {
    /// The regression suite from real traffic: every call of task `T` in `records` that ended in
    /// an answer and was recorded with its inputs becomes a case (id: the record id; inputs: the
    /// rendered inputs; expected: the recorded answer, only the `fields` named, or all of it when
    /// `fields` is empty). Records of other tasks are passed over; a record of this task whose
    /// inputs were not kept in full, or do not fit the input type, is an error naming it.
    pub fn from_audit<T: EvalTask<Input = I>>(
        name: impl Into<String>,
        records: &[AuditRecord],
        fields: &[&str],
    ) -> Result<Self, LoadErrors> {
        let task = T::contract().name;
        let mut raw = Vec::new();
        let mut errors = Errors::new(Path::new(""));
        for (i, record) in records.iter().enumerate() {
            if record.task != task || record.outcome.status != "answer" {
                continue;
            }
            let Some(value) = &record.outcome.value else {
                continue;
            };
            let mut inputs = Map::new();
            for input in &record.inputs {
                let Some(v) = &input.value else {
                    let field = format!("record {}: inputs.{}", record.id, input.name);
                    errors.push(i + 1, Some(field), "was not kept in full (message policy)");
                    continue;
                };
                inputs.insert(input.name.clone(), Value::String(v.clone()));
            }
            raw.push((i + 1, audit_case(record, inputs, value, fields)));
        }
        errors.finish()?;
        let mut digest = String::new();
        for r in records.iter().filter(|r| r.task == task) {
            digest.push_str(&r.hash);
        }
        let checked =
            Self::check::<T>(name.into(), hash_hex(digest.as_bytes()), Path::new(""), raw);
        checked.map_err(|e| {
            LoadErrors(
                e.0.into_iter()
                    .map(|mut e| {
                        e.message = format!("(record #{}) {}", e.line, e.message);
                        e
                    })
                    .collect(),
            )
        })
    }
}

fn audit_case(
    record: &AuditRecord,
    inputs: Map<String, Value>,
    value: &Value,
    fields: &[&str],
) -> RawCase {
    let expected = match value {
        Value::Object(m) if !fields.is_empty() => Value::Object(
            m.iter()
                .filter(|(k, _)| fields.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        v => v.clone(),
    };
    let mut tags = vec!["audit".to_owned()];
    if let Some(m) = &record.model_answered {
        tags.push(format!("model:{m}"));
    }
    RawCase {
        id: record.id.clone(),
        inputs: Value::Object(inputs),
        expected: Some(expected),
        assertions: Vec::new(),
        tags,
    }
}
