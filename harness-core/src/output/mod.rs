//! Typed outputs: the [`LlmOutput`] trait, validation errors, rules and the lenient parser.

pub mod parse;
pub mod rules;
mod validate;

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use validate::{Checked, SchemaValidator, check_value};

/// The instruction that tells the model which JSON to produce, for a request whose server does not
/// enforce the schema (added to the system message then): the output type in the compact
/// notation ([`mod@crate::contract::notation`]), not the JSON schema itself.
pub fn schema_instruction(schema: &serde_json::Value) -> String {
    crate::contract::notation::prompt_instruction(schema)
}

/// The schema as a server gets it in `response_format` (or Anthropic's tool `input_schema`):
/// without the keywords no server enforces and that only cost tokens — `$schema`, `title`, and
/// schemars' number formats (`double`, `uint8`, ...; the type and the range say it). Walks the
/// schema keywords with a heap stack, as [`close_objects`] does; data under `const`, `enum`,
/// `default` and `examples` is left as it is, and so are property names. A definition that
/// refers to no other (a unit enum, a leaf struct) is written in place of its `$ref`s and leaves
/// `$defs`: the same schema, in fewer tokens.
pub fn wire_schema(schema: &serde_json::Value) -> serde_json::Value {
    let mut wire = cleaned(schema);
    inline_leaf_defs(&mut wire);
    wire
}

/// The schema keyword children of a schema object, mutably (the walk of [`wire_schema`] and
/// [`close_objects`]), each with whether it stands alone: the parts of an `allOf` do not (each
/// holds some of one object's keys).
fn children_mut(
    map: &mut serde_json::Map<String, serde_json::Value>,
) -> Vec<(&mut serde_json::Value, bool)> {
    use serde_json::Value;
    let mut out = Vec::new();
    for (key, child) in map.iter_mut() {
        match (key.as_str(), child) {
            ("properties" | "$defs" | "definitions" | "patternProperties", Value::Object(m)) => {
                out.extend(m.values_mut().map(|c| (c, true)))
            }
            ("allOf", Value::Array(parts)) => out.extend(parts.iter_mut().map(|c| (c, false))),
            ("anyOf" | "oneOf" | "prefixItems", Value::Array(parts)) => {
                out.extend(parts.iter_mut().map(|c| (c, true)))
            }
            (
                "items"
                | "additionalProperties"
                | "additionalItems"
                | "not"
                | "if"
                | "then"
                | "else"
                | "contains"
                | "propertyNames",
                c,
            ) => out.push((c, true)),
            _ => {}
        }
    }
    out
}

/// Writes each `$defs` entry that holds no `$ref` in place of the `$ref`s naming it (the
/// referring schema's own keywords, such as its description, win), and drops the entries no
/// `$ref` names any more.
fn inline_leaf_defs(wire: &mut serde_json::Value) {
    use serde_json::Value;
    let Some(defs) = wire.get("$defs").and_then(Value::as_object) else {
        return;
    };
    let leaves: std::collections::HashMap<String, Value> = defs
        .iter()
        .filter(|(_, d)| !d.to_string().contains("\"$ref\""))
        .map(|(name, d)| (format!("#/$defs/{name}"), d.clone()))
        .collect();
    if leaves.is_empty() {
        return;
    }
    let mut stack = vec![&mut *wire];
    while let Some(node) = stack.pop() {
        let Value::Object(map) = node else { continue };
        if let Some(def) = map
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| leaves.get(r))
            && let Value::Object(def) = def
        {
            map.remove("$ref");
            for (k, v) in def {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        stack.extend(children_mut(map).into_iter().map(|(c, _)| c));
    }
    let text = wire.to_string();
    let Some(map) = wire.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(defs)) = map.get_mut("$defs") {
        defs.retain(|name, _| text.contains(&format!("\"#/$defs/{name}\"")));
        if defs.is_empty() {
            map.remove("$defs");
        }
    }
}

