//! The lenient parser against serde_json, in the same process.
//!
//! First a ratio run (interleaved samples, medians and their ratio — the figures we report):
//! valid JSON through `parse` (with a schema that allows anything, and with a real schema, whose
//! validation is part of the lenient path) against `serde_json::from_str::<Value>`; then a 1 MB
//! answer with prose and a fence around it, and the same answer with repairs to make. Then divan's
//! own statistics.
//!
//! `cargo bench -p harness-core --bench parse`

use std::hint::black_box;
use std::time::{Duration, Instant};

use harness_core::output::SchemaValidator;
use harness_core::output::parse::{ParseLimits, parse};
use serde_json::{Value, json};

fn item(i: usize) -> Value {
    let status = ["Open", "Closed", "OnHold"][i % 3];
    json!({
        "id": format!("T-{i}"),
        "status": status,
        "priority": i % 7,
        "score": i as f64 / 8.0,
        "tags": ["billing", "late \"delivery\"", "é"],
        "note": if i % 2 == 0 { Value::Null } else { json!("call back") },
    })
}

fn items(n: usize) -> String {
    serde_json::to_string(&json!({ "items": (0..n).map(item).collect::<Vec<_>>() })).unwrap()
}

/// About `bytes` of JSON.
fn json_of(bytes: usize) -> String {
    let one = items(1).len();
    items((bytes / one).max(1))
}

fn schema() -> SchemaValidator {
    SchemaValidator::new(json!({
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
        "required": ["items"],
        "$defs": {"Item": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "status": {"enum": ["Open", "Closed", "OnHold"]},
                "priority": {"type": "integer"},
                "score": {"type": "number"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "note": {"type": ["string", "null"]}
            },
            "required": ["id", "status", "priority", "score", "tags", "note"]
        }}
    }))
}

fn any() -> SchemaValidator {
    SchemaValidator::new(json!({}))
}

/// A model's answer: prose, a fence, the JSON, more prose.
fn with_prose(json: &str) -> String {
    format!(
        "Sure! I looked at every ticket [as asked] and here is the result:\n\n```json\n{json}\n```\n\nLet me know if you need anything else."
    )
}

/// The same JSON written carelessly: unquoted keys, single quotes, trailing commas.
fn careless(json: &str) -> String {
    json.replace("\"id\":", "id:")
        .replace("\"Open\"", "'Open'")
        .replace("]}", ",]}")
}

fn limits() -> ParseLimits {
    ParseLimits {
        max_bytes: 4 << 20,
        ..ParseLimits::DEFAULT
    }
}

fn median(f: &mut dyn FnMut(), runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn report() {
    let limits = limits();
    let (schema, any) = (schema(), any());
    println!("ratio run (medians of interleaved samples)");
    for (label, bytes, runs) in [
        ("200 B", 200, 2001),
        ("10 KB", 10_000, 301),
        ("1 MB", 1 << 20, 15),
    ] {
        let text = json_of(bytes);
        let mut serde_t = Vec::new();
        let mut any_t = Vec::new();
        let mut schema_t = Vec::new();
        for _ in 0..5 {
            serde_t.push(median(
                &mut || drop(black_box(serde_json::from_str::<Value>(&text))),
                runs,
            ));
            any_t.push(median(
                &mut || drop(black_box(parse(&text, &any, &limits))),
                runs,
            ));
            schema_t.push(median(
                &mut || drop(black_box(parse(&text, &schema, &limits))),
                runs,
            ));
        }
        let m = |v: &mut Vec<Duration>| {
            v.sort();
            v[2]
        };
        let (s, a, c) = (m(&mut serde_t), m(&mut any_t), m(&mut schema_t));
        println!(
            "  valid JSON {label} ({} bytes): serde_json {s:?}, parse (any schema) {a:?} = {:.2}x, parse (item schema, validated) {c:?} = {:.2}x",
            text.len(),
            a.as_secs_f64() / s.as_secs_f64(),
            c.as_secs_f64() / s.as_secs_f64(),
        );
    }
    let big = json_of(1 << 20);
    let prose = with_prose(&big);
    let messy = with_prose(&careless(&big));
    assert!(parse(&messy, &schema, &limits).unwrap().repairs.len() > 3);
    for (label, text) in [
        ("prose + fence", &prose),
        ("prose + fence + repairs", &messy),
    ] {
        let t = median(&mut || drop(black_box(parse(text, &schema, &limits))), 15);
        println!("  1 MB answer, {label} ({} bytes): parse {t:?}", text.len());
    }
}

fn main() {
    report();
    divan::main();
}

#[divan::bench(args = [200, 10_000, 1 << 20])]
fn serde_json_value(bencher: divan::Bencher, bytes: usize) {
    let text = json_of(bytes);
    bencher.bench(|| serde_json::from_str::<Value>(black_box(&text)));
}

#[divan::bench(args = [200, 10_000, 1 << 20])]
fn lenient_valid(bencher: divan::Bencher, bytes: usize) {
    let (text, schema, limits) = (json_of(bytes), any(), limits());
    bencher.bench(|| parse(black_box(&text), &schema, &limits));
}

#[divan::bench]
fn lenient_1mb_prose(bencher: divan::Bencher) {
    let (text, schema, limits) = (with_prose(&json_of(1 << 20)), schema(), limits());
    bencher.bench(|| parse(black_box(&text), &schema, &limits));
}

#[divan::bench]
fn lenient_1mb_prose_repairs(bencher: divan::Bencher) {
    let (text, schema, limits) = (with_prose(&careless(&json_of(1 << 20))), schema(), limits());
    bencher.bench(|| parse(black_box(&text), &schema, &limits));
}
