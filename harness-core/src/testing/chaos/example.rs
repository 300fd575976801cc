//! A minimal value that satisfies a JSON schema: the chaos server's good answer when the test gives
//! none.

use serde_json::{Map, Value, json};

/// A small instance of `schema` (required properties only, smallest numbers, first enum values).
/// Best effort: unusual keywords are ignored.
pub fn example_for(schema: &Value) -> Value {
    build(schema, schema, 0)
}

fn build(s: &Value, root: &Value, depth: usize) -> Value {
    if depth > 32 {
        return Value::Null;
    }
    let Some(obj) = s.as_object() else {
        return Value::Null;
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .unwrap_or(&Value::Null);
        return build(target, root, depth + 1);
    }
    if let Some(c) = obj.get("const") {
        return c.clone();
    }
    if let Some(first) = obj
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = obj
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return build(first, root, depth + 1);
        }
    }
    match type_of(obj) {
        "object" => object(obj, root, depth),
        "array" => {
            let n = obj
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(16);
            let item = obj
                .get("items")
                .map_or(Value::Null, |i| build(i, root, depth + 1));
            Value::Array(vec![item; n as usize])
        }
        "string" => string(obj),
        "integer" => {
            let min = obj.get("minimum").and_then(Value::as_f64).or_else(|| {
                obj.get("exclusiveMinimum")
                    .and_then(Value::as_f64)
                    .map(|m| m.floor() + 1.0)
            });
            json!(
                min.map_or(0, |m| m.ceil().max(i64::MIN as f64).min(i64::MAX as f64)
                    as i64)
            )
        }
        "number" => {
            let min = obj.get("minimum").and_then(Value::as_f64);
            let max = obj.get("maximum").and_then(Value::as_f64);
            match (min, max) {
                (Some(a), Some(b)) => json!((a + b) / 2.0),
                (Some(a), None) => json!(a),
                (None, Some(b)) if b < 0.0 => json!(b),
                _ => json!(0.0),
            }
        }
        "boolean" => Value::Bool(true),
        _ => Value::Null,
    }
}

/// The schema's type: the first non-null one of a list; `object` when it only has properties.
fn type_of(obj: &Map<String, Value>) -> &str {
    match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if obj.contains_key("properties") => "object",
        _ => "null",
    }
}

/// An object with its required properties only.
fn object(obj: &Map<String, Value>, root: &Value, depth: usize) -> Value {
    let mut out = Map::new();
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            if required.contains(&k.as_str()) {
                out.insert(k.clone(), build(v, root, depth + 1));
            }
        }
    }
    Value::Object(out)
}

/// The shortest string within `minLength`/`maxLength` (at least one character when allowed).
fn string(obj: &Map<String, Value>) -> Value {
    let n = obj
        .get("minLength")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(4096);
    let max = obj
        .get("maxLength")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |m| m as usize);
    Value::String("x".repeat(n.max(1) as usize).chars().take(max).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_required_fields_within_bounds() {
        let schema = json!({
            "type": "object",
            "properties": {
                "label": {"$ref": "#/$defs/Label"},
                "confidence": {"type": "number", "minimum": 0.0, "maximum": 1.0},
                "count": {"type": "integer", "minimum": 3},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "note": {"type": ["string", "null"]},
                "optional": {"type": "string"}
            },
            "required": ["label", "confidence", "count", "tags", "note"],
            "$defs": {"Label": {"type": "string", "enum": ["positive", "negative"]}}
        });
        assert_eq!(
            example_for(&schema),
            json!({"label": "positive", "confidence": 0.5, "count": 3, "tags": ["x"], "note": "x"})
        );
        assert_eq!(example_for(&json!({"type": "boolean"})), json!(true));
        assert_eq!(example_for(&json!(true)), Value::Null);
    }
}
