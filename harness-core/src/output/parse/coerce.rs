//! Schema-guided coercion: changes a value only where the schema leaves one reading.
//!
//! The walk follows `$ref` (`#/$defs/...`, `#/definitions/...`, any local JSON pointer), a single
//! `allOf`, and an `anyOf`/`oneOf` that is either an enum spelled as `const` branches or one
//! schema plus `null` (what schemars emits for `Option<T>`). Any other union is ambiguous and left
//! alone. The walk recurses once per level of the value, whose depth the reader bounded, and
//! gives up after [`MAX_HOPS`] schema indirections on one value (a `$ref` cycle).

use serde_json::{Map, Number, Value};

use super::Repair;
use crate::output::FieldPath;

/// Schema indirections (`$ref`, `allOf`, `anyOf`) followed for one value before giving up.
const MAX_HOPS: u8 = 32;

/// Coerces `value` towards `root` (the whole schema), recording each change.
pub(super) fn coerce(value: &mut Value, root: &Value, repairs: &mut Vec<Repair>) {
    Walk { root, repairs }.value(value, root, &FieldPath::root(), 0);
}

struct Walk<'a> {
    root: &'a Value,
    repairs: &'a mut Vec<Repair>,
}

impl<'a> Walk<'a> {
    fn value(&mut self, value: &mut Value, schema: &'a Value, path: &FieldPath, hops: u8) {
        if hops > MAX_HOPS {
            return;
        }
        let Some(schema) = self.resolve(schema).and_then(Value::as_object) else {
            return;
        };
        if schema.contains_key("$ref") {
            // A reference that did not resolve: nothing is known.
            return;
        }
        if let Some([only]) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            if schema.get("type").is_none() && schema.get("properties").is_none() {
                return self.value(value, only, path, hops + 1);
            }
        }
        for union in ["anyOf", "oneOf"] {
            if let Some(branches) = schema.get(union).and_then(Value::as_array) {
                return self.union(value, branches, path, hops);
            }
        }
        if let Some(allowed) = enum_values(schema) {
            self.enum_case(value, &allowed, path);
            return;
        }
        let types = types(schema);
        let only = |t: &str| types.len() == 1 && types[0] == t;
        if !value.is_array() && !value.is_null() && only("array") {
            let inner = std::mem::take(value);
            *value = Value::Array(vec![inner]);
            self.repairs.push(Repair::WrappedInArray {
                path: path.as_str().to_owned(),
            });
        }
        match value {
            Value::String(s) if !types.contains(&"string") => {
                let to = if only("integer") {
                    integer(s)
                } else if only("number") || (types.len() == 2 && only_numeric(&types)) {
                    number(s)
                } else if only("boolean") {
                    boolean(s)
                } else {
                    None
                };
                if let Some(to) = to {
                    let from = std::mem::replace(value, to.clone());
                    self.repairs.push(Repair::Coerced {
                        path: path.as_str().to_owned(),
                        from,
                        to,
                    });
                }
            }
            Value::Object(map) => self.object(map, schema, path),
            Value::Array(items) => self.array(items, schema, path),
            _ => {}
        }
    }

    fn object(
        &mut self,
        map: &mut Map<String, Value>,
        schema: &'a Map<String, Value>,
        path: &FieldPath,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(known) = properties.filter(|_| is_closed(schema)) {
            let unknown: Vec<String> = map
                .keys()
                .filter(|k| !known.contains_key(*k))
                .cloned()
                .collect();
            for key in unknown {
                map.remove(&key);
                self.repairs.push(Repair::DroppedUnknownKey {
                    path: path.as_str().to_owned(),
                    key,
                });
            }
        }
        let additional = schema.get("additionalProperties").filter(|s| s.is_object());
        for (key, v) in map.iter_mut() {
            let sub = properties.and_then(|p| p.get(key)).or(additional);
            if let Some(sub) = sub {
                self.value(v, sub, &path.field(key), 0);
            }
        }
    }

    fn array(&mut self, items: &mut [Value], schema: &'a Map<String, Value>, path: &FieldPath) {
        // 2020-12: `prefixItems` then `items`; draft 7: `items` as an array, then `additionalItems`.
        let (prefix, rest) = match (schema.get("prefixItems"), schema.get("items")) {
            (Some(Value::Array(p)), rest) => (p.as_slice(), rest),
            (None, Some(Value::Array(p))) => (p.as_slice(), schema.get("additionalItems")),
            (_, rest) => (&[][..], rest),
        };
        for (i, v) in items.iter_mut().enumerate() {
            if let Some(sub) = prefix.get(i).or(rest) {
                self.value(v, sub, &path.index(i), 0);
            }
        }
    }

    /// `anyOf`/`oneOf`: an enum of `const`s, or one schema plus `null`; otherwise ambiguous.
    fn union(&mut self, value: &mut Value, branches: &'a [Value], path: &FieldPath, hops: u8) {
        let resolved: Vec<Option<&Map<String, Value>>> = branches
            .iter()
            .map(|b| self.resolve(b).and_then(Value::as_object))
            .collect();
        let consts: Option<Vec<&Value>> = resolved
            .iter()
            .map(|b| b.and_then(enum_values))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().flatten().collect());
        if let Some(allowed) = consts {
            self.enum_case(value, &allowed, path);
            return;
        }
        if value.is_null() {
            return;
        }
        let mut non_null = branches
            .iter()
            .zip(&resolved)
            .filter(|(_, r)| !r.is_some_and(is_null_schema));
        if let (Some((only, _)), None) = (non_null.next(), non_null.next()) {
            self.value(value, only, path, hops + 1);
        }
    }

    /// Replaces a string that matches exactly one allowed string when case is ignored.
    fn enum_case(&mut self, value: &mut Value, allowed: &[&Value], path: &FieldPath) {
        let Value::String(s) = value else { return };
        if allowed.iter().any(|a| a.as_str() == Some(s.as_str())) {
            return;
        }
        let lower = s.to_lowercase();
        let mut matches = allowed
            .iter()
            .filter_map(|a| a.as_str())
            .filter(|a| a.to_lowercase() == lower);
        if let (Some(to), None) = (matches.next(), matches.next()) {
            let to = to.to_owned();
            let from = std::mem::replace(s, to.clone());
            self.repairs.push(Repair::MatchedEnumCase {
                path: path.as_str().to_owned(),
                from,
                to,
            });
        }
    }

    /// Follows local `$ref`s; `None` when the schema is not an object or boolean.
    fn resolve(&self, mut schema: &'a Value) -> Option<&'a Value> {
        for _ in 0..MAX_HOPS {
            let Some(Value::String(r)) = schema.get("$ref") else {
                return Some(schema);
            };
            let target = r.strip_prefix('#').and_then(|p| self.root.pointer(p));
            match target {
                Some(t) => schema = t,
                None => return Some(schema),
            }
        }
        None
    }
}