/// The schema without `$schema`, `title` and number formats.
fn cleaned(schema: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let mut wire = schema.clone();
    if let Value::Object(map) = &mut wire {
        map.remove("$schema");
    }
    let mut stack = vec![&mut wire];
    while let Some(node) = stack.pop() {
        let Value::Object(map) = node else { continue };
        map.remove("title");
        if map
            .get("format")
            .and_then(Value::as_str)
            .is_some_and(crate::contract::notation::is_numeric_format)
        {
            map.remove("format");
        }
        stack.extend(children_mut(map).into_iter().map(|(c, _)| c));
    }
    wire
}

/// Closes every object schema in `schema` that lists `properties` and says nothing of other keys:
/// adds `additionalProperties: false`. The parts of an `allOf` (a flattened struct) are left open,
/// since each part alone would reject the other parts' keys. Walks the schema keywords with a heap
/// stack (values under `const`, `enum`, `default` and `examples` are data, and are not touched).
pub fn close_objects(schema: &mut serde_json::Value) {
    use serde_json::Value;
    // (a schema, whether it may be closed)
    let mut stack = vec![(schema, true)];
    while let Some((node, closable)) = stack.pop() {
        let Value::Object(map) = node else { continue };
        if closable && map.contains_key("properties") && !map.contains_key("additionalProperties") {
            map.insert("additionalProperties".to_owned(), Value::Bool(false));
        }
        stack.extend(children_mut(map));
    }
}

/// A type the model can be asked to produce. Derive it with `#[derive(LlmOutput)]`: the derive
/// provides deserialisation, the JSON schema (doc comments become descriptions) and the rules
/// declared with `#[llm(...)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an LLM output type",
    label = "`{Self}` does not implement `LlmOutput`",
    note = "add `#[derive(LlmOutput)]` to the definition of `{Self}`: it generates the JSON schema, parsing and validation the harness needs"
)]
pub trait LlmOutput: DeserializeOwned + schemars::JsonSchema + Send + 'static {
    /// The type's name, for messages and records.
    const TYPE_NAME: &'static str;
    /// Whether the type has a `#[llm(confidence)]` field.
    const HAS_CONFIDENCE: bool;

    /// The JSON schema (draft 2020-12) the model is asked to follow (requests carry its
    /// [`wire_schema`]). Its objects are closed
    /// (`additionalProperties: false`, as OpenAI's strict mode requires; see [`close_objects`]):
    /// a key the model adds is dropped by the lenient parser and recorded as a repair.
    fn output_schema() -> serde_json::Value {
        let schema = schemars::SchemaGenerator::default().into_root_schema_for::<Self>();
        let mut schema = serde_json::to_value(schema).unwrap_or(serde_json::Value::Bool(true));
        close_objects(&mut schema);
        schema
    }

    /// Checks the `#[llm(...)]` rules of this value (and of nested outputs), pushing one
    /// [`ValidationError`] per broken rule with the field path it concerns.
    fn validate(&self, path: &FieldPath, errors: &mut ValidationErrors);

    /// The value of the confidence field, when the type has one.
    fn confidence(&self) -> Option<f64> {
        None
    }
}

/// A path to a field inside an output, such as `items[2].label`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// The root of the output.
    pub fn root() -> Self {
        FieldPath(String::new())
    }

    /// The path of a named field below this one.
    pub fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(name.to_owned())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// The path of an element of a list below this one.
    pub fn index(&self, i: usize) -> Self {
        FieldPath(format!("{}[{i}]", self.0))
    }

    /// The path as text; empty for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(root)")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// One broken rule, worded so that a model can act on it when it is fed back in a reask.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValidationError {
    /// Where: `confidence`, `items[2].label`; empty for the whole output.
    pub path: String,
    /// Which rule: `schema`, `json`, `range`, `length`, `pattern`, `one_of`, `custom`, `required`, `type`.
    pub rule: &'static str,
    /// What is wrong and what would be right, e.g. "must be at most 1, got 1.5".
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} ({})", self.message, self.rule)
        } else {
            write!(f, "`{}`: {} ({})", self.path, self.message, self.rule)
        }
    }
}

/// Every rule an output broke.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a broken rule.
    pub fn push(&mut self, path: &FieldPath, rule: &'static str, message: impl Into<String>) {
        self.0.push(ValidationError {
            path: path.as_str().to_owned(),
            rule,
            message: message.into(),
        });
    }

    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many rules were broken.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.0.iter()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "- {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

#[cfg(test)]
mod close_tests {
    use serde_json::json;

