//! The lenient parser through its public API: limits, hostile input, properties, and schemas
//! as schemars really emits them.

use harness_core::output::SchemaValidator;
use harness_core::output::parse::{HARD_MAX_DEPTH, ParseError, ParseLimits, Parsed, Repair, parse};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

fn any() -> SchemaValidator {
    SchemaValidator::new(json!({}))
}

fn ok(text: &str) -> Parsed {
    match parse(text, &any(), &ParseLimits::default()) {
        Ok(p) => p,
        Err(e) => panic!("{text:?} was rejected: {e}"),
    }
}

/// The mood of a review.
#[derive(Debug, Deserialize, JsonSchema, PartialEq)]
#[allow(dead_code)] // Only the schema is used.
enum Mood {
    /// Glad.
    Happy,
    /// Not glad.
    Sad,
}

#[derive(Debug, Deserialize, JsonSchema, PartialEq)]
enum Label {
    Positive,
    Neutral,
    Negative,
}

#[derive(Debug, Deserialize, JsonSchema, PartialEq)]
struct Aspect {
    name: String,
    score: i32,
}

/// A review's sentiment.
#[derive(Debug, Deserialize, JsonSchema, PartialEq)]
struct Sentiment {
    /// The label.
    label: Label,
    confidence: f64,
    stars: Option<u8>,
    mood: Option<Mood>,
    tags: Vec<String>,
    aspects: Vec<Aspect>,
    flagged: bool,
}

fn sentiment() -> SchemaValidator {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<Sentiment>();
    SchemaValidator::new(serde_json::to_value(schema).unwrap())
}

#[test]
fn coerces_through_a_schemars_schema() {
    let schema = sentiment();
    assert!(
        schema.schema().get("$defs").is_some(),
        "{}",
        schema.schema()
    );
    let text = r#"Sure! Here is the JSON:
```json
{
  label: 'positive',     // lower case
  confidence: "0.92",
  stars: "4",
  mood: "happy",
  tags: "shipping",
  aspects: {name: "speed", score: "-2"},
  flagged: "False",
}
```"#;
    let p = parse(text, &schema, &ParseLimits::default()).unwrap();
    assert!(
        schema.is_valid(&p.value),
        "{}: {:?}",
        p.value,
        schema.errors(&p.value)
    );
    let s: Sentiment = serde_json::from_value(p.value.clone()).unwrap();
    assert_eq!(
        s,
        Sentiment {
            label: Label::Positive,
            confidence: 0.92,
            stars: Some(4),
            mood: Some(Mood::Happy),
            tags: vec!["shipping".into()],
            aspects: vec![Aspect {
                name: "speed".into(),
                score: -2
            }],
            flagged: false,
        }
    );
    let shown: Vec<String> = p.repairs.iter().map(ToString::to_string).collect();
    for expected in [
        "extracted the JSON from a code fence",
        "matched `label` \"positive\" to the enum value \"Positive\" (case or spacing differs)",
        "matched `mood` \"happy\" to the enum value \"Happy\" (case or spacing differs)",
        "coerced `confidence` from \"0.92\" to 0.92, the type the schema asks for",
        "coerced `stars` from \"4\" to 4, the type the schema asks for",
        "coerced `flagged` from \"False\" to false, the type the schema asks for",
        "coerced `aspects[0].score` from \"-2\" to -2, the type the schema asks for",
        "wrapped the single value at `aspects` in a list, as the schema asks for an array",
        "wrapped the single value at `tags` in a list, as the schema asks for an array",
        "removed a trailing comma in the root",
        "quoted the bare key of `label`",
        "read the single-quoted string at `label` as a JSON string",
        "removed a comment in the root",
    ] {
        assert!(
            shown.iter().any(|s| s == expected),
            "missing {expected:?} in {shown:#?}"
        );
    }
}

#[test]
fn a_value_that_does_not_fit_is_left_for_validation() {
    let schema = sentiment();
    let p = parse(
        r#"{"label": "Great", "confidence": 2}"#,
        &schema,
        &ParseLimits::default(),
    )
    .unwrap();
    assert!(p.repairs.is_empty());
    assert!(!schema.errors(&p.value).is_empty());
}

// Limits.

#[test]
fn too_large_is_rejected_before_reading() {
    let limits = ParseLimits {
        max_bytes: 10,
        max_depth: 64,
        ..ParseLimits::DEFAULT
    };
    assert_eq!(
        parse("{\"a\": \"0123456789\"}", &any(), &limits),
        Err(ParseError::TooLarge { len: 19, max: 10 })
    );
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    for text in [
        "[".repeat(100_000),
        "[".repeat(100_000) + &"]".repeat(100_000),
        "{\"a\":".repeat(100_000),
        format!("prose {} more", "{\"a\": [".repeat(50_000)),
    ] {
        let limits = ParseLimits {
            max_bytes: 10 << 20,
            max_depth: 64,
            ..ParseLimits::DEFAULT
        };
        assert_eq!(
            parse(&text, &any(), &limits),
            Err(ParseError::TooDeep { max: 64 })
        );
    }
}

