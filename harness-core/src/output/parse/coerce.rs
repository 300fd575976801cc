//! Schema-guided coercion: changes a value only where the schema leaves one reading.
//!
//! The walk follows `$ref` (`#/$defs/...`, `#/definitions/...`, any local JSON pointer), a single
//! `allOf`, and an `anyOf`/`oneOf`: an enum spelled as `const` branches, one schema plus `null`
//! (what schemars emits for `Option<T>`), or several schemas. For several, each branch is tried on
//! a copy of the value; the coercion is kept when exactly one branch's copy then fits that branch,
//! or when one needs fewer repairs than every other that fits. Two that tie are a
//! [`Tie`]: nothing is coerced and the parser says which two readings it could not choose
//! between. The walk recurses once per level of the value, whose depth the reader bounded, and
//! gives up after [`MAX_HOPS`] schema indirections on one value (a `$ref` cycle).

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::Repair;
use crate::output::FieldPath;

/// Schema indirections (`$ref`, `allOf`, `anyOf`) followed for one value before giving up.
const MAX_HOPS: u8 = 32;

/// Two readings of a union member that fit equally well.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Tie {
    /// Where the union is.
    pub path: String,
    /// The two values.
    pub readings: (Value, Value),
}

/// What a walk changed.
#[derive(Debug, Default)]
pub(super) struct Coercion {
    pub repairs: Vec<Repair>,
    pub tie: Option<Tie>,
}

/// Compiled union branches, by the address of their schema in the root.
type Branches = HashMap<usize, Option<jsonschema::Validator>>;

/// Coerces `value` towards `root` (the whole schema), recording each change.
pub(super) fn coerce(value: &mut Value, root: &Value) -> Coercion {
    let mut cache = Branches::new();
    let mut walk = Walk {
        root,
        repairs: Vec::new(),
        cache: &mut cache,
        tie: None,
    };
    walk.value(value, root, &FieldPath::root(), 0);
    Coercion {
        repairs: walk.repairs,
        tie: walk.tie,
    }
}

/// The JSON types the root of `schema` allows (through `$ref`, a single `allOf`, one schema plus
/// `null`, `enum` and `const`), `null` left out; empty when the schema does not say.
pub(super) fn root_types(schema: &Value) -> Vec<&str> {
    let mut cache = Branches::new();
    let walk = Walk {
        root: schema,
        repairs: Vec::new(),
        cache: &mut cache,
        tie: None,
    };
    let mut node = schema;
    for _ in 0..MAX_HOPS {
        let Some(map) = walk.resolve(node).and_then(Value::as_object) else {
            return Vec::new();
        };
        if let Some([only]) = map
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            node = only;
            continue;
        }
        if let Some(branches) = map
            .get("anyOf")
            .or(map.get("oneOf"))
            .and_then(Value::as_array)
        {
            let mut non_null = branches.iter().filter(|b| {
                !walk
                    .resolve(b)
                    .and_then(Value::as_object)
                    .is_some_and(is_null_schema)
            });
            match (non_null.next(), non_null.next()) {
                (Some(only), None) => {
                    node = only;
                    continue;
                }
                _ => return Vec::new(),
            }
        }
        let declared = types(map);
        if !declared.is_empty() {
            return declared;
        }
        return match enum_values(map) {
            Some(values) if !values.is_empty() && values.iter().all(|v| v.is_string()) => {
                vec!["string"]
            }
            _ => Vec::new(),
        };
    }
    Vec::new()
}

struct Walk<'a, 'c> {
    root: &'a Value,
    repairs: Vec<Repair>,
    cache: &'c mut Branches,
    tie: Option<Tie>,
}