    use super::close_objects;

    #[test]
    fn objects_are_closed_everywhere_a_schema_can_be() {
        let mut schema = json!({
            "type": "object",
            "properties": {
                "properties": {"type": "object", "properties": {"a": {"type": "string"}}},
                "list": {"type": "array", "items": {"type": "object", "properties": {}}},
                "either": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]},
                "map": {"type": "object", "additionalProperties": {"type": "integer"}},
                "fixed": {"const": {"properties": {}}}
            },
            "$defs": {"A": {"type": "object", "properties": {"x": {"type": "integer"}}}}
        });
        close_objects(&mut schema);
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(
            schema["properties"]["properties"]["additionalProperties"],
            json!(false)
        );
        // A field named `properties` is a field, not a keyword of the properties map.
        assert!(schema["properties"].get("additionalProperties").is_none());
        assert_eq!(
            schema["properties"]["list"]["items"]["additionalProperties"],
            json!(false)
        );
        assert_eq!(schema["$defs"]["A"]["additionalProperties"], json!(false));
        // A map keeps its value schema; data under `const` is not a schema.
        assert_eq!(
            schema["properties"]["map"]["additionalProperties"],
            json!({"type": "integer"})
        );
        assert_eq!(
            schema["properties"]["fixed"]["const"],
            json!({"properties": {}})
        );
    }

    #[test]
    fn the_wire_schema_drops_what_no_server_enforces() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Out",
            "type": "object",
            "properties": {
                "title": {"type": "string", "format": "date-time", "title": "T"},
                "n": {"type": "number", "format": "double", "minimum": 0},
                "list": {"type": "array", "items": {"type": "integer", "format": "uint8"}},
                "fixed": {"const": {"title": "kept", "format": "double"}}
            },
            "required": ["title", "n", "list", "fixed"],
            "additionalProperties": false
        });
        let wire = super::wire_schema(&schema);
        assert_eq!(
            wire,
            json!({
                "type": "object",
                "properties": {
                    // A field named `title` is a field; a string format is kept.
                    "title": {"type": "string", "format": "date-time"},
                    "n": {"type": "number", "minimum": 0},
                    "list": {"type": "array", "items": {"type": "integer"}},
                    "fixed": {"const": {"title": "kept", "format": "double"}}
                },
                "required": ["title", "n", "list", "fixed"],
                "additionalProperties": false
            })
        );
    }

    #[test]
    fn leaf_definitions_are_written_in_place_and_recursive_ones_stay() {
        let schema = json!({
            "type": "object",
            "properties": {
                "label": {"$ref": "#/$defs/Label", "description": "The label."},
                "other": {"$ref": "#/$defs/Label"},
                "tree": {"$ref": "#/$defs/Node"}
            },
            "$defs": {
                "Label": {"type": "string", "enum": ["a", "b"], "description": "A label."},
                "Node": {"type": "object", "properties": {
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                    "tag": {"$ref": "#/$defs/Label"}
                }}
            }
        });
        let wire = super::wire_schema(&schema);
        let label = json!({"type": "string", "enum": ["a", "b"], "description": "The label."});
        assert_eq!(wire["properties"]["label"], label);
        assert_eq!(wire["properties"]["other"]["description"], "A label.");
        assert_eq!(wire["properties"]["tree"], json!({"$ref": "#/$defs/Node"}));
        assert_eq!(
            wire["$defs"]["Node"]["properties"]["tag"]["enum"],
            json!(["a", "b"])
        );
        assert!(wire["$defs"].get("Label").is_none(), "{wire}");
        let compiled = jsonschema::validator_for(&wire).unwrap();
        assert!(compiled.is_valid(&json!({"label": "a", "tree": {"kids": [{"tag": "b"}]}})));
        assert!(!compiled.is_valid(&json!({"label": "c"})));
    }

    #[test]
    fn the_parts_of_an_all_of_stay_open() {
        let mut schema = json!({
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}},
                {"type": "object", "properties": {"b": {"type": "integer"}}}
            ]
        });
        close_objects(&mut schema);
        assert!(schema["allOf"][0].get("additionalProperties").is_none());
        assert!(schema["allOf"][1].get("additionalProperties").is_none());
    }
}
