//! The compact notation of an output type: what a prompt shows the model when the server does not
//! enforce the schema. TypeScript-like, rendered from the JSON schema the derive generates:
//! field names, types, enum values, and the constraints and descriptions as `//` comments.
//!
//! ```
//! use harness_core::contract::notation;
//!
//! let schema = serde_json::json!({
//!     "type": "object",
//!     "properties": {
//!         "label": {"type": "string", "enum": ["Positive", "Negative"]},
//!         "confidence": {"type": "number", "minimum": 0, "maximum": 1,
//!                        "description": "How sure the model is."},
//!         "note": {"type": ["string", "null"], "maxLength": 280}
//!     },
//!     "required": ["label", "confidence"]
//! });
//! assert_eq!(
//!     notation(&schema),
//!     "{\n  label: \"Positive\" | \"Negative\"\n  confidence: number // 0..1; How sure the model is.\n  note?: string | null // at most 280 chars\n}"
//! );
//! ```
//!
//! The rendering is deterministic (required fields in the order `required` lists them, which is
//! schemars' declaration order, then the optional ones by name) and versioned: [`NOTATION_VERSION`] is part of every task's contract version, so a change to
//! what the prompt shows changes the version.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The version of the rendering below. `#[llm_task]` hashes it into the contract version
/// (`output_notation=notation-1`); change it (in harness-spec) whenever the output of
/// [`notation`] or [`prompt_instruction`] changes.
pub const NOTATION_VERSION: &str = harness_spec::defaults::OUTPUT_NOTATION;

/// How deep a schema may nest before the rest is shown as `any` (schemas from records are
/// outside data; this bounds the work and the stack).
const MAX_DEPTH: usize = 32;

/// The output type in the compact notation. Never panics: parts it cannot read show as `any`.
pub fn notation(schema: &Value) -> String {
    let mut r = Renderer {
        root: schema,
        stack: Vec::new(),
        named: BTreeSet::new(),
    };
    let mut out = String::new();
    if let Some(d) = description(schema) {
        let _ = writeln!(out, "// {d}");
    }
    out.push_str(&r.ty(schema, 0, 0));
    // Recursive types: their definitions, each once, after the root.
    let mut done = BTreeSet::new();
    while let Some(name) = r.named.iter().find(|n| !done.contains(*n)).cloned() {
        done.insert(name.clone());
        if let Some(def) = r.def(&name) {
            r.stack.push(name.clone());
            let body = r.ty(def, 0, 1);
            r.stack.pop();
            let _ = write!(out, "\n{name} = {body}");
        }
    }
    out
}

/// The system-message instruction of a prompted request: reply with JSON of this type.
pub fn prompt_instruction(schema: &Value) -> String {
    let what = if schema.get("type").is_some_and(|t| t == "object") {
        "one JSON object"
    } else {
        "JSON"
    };
    format!(
        "Answer with {what} and nothing else, of this type:\n{}",
        notation(schema)
    )
}

struct Renderer<'a> {
    root: &'a Value,
    /// The `$ref` names being rendered (a name met again is recursive).
    stack: Vec<String>,
    /// Recursive definitions, shown by name and defined after the root.
    named: BTreeSet<String>,
}

