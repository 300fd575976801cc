//! Differential fuzzing against serde_json: on every input serde_json reads, the lenient parser
//! (with a schema that allows anything, so no coercion applies) returns the identical value and
//! records no repair. Inputs serde_json rejects must not panic.
#![no_main]

use std::sync::LazyLock;

use harness_core::output::SchemaValidator;
use harness_core::output::parse::{ParseLimits, parse};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

static ANY: LazyLock<SchemaValidator> = LazyLock::new(|| SchemaValidator::new(json!({})));

const LIMITS: ParseLimits = ParseLimits {
    max_bytes: 256 * 1024,
    max_depth: 128,
    ..ParseLimits::DEFAULT
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = parse(text, &ANY, &LIMITS);
    // serde_json's own recursion limit is 128, the parser's hard cap.
    if let Ok(strict) = serde_json::from_str::<Value>(text) {
        let parsed = result.unwrap_or_else(|e| panic!("serde_json reads {text:?}, the parser: {e}"));
        assert_eq!(parsed.value, strict, "{text:?}");
        assert!(parsed.repairs.is_empty(), "{text:?}: {:?}", parsed.repairs);
    }
});
