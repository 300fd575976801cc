//! One test per repair, coercion and rejection.

use serde_json::json;

use super::*;

fn any() -> SchemaValidator {
    SchemaValidator::new(json!({}))
}

fn ok(text: &str) -> Parsed {
    ok_with(text, &any())
}

fn ok_with(text: &str, schema: &SchemaValidator) -> Parsed {
    match parse(text, schema, &ParseLimits::default()) {
        Ok(p) => p,
        Err(e) => panic!("{text:?} was rejected: {e}"),
    }
}

fn err(text: &str) -> ParseError {
    err_with(text, &any())
}

fn err_with(text: &str, schema: &SchemaValidator) -> ParseError {
    match parse(text, schema, &ParseLimits::default()) {
        Ok(p) => panic!("{text:?} was accepted as {}", p.value),
        Err(e) => e,
    }
}

fn path(p: &str) -> String {
    p.to_owned()
}

// Extraction.

#[test]
fn strict_json_needs_no_repair() {
    let p = ok(r#"  {"a": [1, 2.5, "x", true, null], "b": {"c": -3e2}}  "#);
    assert_eq!(
        p.value,
        json!({"a": [1, 2.5, "x", true, null], "b": {"c": -300.0}})
    );
    assert!(p.repairs.is_empty());
}

#[test]
fn a_bare_scalar_answer_is_read_strictly() {
    assert_eq!(ok("42").value, json!(42));
    assert_eq!(ok("\"yes\"").value, json!("yes"));
    assert_eq!(err("None of these apply."), ParseError::NoJson);
}

#[test]
fn extracts_from_a_fence() {
    let p = ok("Here you go:\n```json\n{\"a\": 1}\n```\nAnything else?");
    assert_eq!(p.value, json!({"a": 1}));
    assert_eq!(p.repairs, vec![Repair::ExtractedFromFence]);
}

#[test]
fn extracts_from_prose() {
    let p = ok("Sure! The answer is {\"a\": 1}. Hope that helps.");
    assert_eq!(p.value, json!({"a": 1}));
    assert_eq!(p.repairs, vec![Repair::ExtractedFromProse]);
}

#[test]
fn picks_the_candidate_that_fits_the_schema() {
    let schema = SchemaValidator::new(json!({
        "type": "object", "required": ["label"],
        "properties": {"label": {"type": "string"}}
    }));
    let text = "An example: ```json\n{\"name\": \"x\"}\n``` and my answer: {\"label\": \"ok\"}";
    let p = ok_with(text, &schema);
    assert_eq!(p.value, json!({"label": "ok"}));
    assert_eq!(p.repairs, vec![Repair::ExtractedFromProse]);
}

#[test]
fn prefers_the_unrepaired_candidate_on_a_tie() {
    let text = "First {'a': 1} then {\"a\": 2}";
    let p = ok(text);
    assert_eq!(p.value, json!({"a": 2}));
    assert_eq!(p.repairs, vec![Repair::ExtractedFromProse]);
}

#[test]
fn a_refusal_has_no_json() {
    assert_eq!(
        err("I'm sorry, but I can't help with that request."),
        ParseError::NoJson
    );
    assert_eq!(err("I can't [do that] for you."), ParseError::NoJson);
    assert_eq!(err(""), ParseError::NoJson);
}

#[test]
fn broken_json_is_invalid_not_missing() {
    assert!(matches!(err("{\"a\" 1}"), ParseError::Invalid(_)));
    assert!(matches!(err("[1 2]"), ParseError::Invalid(_)));
    assert!(matches!(err("{\"a\": NaN}"), ParseError::Invalid(_)));
    assert!(matches!(err("{\"a\": \"\\x\"}"), ParseError::Invalid(_)));
    assert!(matches!(err("{\"a\": 01}"), ParseError::Invalid(_)));
    assert!(matches!(err("{\"a\": 1e400}"), ParseError::Invalid(_)));
}

// Repairs.

#[test]
fn removes_trailing_commas() {
    let p = ok(r#"{"a": [1, 2,], "b": {"c": 1,},}"#);
    assert_eq!(p.value, json!({"a": [1, 2], "b": {"c": 1}}));
    assert_eq!(
        p.repairs,
        vec![
            Repair::RemovedTrailingComma { path: path("a") },
            Repair::RemovedTrailingComma { path: path("b") },
            Repair::RemovedTrailingComma { path: path("") },
        ]
    );
}

#[test]
fn removes_comments() {
    let p = ok("{\n  // the label\n  \"a\": 1, /* inline */ \"b\": [2 /* two */]\n}");
    assert_eq!(p.value, json!({"a": 1, "b": [2]}));
    assert_eq!(
        p.repairs,
        vec![
            Repair::RemovedComment { path: path("") },
            Repair::RemovedComment { path: path("") },
            Repair::RemovedComment { path: path("b") },
        ]
    );
}

#[test]
fn quotes_bare_keys() {
    let p = ok("{name: \"x\", inner: {$id: 1, snake_case2: 2}}");
    assert_eq!(
        p.value,
        json!({"name": "x", "inner": {"$id": 1, "snake_case2": 2}})
    );
    assert_eq!(
        p.repairs,
        vec![
            Repair::QuotedKey { path: path("name") },
            Repair::QuotedKey {
                path: path("inner")
            },
            Repair::QuotedKey {
                path: path("inner.$id")
            },
            Repair::QuotedKey {
                path: path("inner.snake_case2")
            },
        ]
    );
}

#[test]
fn converts_single_quotes() {
    let p = ok(r#"{'a': 'it\'s "fine"', "b": ['x']}"#);
    assert_eq!(p.value, json!({"a": "it's \"fine\"", "b": ["x"]}));
    assert_eq!(
        p.repairs,
        vec![
            Repair::ConvertedSingleQuotedKey { path: path("a") },
            Repair::ConvertedSingleQuotes { path: path("a") },
            Repair::ConvertedSingleQuotes { path: path("b[0]") },
        ]
    );
}

#[test]
fn replaces_python_literals() {
    let p = ok("{\"a\": True, \"b\": False, \"c\": [None]}");
    assert_eq!(p.value, json!({"a": true, "b": false, "c": [null]}));
    assert_eq!(
        p.repairs[2],
        Repair::ReplacedPythonLiteral {
            path: path("c[0]"),
            from: "None".into(),
            to: "null".into()
        }
    );
    assert_eq!(p.repairs.len(), 3);
}

#[test]
fn keeps_raw_line_breaks_in_strings() {
    let p = ok("{\"a\": \"line one\nline two\"}");
    assert_eq!(p.value, json!({"a": "line one\nline two"}));
    assert_eq!(
        p.repairs,
        vec![Repair::EscapedControlCharacter { path: path("a") }]
    );
}

#[test]
fn joins_surrogate_pairs_and_replaces_lone_ones() {
    let p = ok(r#"["\ud83d\ude00"]"#);
    assert_eq!(p.value, json!(["😀"]));
    assert!(p.repairs.is_empty());
    for text in [
        r#"["\ud83d"]"#,
        r#"["\ude00"]"#,
        r#"["\ud83d\u0041"]"#,
        r#"["\udbff\udbff"]"#,
    ] {
        let p = ok(text);
        assert!(
            p.value[0].as_str().unwrap().starts_with('\u{FFFD}'),
            "{text}"
        );
        assert_eq!(
            p.repairs,
            vec![Repair::ReplacedLoneSurrogate { path: path("[0]") }],
            "{text}"
        );
    }
}

#[test]
fn several_repairs_combine() {
    let p = ok("```json\n{label: 'positive', ok: True, // yes\n tags: ['a',],}\n```");
    assert_eq!(
        p.value,
        json!({"label": "positive", "ok": true, "tags": ["a"]})
    );
    assert_eq!(p.repairs[0], Repair::ExtractedFromFence);
    assert_eq!(p.repairs.len(), 10, "{:?}", p.repairs);
}

// Truncation.

#[test]
fn closes_a_cut_off_answer_after_complete_values() {
    let p = ok(r#"{"a": 1, "b": [1, 2,"#);
    assert_eq!(p.value, json!({"a": 1, "b": [1, 2]}));
    assert_eq!(
        p.repairs,
        vec![
            Repair::RemovedTrailingComma { path: path("b") },
            Repair::ClosedTruncated {
                closed: "]}".into()
            },
        ]
    );
    assert_eq!(
        ok(r#"{"a": 1, "b": [1, 2] "#).value,
        json!({"a": 1, "b": [1, 2]})
    );
    assert_eq!(ok(r#"{"a": "x", "b": {"#).value, json!({"a": "x", "b": {}}));
    assert_eq!(ok(r#"{"a": [true"#).value, json!({"a": [true]}));
    assert_eq!(ok("```json\n[\"a\", \"b\"").value, json!(["a", "b"]));
}

#[test]
fn rejects_a_value_cut_off_inside_a_string() {
    let e = err(r#"{"a": 1, "b": "hel"#);
    assert_eq!(
        e,
        ParseError::Truncated {
            cut: "a string".into()
        }
    );
    assert_eq!(err(r#"{"a": 1, "b": "hel\"#), e);
    assert_eq!(err(r#"{"a": 1, "b": "\ud83d\ude"#), e);
}

#[test]
fn a_complete_object_inside_a_cut_off_one_is_not_the_answer() {
    let e = err(r#"{"a": {"x": 1}, "b": [2, 3], "c": "hel"#);
    assert_eq!(
        e,
        ParseError::Truncated {
            cut: "a string".into()
        }
    );
    let e = err("```json\n{\"a\": {\"x\": 1}, \"b\": 12");
    assert_eq!(
        e,
        ParseError::Truncated {
            cut: "a number".into()
        }
    );
}

#[test]
fn rejects_a_value_cut_off_inside_a_number() {
    let e = ParseError::Truncated {
        cut: "a number".into(),
    };
    assert_eq!(err(r#"{"a": 1, "b": [1, 2"#), e);
    assert_eq!(err(r#"{"a": 1.5e"#), e);
    assert_eq!(err(r#"{"a": -"#), e);
}

#[test]
fn rejects_a_member_cut_off_before_its_value() {
    let e = ParseError::Truncated {
        cut: "a member before its value".into(),
    };
    assert_eq!(err(r#"{"a": 1, "b":"#), e);
    assert_eq!(err(r#"{"a": 1, "b""#), e);
    assert_eq!(err(r#"{"a": 1, b"#), e);
    assert_eq!(
        err(r#"{"a": 1, "b"#),
        ParseError::Truncated {
            cut: "a key".into()
        }
    );
    assert_eq!(
        err(r#"{"a": [tru"#),
        ParseError::Truncated {
            cut: "a literal".into()
        }
    );
}

// Coercion.

fn sentiment() -> SchemaValidator {
    // What schemars emits for a struct with an enum field, an `Option<u32>` and a `Vec<String>`.
    SchemaValidator::new(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Sentiment",
        "type": "object",
        "properties": {
            "label": {"$ref": "#/$defs/Label", "description": "The label."},
            "confidence": {"type": "number", "format": "double"},
            "stars": {"type": ["integer", "null"], "format": "uint32", "minimum": 0},
            "flagged": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "scores": {"type": "array", "items": {"type": "integer"}},
            "mood": {"anyOf": [{"$ref": "#/$defs/Mood"}, {"type": "null"}]}
        },
        "required": ["label", "confidence"],
        "$defs": {
            "Label": {"type": "string", "enum": ["Positive", "Neutral", "Negative"]},
            "Mood": {"oneOf": [
                {"type": "string", "const": "Happy", "description": "Glad."},
                {"type": "string", "const": "Sad", "description": "Not glad."}
            ]}
        }
    }))
}

#[test]
fn coerces_numbers_and_booleans_in_strings() {
    let p = ok_with(
        r#"{"label": "Positive", "confidence": "0.9", "stars": " 4 ", "flagged": "TRUE"}"#,
        &sentiment(),
    );
    assert_eq!(
        p.value,
        json!({"label": "Positive", "confidence": 0.9, "stars": 4, "flagged": true})
    );
    assert_eq!(
        p.repairs,
        vec![
            Repair::Coerced {
                path: path("confidence"),
                from: json!("0.9"),
                to: json!(0.9)
            },
            Repair::Coerced {
                path: path("flagged"),
                from: json!("TRUE"),
                to: json!(true)
            },
            Repair::Coerced {
                path: path("stars"),
                from: json!(" 4 "),
                to: json!(4)
            },
        ]
    );
}

#[test]
fn does_not_coerce_what_is_ambiguous() {
    let schema = sentiment();
    // Not integer syntax, not a number at all, not a boolean word.
    for text in [
        r#"{"label": "Positive", "confidence": 0.5, "stars": "4.5"}"#,
        r#"{"label": "Positive", "confidence": "high"}"#,
        r#"{"label": "Positive", "confidence": 0.5, "flagged": "yes"}"#,
    ] {
        let p = ok_with(text, &schema);
        assert!(p.repairs.is_empty(), "{text}: {:?}", p.repairs);
        assert!(!schema.is_valid(&p.value));
    }
    // A union where the value already fits a branch is left alone.
    let union = SchemaValidator::new(json!({"anyOf": [{"type": "integer"}, {"type": "string"}]}));
    assert!(
        ok_with(r#"["1"]"#, &list_of(union.schema()))
            .repairs
            .is_empty()
    );
    // Where two branches each fit after a coercion of the same cost, nothing is chosen.
    let two =
        json!({"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]});
    assert!(matches!(
        err_with(r#"["1"]"#, &list_of(&two)),
        ParseError::Ambiguous { .. }
    ));
}

fn list_of(items: &serde_json::Value) -> SchemaValidator {
    SchemaValidator::new(json!({"type": "array", "items": items}))
}

#[test]
fn a_union_coerces_towards_the_one_branch_that_fits() {
    let union = json!({"anyOf": [{"type": "integer"}, {"type": "boolean"}]});
    let p = ok_with(r#"["1", "true"]"#, &list_of(&union));
    assert_eq!(p.value, json!([1, true]));
    assert_eq!(p.repairs.len(), 2);
}

#[test]
fn matches_enum_case_through_refs() {
    let p = ok_with(
        r#"{"label": "positive", "confidence": 1, "mood": "HAPPY"}"#,
        &sentiment(),
    );
    assert_eq!(
        p.value,
        json!({"label": "Positive", "confidence": 1, "mood": "Happy"})
    );
    assert_eq!(
        p.repairs,
        vec![
            Repair::MatchedEnumCase {
                path: path("label"),
                from: "positive".into(),
                to: "Positive".into()
            },
            Repair::MatchedEnumCase {
                path: path("mood"),
                from: "HAPPY".into(),
                to: "Happy".into()
            },
        ]
    );
}

#[test]
fn leaves_an_enum_alone_when_case_matches_twice() {
    let schema = SchemaValidator::new(json!({"enum": ["On", "ON", "off"]}));
    let p = ok_with(
        r#"["on"]"#,
        &SchemaValidator::new(json!({"type": "array", "items": schema.schema()})),
    );
    assert_eq!(p.value, json!(["on"]));
    assert_eq!(p.repairs, vec![]);
}

#[test]
fn wraps_a_lone_value_in_a_list() {
    let p = ok_with(
        r#"{"label": "Neutral", "confidence": 0.5, "tags": "late", "scores": "3"}"#,
        &sentiment(),
    );
    assert_eq!(p.value["tags"], json!(["late"]));
    assert_eq!(p.value["scores"], json!([3]));
    assert_eq!(
        p.repairs,
        vec![
            Repair::WrappedInArray {
                path: path("scores")
            },
            Repair::Coerced {
                path: path("scores[0]"),
                from: json!("3"),
                to: json!(3)
            },
            Repair::WrappedInArray { path: path("tags") },
        ]
    );
}

#[test]
fn a_valid_value_is_never_coerced() {
    let schema =
        SchemaValidator::new(json!({"type": "object", "properties": {"n": {"type": "integer"}}}));
    let p = ok_with(r#"{"n": 3, "s": "3"}"#, &schema);
    assert!(p.repairs.is_empty());
}

#[test]
fn a_value_that_still_does_not_fit_is_returned_for_validation() {
    let schema = sentiment();
    let p = ok_with(r#"{"label": "Great"}"#, &schema);
    assert_eq!(p.value, json!({"label": "Great"}));
    assert!(!schema.errors(&p.value).is_empty());
}

#[test]
fn a_ref_cycle_does_not_loop() {
    let schema = SchemaValidator::new(json!({
        "$ref": "#/$defs/A",
        "$defs": {"A": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]}}
    }));
    let _ = parse(r#"{"a": "1"}"#, &schema, &ParseLimits::default());
    let schema = SchemaValidator::new(json!({"$ref": "#"}));
    let _ = parse(r#"{"a": "1"}"#, &schema, &ParseLimits::default());
}

// Closed objects.

fn closed() -> SchemaValidator {
    SchemaValidator::new(json!({
        "type": "object",
        "properties": {
            "label": {"type": "string"},
            "inner": {"$ref": "#/$defs/Inner"}
        },
        "required": ["label"],
        "additionalProperties": false,
        "$defs": {"Inner": {
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "additionalProperties": false
        }}
    }))
}

#[test]
fn a_key_a_closed_object_does_not_have_is_dropped_and_recorded() {
    let p = ok_with(
        r#"{"label": "yes", "note": "extra", "inner": {"n": 1, "why": "x"}}"#,
        &closed(),
    );
    assert_eq!(p.value, json!({"label": "yes", "inner": {"n": 1}}));
    assert_eq!(
        p.repairs,
        [
            Repair::DroppedUnknownKey {
                path: path(""),
                key: "note".into()
            },
            Repair::DroppedUnknownKey {
                path: path("inner"),
                key: "why".into()
            },
        ]
    );
    assert_eq!(
        p.repairs[0].to_string(),
        "dropped the key \"note\" from the root, which the schema does not have"
    );
}

#[test]
fn an_open_object_keeps_unknown_keys() {
    let open = SchemaValidator::new(json!({
        "type": "object",
        "properties": {"label": {"type": "string"}}
    }));
    let p = ok_with(r#"{"label": "yes", "note": "extra"}"#, &open);
    assert_eq!(p.value, json!({"label": "yes", "note": "extra"}));
    assert!(p.repairs.is_empty());
}