impl<'a> Renderer<'a> {
    /// The definition a local `$ref` names (`#/$defs/Name` or `#/definitions/Name`).
    fn def(&self, name: &str) -> Option<&'a Value> {
        ["$defs", "definitions"]
            .iter()
            .find_map(|k| self.root.get(*k)?.get(name))
    }

    /// The type expression of `s`, possibly on several lines, indented for `indent` levels.
    fn ty(&mut self, s: &'a Value, indent: usize, depth: usize) -> String {
        if depth > MAX_DEPTH {
            return "any".into();
        }
        let Some(obj) = s.as_object() else {
            return match s {
                Value::Bool(false) => "never".into(),
                _ => "any".into(),
            };
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r).to_owned();
            if self.stack.contains(&name) {
                self.named.insert(name.clone());
                return name;
            }
            let Some(def) = self.def(&name) else {
                return name;
            };
            self.stack.push(name);
            let t = self.ty(def, indent, depth + 1);
            self.stack.pop();
            return t;
        }
        if let Some(c) = obj.get("const") {
            return literal(c);
        }
        if let Some(values) = obj.get("enum").and_then(Value::as_array) {
            return values.iter().map(literal).collect::<Vec<_>>().join(" | ");
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(parts) = obj.get(key).and_then(Value::as_array) {
                return self.union(parts, indent, depth);
            }
        }
        if let Some(parts) = obj.get("allOf").and_then(Value::as_array) {
            return self.all_of(obj, parts, indent, depth);
        }
        match obj.get("type") {
            Some(Value::String(t)) => self.typed(obj, t, indent, depth),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .map(|t| self.typed(obj, t, indent, depth))
                .collect::<Vec<_>>()
                .join(" | "),
            _ if obj.contains_key("properties") => self.typed(obj, "object", indent, depth),
            _ => "any".into(),
        }
    }

    fn typed(
        &mut self,
        obj: &'a Map<String, Value>,
        t: &str,
        indent: usize,
        depth: usize,
    ) -> String {
        match t {
            "object" => self.object(obj, indent, depth),
            "array" => {
                let item = match obj.get("items") {
                    Some(items) => self.ty(items, indent, depth + 1),
                    None => "any".into(),
                };
                if item.contains(' ') && !item.ends_with('}') {
                    format!("({item})[]")
                } else {
                    format!("{item}[]")
                }
            }
            "integer" => "integer".into(),
            "number" => "number".into(),
            "string" => "string".into(),
            "boolean" => "boolean".into(),
            "null" => "null".into(),
            _ => "any".into(),
        }
    }

    fn object(&mut self, obj: &'a Map<String, Value>, indent: usize, depth: usize) -> String {
        let Some(props) = obj.get("properties").and_then(Value::as_object) else {
            return match obj.get("additionalProperties") {
                Some(v) if v.is_object() => {
                    format!("{{ [key: string]: {} }}", self.ty(v, indent, depth + 1))
                }
                _ => "object".into(),
            };
        };
        let required = required(obj);
        let pad = "  ".repeat(indent + 1);
        let mut out = String::from("{\n");
        // Required fields in the order `required` lists them (schemars: as declared; a JSON
        // object's keys come sorted), then the optional ones.
        let listed = required.iter().filter_map(|n| props.get_key_value(*n));
        let optional = props
            .iter()
            .filter(|(n, _)| !required.contains(&n.as_str()));
        for (name, prop) in listed {
            self.field(&mut out, &pad, name, prop, true, indent, depth);
        }
        for (name, prop) in optional {
            self.field(&mut out, &pad, name, prop, false, indent, depth);
        }
        out.push_str(&"  ".repeat(indent));
        out.push('}');
        out
    }

    /// One `name: type // notes` line (the comment goes above a type of several lines).
    #[allow(clippy::too_many_arguments)] // One call site; a struct for it would only rename them.
    fn field(
        &mut self,
        out: &mut String,
        pad: &str,
        name: &str,
        prop: &'a Value,
        required: bool,
        indent: usize,
        depth: usize,
    ) {
        let ty = self.ty(prop, indent + 1, depth + 1);
        let mut notes = constraints(prop);
        // An optional field's constraints sit in its non-null branch.
        for key in ["anyOf", "oneOf"] {
            if let Some(parts) = prop.get(key).and_then(Value::as_array) {
                notes.extend(parts.iter().flat_map(constraints));
            }
        }
        let desc = description(prop).or_else(|| self.ref_description(prop));
        notes.extend(desc);
        let comment = notes.join("; ");
        let key = if is_identifier(name) {
            name.to_owned()
        } else {
            literal(&Value::String(name.to_owned()))
        };
        let opt = if required { "" } else { "?" };
        // Variants one per line start on the next line.
        let sep = if ty.starts_with('\n') { ":" } else { ": " };
        if comment.is_empty() {
            let _ = writeln!(out, "{pad}{key}{opt}{sep}{ty}");
        } else if ty.contains('\n') {
            let _ = writeln!(out, "{pad}// {comment}\n{pad}{key}{opt}{sep}{ty}");
        } else {
            let _ = writeln!(out, "{pad}{key}{opt}{sep}{ty} // {comment}");
        }
    }

    /// The description of the definition a `$ref` names, when the property has none of its own.
    fn ref_description(&self, prop: &Value) -> Option<String> {
        let r = prop.get("$ref")?.as_str()?;
        description(self.def(r.rsplit('/').next()?)?)
    }

    fn union(&mut self, parts: &'a [Value], indent: usize, depth: usize) -> String {
        let described = parts.iter().any(|p| p.get("description").is_some());
        let all_literals = parts
            .iter()
            .all(|p| p.get("const").is_some() || p.get("enum").is_some());
        if described && all_literals {
            // One variant per line, each with its description.
            let pad = "  ".repeat(indent + 1);
            let mut out = String::new();
            for p in parts {
                let t = self.ty(p, indent + 1, depth + 1);
                match description(p) {
                    Some(d) => {
                        let _ = write!(out, "\n{pad}| {t} // {d}");
                    }
                    None => {
                        let _ = write!(out, "\n{pad}| {t}");
                    }
                }
            }
            return out;
        }
        let mut seen = Vec::new();
        for p in parts {
            let t = self.ty(p, indent, depth + 1);
            if !seen.contains(&t) {
                seen.push(t);
            }
        }
        seen.join(" | ")
    }

    /// `allOf` (a flattened struct): the parts' properties as one object.
    fn all_of(
        &mut self,
        obj: &'a Map<String, Value>,
        parts: &'a [Value],
        indent: usize,
        depth: usize,
    ) -> String {
        let mut props = Map::new();
        let mut req = Vec::new();
        let mut add = |part: &Map<String, Value>| {
            if let Some(p) = part.get("properties").and_then(Value::as_object) {
                props.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            if let Some(r) = part.get("required").and_then(Value::as_array) {
                req.extend(r.iter().cloned());
            }
        };
        add(obj);
        for part in parts {
            let part = match part.get("$ref").and_then(Value::as_str) {
                Some(r) => self.def(r.rsplit('/').next().unwrap_or(r)),
                None => Some(part),
            };
            if let Some(m) = part.and_then(Value::as_object) {
                add(m);
            }
        }
        if props.is_empty() {
            return parts
                .iter()
                .map(|p| self.ty(p, indent, depth + 1))
                .collect::<Vec<_>>()
                .join(" & ");
        }
        let mut merged = Map::new();
        merged.insert("type".into(), Value::String("object".into()));
        merged.insert("properties".into(), Value::Object(props));
        merged.insert("required".into(), Value::Array(req));
        // The merged object is an owned value; its `$ref`s still resolve in the root.
        let merged = Value::Object(merged);
        let mut r = Renderer {
            root: self.root,
            stack: std::mem::take(&mut self.stack),
            named: std::mem::take(&mut self.named),
        };
        let out = r.ty(&merged, indent, depth + 1);
        self.stack = r.stack;
        self.named = r.named;
        out
    }
}

