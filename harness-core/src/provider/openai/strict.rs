//! Which schemas OpenAI's strict structured-output mode accepts.

use serde_json::Value;

/// Whether OpenAI's strict mode accepts `schema`: the root is an object, and every object closes
/// `additionalProperties` and requires all its properties. Sending `strict: true` for a schema that does not qualify is a 400.
pub fn qualifies_for_strict(schema: &Value) -> bool {
    fn walk(v: &Value, depth: usize) -> bool {
        if depth > 64 {
            return false;
        }
        let Some(obj) = v.as_object() else {
            return v.is_boolean() || v.is_null();
        };
        let is_object = obj.get("type").is_some_and(|t| {
            t == "object"
                || t.as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "object"))
        }) || obj.contains_key("properties");
        if is_object {
            if obj.get("additionalProperties") != Some(&Value::Bool(false)) {
                return false;
            }
            let props = obj.get("properties").and_then(Value::as_object);
            let required: Vec<&str> = obj
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = props {
                if !props.keys().all(|k| required.contains(&k.as_str())) {
                    return false;
                }
            }
        }
        let maps = ["properties", "$defs", "definitions", "patternProperties"];
        for key in maps {
            if let Some(m) = obj.get(key).and_then(Value::as_object) {
                if !m.values().all(|s| walk(s, depth + 1)) {
                    return false;
                }
            }
        }
        let lists = ["anyOf", "oneOf", "allOf", "prefixItems"];
        for key in lists {
            if let Some(a) = obj.get(key).and_then(Value::as_array) {
                if !a.iter().all(|s| walk(s, depth + 1)) {
                    return false;
                }
            }
        }
        for key in ["items", "not", "if", "then", "else", "additionalProperties"] {
            if let Some(s) = obj.get(key) {
                if s.is_object() && !walk(s, depth + 1) {
                    return false;
                }
                if let Some(a) = s.as_array() {
                    if !a.iter().all(|s| walk(s, depth + 1)) {
                        return false;
                    }
                }
            }
        }
        true
    }
    schema.get("type").is_some_and(|t| t == "object") && walk(schema, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_needs_closed_objects_with_every_property_required() {
        let ok = json!({"type":"object","properties":{"a":{"type":"string"},
            "b":{"type":"object","properties":{"c":{"type":"integer"}},"required":["c"],"additionalProperties":false}},
            "required":["a","b"],"additionalProperties":false});
        assert!(qualifies_for_strict(&ok));
        let mut open = ok.clone();
        open["additionalProperties"] = json!(true);
        assert!(!qualifies_for_strict(&open));
        let mut optional = ok.clone();
        optional["required"] = json!(["a"]);
        assert!(!qualifies_for_strict(&optional));
        let mut nested_open = ok.clone();
        nested_open["properties"]["b"]
            .as_object_mut()
            .unwrap()
            .remove("additionalProperties");
        assert!(!qualifies_for_strict(&nested_open));
        let defs = json!({"type":"object","properties":{"x":{"$ref":"#/$defs/X"}},"required":["x"],
            "additionalProperties":false,"$defs":{"X":{"type":"object","properties":{"y":{"type":"string"}}}}});
        assert!(!qualifies_for_strict(&defs));
        assert!(!qualifies_for_strict(&json!({"type":"string"})));
    }
}