#[test]
fn the_depth_limit_is_capped() {
    let limits = ParseLimits {
        max_bytes: 1 << 20,
        max_depth: usize::MAX,
        ..ParseLimits::DEFAULT
    };
    let text = "[".repeat(10_000) + &"]".repeat(10_000);
    assert_eq!(
        parse(&text, &any(), &limits),
        Err(ParseError::TooDeep {
            max: HARD_MAX_DEPTH
        })
    );
    let ok = "[".repeat(HARD_MAX_DEPTH) + &"]".repeat(HARD_MAX_DEPTH);
    assert!(parse(&ok, &any(), &limits).is_ok());
}

#[test]
fn ten_megabytes_are_read_in_linear_time() {
    let limits = ParseLimits {
        max_bytes: 11 << 20,
        max_depth: 64,
        ..ParseLimits::DEFAULT
    };
    let big = "x".repeat(10 << 20);
    let text = format!("{{\"a\": \"{big}\"}}");
    let p = parse(&text, &any(), &limits).unwrap();
    assert_eq!(p.value["a"].as_str().map(str::len), Some(10 << 20));

    let items = "123456, ".repeat((10 << 20) / 8);
    let p = parse(&format!("Here: [{items}"), &any(), &limits).unwrap();
    assert_eq!(p.value.as_array().map(Vec::len), Some((10 << 20) / 8));
    assert_eq!(
        p.repairs.last(),
        Some(&Repair::ClosedTruncated { closed: "]".into() })
    );
    let prose = "blah [ { ' \" ".repeat((10 << 20) / 12);
    let _ = parse(&prose, &any(), &limits);
}

#[test]
fn odd_text_never_panics() {
    for text in [
        "\u{feff}{\"a\": 1}",
        "```",
        "``````",
        "```json",
        "{\"a\": \"\\u",
        "{\"a\": \"\\uZZZZ\"}",
        "[\"\\ud800\\u\"]",
        "/*",
        "// only a comment",
        "{/*",
        "[1, /* cut",
        "{'",
        "{\"é\": 'ü', ключ: 1}",
        "[-]",
        "[1.]",
        "[.5]",
        "}{",
        "][",
        "{\"a\":1}}",
        "\0\u{1}\u{7f}",
    ] {
        let _ = parse(text, &any(), &ParseLimits::default());
        let _ = parse(text, &sentiment(), &ParseLimits::default());
    }
}

#[test]
fn matches_serde_json_on_strict_json() {
    // A small property-style check: every value serde_json writes is read back unchanged and
    // without repairs.
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..300 {
        let v = random_value(&mut rng, 0);
        for text in [
            serde_json::to_string(&v).unwrap(),
            serde_json::to_string_pretty(&v).unwrap(),
        ] {
            let p = ok(&text);
            assert_eq!(p.value, v, "{text}");
            assert!(p.repairs.is_empty(), "{text}: {:?}", p.repairs);
        }
    }
}

/// The kind of random JSON a property test draws: how deep, which characters in strings, and
/// the ranges of numbers.
struct Shape {
    /// Below this depth, only scalars.
    max_depth: usize,
    chars: &'static [char],
    max_len: usize,
    wide_ints: bool,
    /// A float is `f64() * scale + offset`.
    scale: f64,
    offset: f64,
}

/// Any JSON, with strings full of escapes, quotes and brackets.
const ANY: Shape = Shape {
    max_depth: 4,
    chars: &['a', 'é', '"', '\\', '\n', '\u{1}', '😀', '}', '\'', '/'],
    max_len: 8,
    wide_ints: true,
    scale: 1e6,
    offset: -5e5,
};

/// Strings without quotes, commas, brackets or literal words.
const PLAIN: Shape = Shape {
    max_depth: 3,
    chars: &['x', 'y', 'é', '😀', ' ', 'Z'],
    max_len: 6,
    wide_ints: false,
    scale: 100.0,
    offset: 0.0,
};

