//! Seeded property tests of the lenient parser, run with the normal suite: a differential check
//! against serde_json on valid JSON (the same check the `fuzz/` target makes, here without
//! nightly), "a repaired value always fits the schema", and "a mangled answer is read back as the
//! value the model meant, or rejected: never another value".

use harness_core::output::SchemaValidator;
use harness_core::output::parse::{ParseLimits, Repair, parse};
use serde_json::{Value, json};

const SEEDS: u64 = 400;

/// JSON text written by hand (not by serde_json): odd whitespace, escapes, exponents, big and
/// negative numbers, unicode, nesting.
fn json_text(rng: &mut fastrand::Rng, depth: usize, out: &mut String) {
    let ws = |rng: &mut fastrand::Rng, out: &mut String| {
        for _ in 0..rng.usize(0..3) {
            out.push([' ', '\n', '\t', '\r'][rng.usize(0..4)]);
        }
    };
    ws(rng, out);
    match rng.u8(0..if depth > 4 { 5 } else { 7 }) {
        0 => out.push_str(["null", "true", "false"][rng.usize(0..3)]),
        1 => out.push_str(&rng.i64(..).to_string()),
        2 => {
            let forms = [
                "0",
                "-0",
                "1.5e3",
                "-2E-2",
                "0.000001",
                "12345678901234567890",
                "1e2",
            ];
            out.push_str(forms[rng.usize(..forms.len())]);
        }
        3 => out.push_str(&format!("{}", rng.f64() * 1e9 - 5e8)),
        4 => {
            out.push('"');
            let pieces = [
                "a",
                "é",
                "\\\"",
                "\\\\",
                "\\n",
                "\\u00e9",
                "\\ud83d\\ude00",
                "😀",
                "}",
                "'",
                "\\/",
                " ",
                ",",
            ];
            for _ in 0..rng.usize(0..6) {
                out.push_str(pieces[rng.usize(..pieces.len())]);
            }
            out.push('"');
        }
        5 => {
            out.push('[');
            for i in 0..rng.usize(0..4) {
                if i > 0 {
                    out.push(',');
                }
                json_text(rng, depth + 1, out);
            }
            ws(rng, out);
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..rng.usize(0..4) {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                out.push_str(&format!("\"k{}\"", rng.u8(0..6)));
                ws(rng, out);
                out.push(':');
                json_text(rng, depth + 1, out);
            }
            ws(rng, out);
            out.push('}');
        }
    }
    ws(rng, out);
}

/// Differential: on every text serde_json reads, the lenient parser gives the identical value,
/// with no repair. Texts are hand-written JSON, plus byte-level mutants of them that serde_json
/// still accepts.
#[test]
fn valid_json_reads_exactly_as_serde_json_reads_it() {
    let any = SchemaValidator::new(json!({}));
    let mut rng = fastrand::Rng::with_seed(12);
    let mut compared = 0;
    for _ in 0..SEEDS * 5 {
        let mut text = String::new();
        json_text(&mut rng, 0, &mut text);
        let mut texts = vec![text.clone()];
        let mut bytes = text.into_bytes();
        if !bytes.is_empty() {
            let at = rng.usize(..bytes.len());
            match rng.u8(0..3) {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, b"{}[]\",: 0a"[rng.usize(0..10)]),
                _ => bytes[at] = b"{}[]\",: 0a"[rng.usize(0..10)],
            }
            if let Ok(t) = String::from_utf8(bytes) {
                texts.push(t);
            }
        }
        for text in texts {
            let Ok(strict) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            compared += 1;
            let p = parse(&text, &any, &ParseLimits::default())
                .unwrap_or_else(|e| panic!("{text:?}: serde_json reads it, the parser says {e}"));
            assert_eq!(p.value, strict, "{text:?}");
            assert!(p.repairs.is_empty(), "{text:?}: {:?}", p.repairs);
        }
    }
    assert!(compared > 1500, "only {compared} texts compared");
}

fn ticket_schema() -> SchemaValidator {
    SchemaValidator::new(json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"$ref": "#/$defs/Status"},
            "priority": {"type": "integer"},
            "score": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "urgent": {"type": "boolean"},
            "note": {"type": ["string", "null"]}
        },
        "required": ["id", "status", "priority", "score", "tags", "urgent", "note"],
        "additionalProperties": false,
        "$defs": {"Status": {"type": "string", "enum": ["Open", "Closed", "OnHold"]}}
    }))
}

fn ticket(rng: &mut fastrand::Rng) -> Value {
    let words = [
        "alpha",
        "beta",
        "it's",
        "say \"hi\" now",
        "a, b",
        "x y",
        "Ünïcode",
        "7",
    ];
    let word = |rng: &mut fastrand::Rng| words[rng.usize(..words.len())].to_owned();
    let id = if rng.bool() {
        rng.u32(1..99999).to_string()
    } else {
        format!("T-{}", rng.u16(..))
    };
    let status = ["Open", "Closed", "OnHold"][rng.usize(0..3)];
    json!({
        "id": id,
        "status": status,
        "priority": rng.i32(-3..10),
        "score": (rng.f64() * 100.0).round() / 4.0,
        "tags": (0..rng.usize(1..4)).map(|_| word(rng)).collect::<Vec<_>>(),
        "urgent": rng.bool(),
        "note": if rng.bool() { Value::Null } else { Value::String(word(rng)) },
    })
}