/// The values an `enum` or `const` allows, if the schema is one.
/// An object schema that allows no other keys than its `properties`.
fn is_closed(schema: &Map<String, Value>) -> bool {
    schema.get("additionalProperties") == Some(&Value::Bool(false))
}

fn enum_values(schema: &Map<String, Value>) -> Option<Vec<&Value>> {
    if let Some(Value::Array(values)) = schema.get("enum") {
        return Some(values.iter().collect());
    }
    schema.get("const").map(|c| vec![c])
}

/// The `type`s a schema allows, `null` left out.
fn types(schema: &Map<String, Value>) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    }
}

fn only_numeric(types: &[&str]) -> bool {
    types.iter().all(|t| *t == "integer" || *t == "number")
}

fn is_null_schema(schema: &Map<String, Value>) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
        || schema.get("const") == Some(&Value::Null)
}

/// `"3"` → `3`; only integer syntax, so `"3.5"` and `"1e3"` stay strings.
fn integer(s: &str) -> Option<Value> {
    let n: Number = s.trim().parse().ok()?;
    (n.is_i64() || n.is_u64()).then_some(Value::Number(n))
}

/// `"2.5"` → `2.5`.
fn number(s: &str) -> Option<Value> {
    let n: Number = s.trim().parse().ok()?;
    Some(Value::Number(n))
}

/// `"true"` → `true`, in any case.
fn boolean(s: &str) -> Option<Value> {
    match s.trim() {
        t if t.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
        t if t.eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
        _ => None,
    }
}