fn shaped_value(shape: &Shape, rng: &mut fastrand::Rng, depth: usize) -> Value {
    let kind = if depth > shape.max_depth {
        rng.u8(0..5)
    } else {
        rng.u8(0..7)
    };
    match kind {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 if shape.wide_ints => json!(rng.i64(..)),
        2 => json!(rng.i32(..)),
        3 => json!(rng.f64() * shape.scale + shape.offset),
        4 => Value::String(
            (0..rng.usize(0..shape.max_len))
                .map(|_| shape.chars[rng.usize(..shape.chars.len())])
                .collect(),
        ),
        5 => Value::Array(
            (0..rng.usize(0..4))
                .map(|_| shaped_value(shape, rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.usize(0..4))
                .map(|i| (format!("k{i}"), shaped_value(shape, rng, depth + 1)))
                .collect(),
        ),
    }
}

fn random_value(rng: &mut fastrand::Rng, depth: usize) -> Value {
    shaped_value(&ANY, rng, depth)
}

#[test]
fn truncating_strict_json_never_invents_a_scalar() {
    // Property: cutting a serialised value anywhere either is rejected, or gives a value whose
    // every string and number appears in the original (closing only drops tails).
    // A bare scalar answer is taken as it is: truncation concerns structures.
    let mut rng = fastrand::Rng::with_seed(11);
    for _ in 0..100 {
        let v = json!([random_value(&mut rng, 1), {"k": random_value(&mut rng, 1)}]);
        let text = serde_json::to_string(&v).unwrap();
        for cut in 1..text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            if let Ok(p) = parse(&text[..cut], &any(), &ParseLimits::default()) {
                let mut original = Vec::new();
                scalars(&v, &mut original);
                let mut got = Vec::new();
                scalars(&p.value, &mut got);
                for s in got {
                    assert!(original.contains(&s), "{:?} invented {s}", &text[..cut]);
                }
            }
        }
    }
}

fn scalars(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| scalars(i, out)),
        Value::Object(map) => map.iter().for_each(|(k, i)| {
            out.push(Value::String(k.clone()));
            scalars(i, out);
        }),
        other => out.push(other.clone()),
    }
}

/// Inputs from fuzzing (`fuzz/`), kept so they stay fixed. No campaign has crashed the parser
/// yet; these are corner cases the fuzzer's corpus exercises, checked here without nightly.
#[test]
fn fuzz_regressions() {
    let schema = sentiment();
    for text in [
        "[\"\\ud800\\ud800\\udc00\"]",
        "{\"a\":[{\"b\":[{\"c\":[1,",
        "```\n```json\n{'a'\n```",
        "{a:'\\u0000\u{1}',b:[True,None,//\n/*",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "{\"label\":\"POSITIVE\",\"confidence\":\"1e-1\",\"tags\":\"\",\"items\":7}",
        "\u{feff}\u{a0}{\"a\":-0,\"b\":1E+2,\"c\":0.5e-0}\u{a0}",
        "{\"\":{\"\":{\"\":{\"\":\"\\/\\b\\f\\n\\r\\t\"}}}}",
        "[{]}[{}]",
        "'{\"a\": 1}'",
    ] {
        let _ = parse(text, &schema, &ParseLimits::default());
        let _ = parse(
            text,
            &any(),
            &ParseLimits {
                max_bytes: 1 << 20,
                max_depth: 8,
                ..ParseLimits::DEFAULT
            },
        );
    }
}

#[test]
fn every_repair_gives_back_the_value_the_model_meant() {
    // Property: write a random value as JSON, then make the mistakes models make (trailing
    // commas, comments, Python literals, bare keys, single quotes) all at once; the parser must
    // read back the same value, reporting repairs. Strings avoid quotes and literal words so the
    // text edits stay outside them.
    let mut rng = fastrand::Rng::with_seed(23);
    for _ in 0..300 {
        let v = json!({"k0": plain_value(&mut rng, 0), "k1": [plain_value(&mut rng, 1)]});
        let strict = serde_json::to_string_pretty(&v).unwrap();
        let mut sloppy = String::new();
        let mut prev = ' ';
        for c in strict.chars() {
            if (c == ']' || c == '}') && !matches!(prev, '[' | '{') {
                sloppy.push_str(", // trailing\n");
            }
            sloppy.push(c);
            if c == ',' {
                sloppy.push_str(" /* next */");
            }
            if !c.is_whitespace() {
                prev = c;
            }
        }
        for i in 0..4 {
            sloppy = sloppy.replace(&format!("\"k{i}\":"), &format!("k{i}:"));
        }
        let sloppy = sloppy
            .replace("true", "True")
            .replace("false", "False")
            .replace("null", "None")
            .replace('"', "'");
        let p = ok(&sloppy);
        assert_eq!(p.value, v, "{sloppy}");
        assert!(!p.repairs.is_empty());
        assert!(
            p.repairs
                .iter()
                .all(|r| !matches!(r, Repair::ClosedTruncated { .. })),
            "{sloppy}"
        );
    }
}

/// A random value whose strings hold no quotes, commas, brackets or literal words.
fn plain_value(rng: &mut fastrand::Rng, depth: usize) -> Value {
    shaped_value(&PLAIN, rng, depth)
}
