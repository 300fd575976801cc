//! Fuzzes the lenient parser with a fixed schema: it must never panic, never overflow the stack,
//! never return a value deeper than the limit, agree with serde_json on strict JSON, and return
//! a value that fits the schema whenever the schema guided a repair.
#![no_main]

use std::sync::LazyLock;

use harness_core::output::SchemaValidator;
use harness_core::output::parse::{ParseLimits, RepairKind, parse};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// A schema like schemars emits: `$defs`, `$ref`, an enum, an `Option`, arrays and a union,
/// so coercion walks every kind of node.
static SCHEMA: LazyLock<SchemaValidator> = LazyLock::new(|| {
    SchemaValidator::new(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "label": {"$ref": "#/$defs/Label"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "stars": {"type": ["integer", "null"]},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
            "mood": {"anyOf": [{"$ref": "#/$defs/Mood"}, {"type": "null"}]},
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}]}
        },
        "required": ["label", "confidence"],
        "$defs": {
            "Label": {"type": "string", "enum": ["Positive", "Neutral", "Negative"]},
            "Mood": {"oneOf": [{"const": "Happy"}, {"const": "Sad"}]},
            "Item": {
                "type": "object",
                "properties": {"n": {"type": "integer"}, "next": {"$ref": "#/$defs/Item"}},
                "additionalProperties": {"type": "boolean"}
            }
        }
    }))
});

const LIMITS: ParseLimits = ParseLimits {
    max_bytes: 256 * 1024,
    max_depth: 32,
    ..ParseLimits::DEFAULT
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let result = parse(&text, &SCHEMA, &LIMITS);
    if let Ok(parsed) = &result {
        assert!(depth(&parsed.value) <= LIMITS.max_depth, "deeper than the limit");
        let _ = SCHEMA.errors(&parsed.value);
        for repair in &parsed.repairs {
            assert!(!repair.to_string().is_empty());
            assert_eq!(RepairKind::from_name(repair.kind().name()), Some(repair.kind()));
        }
        // A value the schema guided the parser to always fits it.
        let guided = parsed.repairs.iter().any(|r| r.kind().is_schema_guided());
        assert!(!guided || SCHEMA.is_valid(&parsed.value), "{}", parsed.value);
    }
    // Strict JSON within the limits is always read; if it fits the schema, it is returned as it
    // is, without repairs.
    if let Ok(strict) = serde_json::from_str::<Value>(&text) {
        if depth(&strict) <= LIMITS.max_depth {
            let parsed = result.expect("strict JSON within the limits is read");
            if SCHEMA.is_valid(&strict) {
                assert_eq!(parsed.value, strict);
                assert!(parsed.repairs.is_empty(), "{:?}", parsed.repairs);
            }
        }
    }
});

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