/// Writes `value` the way a careless model might, each mistake one the parser documents; the
/// meaning is unchanged by every one of them.
fn mangle(rng: &mut fastrand::Rng, value: &Value) -> String {
    let Value::Object(map) = value else {
        unreachable!()
    };
    let mut out = String::from("{");
    let mut first = true;
    let mut members: Vec<(String, Value)> = map.clone().into_iter().collect();
    if rng.u8(0..4) == 0 {
        members.push(("reasoning".into(), json!("because")));
    }
    for (k, v) in members {
        if !first {
            out.push_str(", ");
        }
        first = false;
        if rng.bool() {
            out.push_str(&k);
        } else {
            out.push_str(&format!("\"{k}\""));
        }
        out.push_str(": ");
        out.push_str(&mangle_value(rng, &k, &v));
    }
    if rng.u8(0..3) == 0 {
        out.push(',');
    }
    out.push('}');
    match rng.u8(0..4) {
        0 => format!("Sure! Here is the ticket:\n```json\n{out}\n```"),
        1 => format!("The result is {out} as requested."),
        _ => out,
    }
}

fn mangle_value(rng: &mut fastrand::Rng, key: &str, v: &Value) -> String {
    match v {
        Value::String(s) if key == "status" => match rng.u8(0..4) {
            0 => s.clone(),
            1 => format!("\"  {}  \"", s.to_lowercase()),
            2 => format!("'{}'", s.to_uppercase()),
            _ => serde_json::to_string(s).unwrap(),
        },
        Value::String(s) if key == "id" && s.parse::<u32>().is_ok() && rng.bool() => s.clone(),
        Value::String(s) if !s.contains('\'') && rng.u8(0..3) == 0 => format!("'{s}'"),
        Value::String(s) if s.contains('"') && rng.bool() => format!("\"{s}\""),
        Value::Number(n) if rng.u8(0..3) == 0 => format!("\"{n}\""),
        Value::Bool(b) if rng.bool() => if *b { "True" } else { "False" }.to_owned(),
        Value::Null if rng.bool() => "None".to_owned(),
        Value::Array(items) if items.len() == 1 && rng.u8(0..3) == 0 => {
            serde_json::to_string(&items[0]).unwrap()
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(|i| mangle_value(rng, "", i)).collect();
            let trailing = if rng.u8(0..3) == 0 { "," } else { "" };
            format!("[{}{trailing}]", parts.join(", "))
        }
        other => serde_json::to_string(other).unwrap(),
    }
}

/// Whether a repair is one the schema guides (so the value it gives must fit the schema).
fn schema_guided(r: &Repair) -> bool {
    r.kind().is_schema_guided()
}

/// Zero wrong values: a mangled answer is read back as exactly the value that was mangled, or
/// rejected (not read, or read as a value that breaks the schema, which the engine rejects).
/// And a value with a schema-guided repair always fits the schema.
#[test]
fn a_mangled_answer_is_the_meant_value_or_rejected() {
    let schema = ticket_schema();
    let mut rng = fastrand::Rng::with_seed(99);
    let (mut recovered, mut total) = (0, 0);
    for _ in 0..SEEDS * 2 {
        let meant = ticket(&mut rng);
        assert!(schema.is_valid(&meant), "{meant}");
        let text = mangle(&mut rng, &meant);
        total += 1;
        let Ok(p) = parse(&text, &schema, &ParseLimits::default()) else {
            continue;
        };
        if p.repairs.iter().any(schema_guided) {
            assert!(schema.is_valid(&p.value), "{text}\n→ {}", p.value);
        }
        if schema.is_valid(&p.value) {
            assert_eq!(p.value, meant, "a wrong value from {text}");
            recovered += 1;
        }
    }
    // The test must be able to fail: most mangled answers are recovered.
    assert!(recovered * 100 >= total * 95, "{recovered} of {total}");
}

/// A repaired value always fits the schema, for arbitrary text too: random JSON-ish text against
/// the ticket schema never gives a schema-guided repair on a value that does not fit.
#[test]
fn a_repaired_value_always_fits_the_schema() {
    let schema = ticket_schema();
    let mut rng = fastrand::Rng::with_seed(5);
    for _ in 0..SEEDS * 2 {
        let meant = ticket(&mut rng);
        let mut text = mangle(&mut rng, &meant);
        // Break it a little.
        for _ in 0..rng.usize(0..3) {
            if text.is_empty() {
                break;
            }
            let mut at = rng.usize(..text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert(at, [',', '"', ' ', 'x', '1', ':', '}'][rng.usize(0..7)]);
        }
        if let Ok(p) = parse(&text, &schema, &ParseLimits::default()) {
            if p.repairs.iter().any(schema_guided) {
                assert!(schema.is_valid(&p.value), "{text}\n→ {}", p.value);
            }
        }
    }
}