impl<'a> Walk<'a, '_> {
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
            Value::Number(n) if only("string") && (n.is_i64() || n.is_u64()) => {
                // An integer's JSON text is its only spelling (no leading zeros, no exponent);
                // a fraction's is not (`1.50` reads as 1.5), so fractions stay numbers.
                let to = Value::String(n.to_string());
                let from = std::mem::replace(value, to.clone());
                self.repairs.push(Repair::Coerced {
                    path: path.as_str().to_owned(),
                    from,
                    to,
                });
            }
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
        let non_null: Vec<&'a Value> = branches
            .iter()
            .zip(&resolved)
            .filter(|(_, r)| !r.is_some_and(is_null_schema))
            .map(|(b, _)| b)
            .collect();
        match non_null.as_slice() {
            [] => {}
            [only] => self.value(value, only, path, hops + 1),
            several => self.branches(value, several, path, hops),
        }
    }

    /// A union of several schemas: the one branch a coercion makes the value fit, if one is
    /// cheapest; a [`Tie`] when two are.
    fn branches(&mut self, value: &mut Value, branches: &[&'a Value], path: &FieldPath, hops: u8) {
        if branches.iter().any(|b| self.fits(b, value)) {
            return;
        }
        let mut fitting: Vec<(usize, Value, Vec<Repair>)> = Vec::new();
        for branch in branches {
            let mut copy = value.clone();
            let mut sub = Walk {
                root: self.root,
                repairs: Vec::new(),
                cache: &mut *self.cache,
                tie: None,
            };
            sub.value(&mut copy, branch, path, hops + 1);
            let (repairs, tie) = (sub.repairs, sub.tie);
            if tie.is_some() {
                self.tie = self.tie.take().or(tie);
                return;
            }
            if repairs.is_empty() || !self.fits(branch, &copy) {
                continue;
            }
            if fitting.iter().any(|(_, v, _)| *v == copy) {
                continue;
            }
            // Only the number of coercions counts here: two branches one coercion away each
            // (`"1"` → `1` or `["1"]`) are two readings, whatever the kinds.
            fitting.push((repairs.len(), copy, repairs));
        }
        fitting.sort_by_key(|(cost, ..)| *cost);
        let mut fitting = fitting.into_iter();
        let Some((cost, best, repairs)) = fitting.next() else {
            return;
        };
        if let Some((_, second, _)) = fitting.next().filter(|(c, ..)| *c == cost) {
            self.tie = Some(Tie {
                path: path.as_str().to_owned(),
                readings: (best, second),
            });
            return;
        }
        *value = best;
        self.repairs.extend(repairs);
    }

    /// Whether `value` fits the union branch `branch` (with the root's definitions).
    fn fits(&mut self, branch: &'a Value, value: &Value) -> bool {
        let key = std::ptr::from_ref(branch) as usize;
        let root = self.root;
        let validator = self.cache.entry(key).or_insert_with(|| {
            let mut doc = branch.clone();
            if let (Some(doc), Some(root)) = (doc.as_object_mut(), root.as_object()) {
                for defs in ["$defs", "definitions", "$schema"] {
                    if let (false, Some(d)) = (doc.contains_key(defs), root.get(defs)) {
                        doc.insert(defs.to_owned(), d.clone());
                    }
                }
            }
            jsonschema::validator_for(&doc).ok()
        });
        validator.as_ref().is_some_and(|v| v.is_valid(value))
    }

    /// Replaces a string that matches exactly one allowed string once surrounding whitespace,
    /// then case, is ignored; an integer whose text is an allowed string becomes that string.
    fn enum_case(&mut self, value: &mut Value, allowed: &[&Value], path: &FieldPath) {
        if let Value::Number(n) = value {
            let text = n.to_string();
            let integer = n.is_i64() || n.is_u64();
            if integer
                && !allowed.contains(&&*value)
                && allowed.iter().any(|a| a.as_str() == Some(&text))
            {
                let to = Value::String(text);
                let from = std::mem::replace(value, to.clone());
                self.repairs.push(Repair::Coerced {
                    path: path.as_str().to_owned(),
                    from,
                    to,
                });
            }
            return;
        }
        let Value::String(s) = value else { return };
        if allowed.iter().any(|a| a.as_str() == Some(s.as_str())) {
            return;
        }
        let trimmed = s.trim();
        let exact: Vec<&str> = allowed
            .iter()
            .filter_map(|a| a.as_str())
            .filter(|a| *a == trimmed)
            .collect();
        let lower = trimmed.to_lowercase();
        let folded: Vec<&str> = allowed
            .iter()
            .filter_map(|a| a.as_str())
            .filter(|a| a.to_lowercase() == lower)
            .collect();
        let one = match (exact.as_slice(), folded.as_slice()) {
            ([one], _) | ([], [one]) => Some(*one),
            _ => None,
        };
        if let Some(to) = one {
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