/// The `required` names, in their order, each once.
fn required(obj: &Map<String, Value>) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for n in obj
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// A description on one line.
fn description(s: &Value) -> Option<String> {
    let d = s.get("description")?.as_str()?.trim();
    (!d.is_empty()).then(|| d.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The constraints a schema states beyond its type: ranges, lengths, item counts, pattern, format.
fn constraints(s: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    let num = |k: &str| s.get(k).filter(|v| v.is_number()).map(Value::to_string);
    match (num("minimum"), num("maximum")) {
        (Some(lo), Some(hi)) => notes.push(format!("{lo}..{hi}")),
        (Some(lo), None) => notes.push(format!(">= {lo}")),
        (None, Some(hi)) => notes.push(format!("<= {hi}")),
        (None, None) => {}
    }
    if let Some(v) = num("exclusiveMinimum") {
        notes.push(format!("> {v}"));
    }
    if let Some(v) = num("exclusiveMaximum") {
        notes.push(format!("< {v}"));
    }
    if let Some(v) = num("multipleOf") {
        notes.push(format!("multiple of {v}"));
    }
    if let Some(n) = counted(num("minLength"), num("maxLength"), "chars") {
        notes.push(n);
    }
    if let Some(n) = counted(num("minItems"), num("maxItems"), "items") {
        notes.push(n);
    }
    if s.get("uniqueItems") == Some(&Value::Bool(true)) {
        notes.push("unique".into());
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str) {
        notes.push(format!("matches /{p}/"));
    }
    if let Some(f) = s.get("format").and_then(Value::as_str)
        && !is_numeric_format(f)
    {
        notes.push(f.to_owned());
    }
    if let Some(d) = s.get("default") {
        notes.push(format!("default {}", literal(d)));
    }
    notes
}

fn counted(lo: Option<String>, hi: Option<String>, unit: &str) -> Option<String> {
    match (lo, hi) {
        (Some(lo), Some(hi)) if lo == hi => Some(format!("exactly {lo} {unit}")),
        (Some(lo), Some(hi)) => Some(format!("{lo} to {hi} {unit}")),
        (Some(lo), None) if lo != "0" => Some(format!("at least {lo} {unit}")),
        (None, Some(hi)) => Some(format!("at most {hi} {unit}")),
        _ => None,
    }
}

/// schemars' formats for Rust number types (`double`, `uint8`, ...): the type and range say it.
pub(crate) fn is_numeric_format(f: &str) -> bool {
    matches!(
        f,
        "float"
            | "double"
            | "int"
            | "uint"
            | "int8"
            | "int16"
            | "int32"
            | "int64"
            | "int128"
            | "uint8"
            | "uint16"
            | "uint32"
            | "uint64"
            | "uint128"
    )
}

/// A JSON value as a literal type.
fn literal(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "any".into())
}

/// Whether `name` can be written bare as a key.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{notation, prompt_instruction};

    /// What schemars generates for the quickstart's `Sentiment` (a unit enum behind a `$ref`).
    fn sentiment() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Sentiment",
            "description": "The sentiment of one customer review.",
            "type": "object",
            "properties": {
                "label": {"$ref": "#/$defs/Label", "description": "The overall sentiment of the review."},
                "confidence": {"type": "number", "format": "double", "minimum": 0.0, "maximum": 1.0,
                               "description": "How sure the model is,\nfrom 0 to 1."},
                "rationale": {"type": "string", "maxLength": 280,
                              "description": "One short sentence explaining the label."}
            },
            "required": ["label", "confidence", "rationale"],
            "additionalProperties": false,
            "$defs": {"Label": {"description": "Overall sentiment.", "type": "string",
                                "enum": ["Positive", "Neutral", "Negative"]}}
        })
    }

    #[test]
    fn a_struct_shows_fields_types_enum_values_ranges_lengths_and_descriptions() {
        assert_eq!(
            notation(&sentiment()),
            "// The sentiment of one customer review.\n{\n  \
             label: \"Positive\" | \"Neutral\" | \"Negative\" // The overall sentiment of the review.\n  \
             confidence: number // 0.0..1.0; How sure the model is, from 0 to 1.\n  \
             rationale: string // at most 280 chars; One short sentence explaining the label.\n}"
        );
        let instruction = prompt_instruction(&sentiment());
        assert!(
            instruction.starts_with(
                "Answer with one JSON object and nothing else, of this type:\n// The sentiment"
            ),
            "{instruction}"
        );
        assert!(!instruction.contains("$schema") && !instruction.contains("double"));
    }

    #[test]
    fn nested_lists_optional_nullable_and_described_variants() {
        let schema = json!({
            "type": "object",
            "properties": {
                "items": {"type": "array", "minItems": 1, "maxItems": 5,
                          "items": {"$ref": "#/$defs/Item"}, "description": "What was bought."},
                "note": {"type": ["string", "null"], "default": null},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "uniqueItems": true},
                "counts": {"type": "object", "additionalProperties": {"type": "integer", "format": "uint32", "minimum": 0}},
                "kind": {"oneOf": [
                    {"const": "refund", "description": "Money back."},
                    {"const": "swap", "description": "Another item."}
                ]},
                "ref-code": {"anyOf": [{"type": "string", "pattern": "^[A-Z]{3}$"}, {"type": "null"}]}
            },
            "required": ["items", "tags", "counts", "kind", "ref-code"],
            "$defs": {"Item": {"type": "object", "properties": {
                "sku": {"type": "string", "minLength": 3, "maxLength": 12},
                "qty": {"type": "integer", "minimum": 1}
            }, "required": ["sku", "qty"]}}
        });
        assert_eq!(
            notation(&schema),
            "{\n  \
             // 1 to 5 items; What was bought.\n  \
             items: {\n    sku: string // 3 to 12 chars\n    qty: integer // >= 1\n  }[]\n  \
             tags: (\"a\" | \"b\")[] // unique\n  \
             counts: { [key: string]: integer }\n  \
             kind:\n    | \"refund\" // Money back.\n    | \"swap\" // Another item.\n  \
             \"ref-code\": string | null // matches /^[A-Z]{3}$/\n  \
             note?: string | null // default null\n}"
        );
    }

    #[test]
    fn recursive_types_are_named_and_defined_once_after_the_root() {
        let schema = json!({
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"type": "object", "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
            }, "required": ["name", "children"]}}
        });
        assert_eq!(
            notation(&schema),
            "{\n  name: string\n  children: Node[]\n}\nNode = {\n  name: string\n  children: Node[]\n}"
        );
    }

    #[test]
    fn flattened_parts_merge_and_odd_schemas_never_panic() {
        let flat = json!({"allOf": [
            {"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a"]},
            {"type": "object", "properties": {"b": {"type": "integer"}}}
        ]});
        assert_eq!(notation(&flat), "{\n  a: boolean\n  b?: integer\n}");
        for odd in [
            json!(true),
            json!(false),
            json!(null),
            json!({}),
            json!([1, 2]),
            json!({"$ref": "#/$defs/Missing"}),
            json!({"type": 7}),
            json!({"enum": "x"}),
        ] {
            let _ = notation(&odd);
        }
        assert_eq!(notation(&json!({"$ref": "#/$defs/Missing"})), "Missing");
        let mut deep = json!({"type": "string"});
        for _ in 0..1_000 {
            deep = json!({"type": "array", "items": deep});
        }
        let text = notation(&deep);
        assert!(text.starts_with("any[]") || text.ends_with("[]"), "{text}");
        assert!(text.len() < 200, "depth is bounded: {}", text.len());
    }
}
