//! One test per failure class of issue #12: the exact one-line input, why its reading is the only
//! one (the property, stated in each test's doc), and a counter-example that must stay rejected.

use harness_core::output::SchemaValidator;
use harness_core::output::parse::{
    Outcome, ParseError, ParseLimits, Parsed, Repair, RepairKind, RepairSet, explain, parse,
};
use serde_json::{Value, json};

fn schema(s: Value) -> SchemaValidator {
    SchemaValidator::new(s)
}

fn ok(text: &str, schema: &SchemaValidator) -> Parsed {
    match parse(text, schema, &ParseLimits::default()) {
        Ok(p) => {
            assert!(
                schema.is_valid(&p.value) || p.repairs.is_empty(),
                "{text:?}: a repaired value must fit: {}",
                p.value
            );
            p
        }
        Err(e) => panic!("{text:?} was rejected: {e}"),
    }
}

/// The value `text` gives, or a rejection; a value that breaks the schema counts as rejected
/// (the engine does not accept it).
fn accepted(text: &str, schema: &SchemaValidator) -> Option<Value> {
    parse(text, schema, &ParseLimits::default())
        .ok()
        .filter(|p| schema.is_valid(&p.value))
        .map(|p| p.value)
}

fn err(text: &str, schema: &SchemaValidator) -> ParseError {
    match parse(text, schema, &ParseLimits::default()) {
        Ok(p) => panic!("{text:?} was accepted as {}", p.value),
        Err(e) => e,
    }
}

fn kinds(p: &Parsed) -> Vec<RepairKind> {
    p.repairs.iter().map(Repair::kind).collect()
}

fn list_of_objects() -> SchemaValidator {
    schema(json!({
        "type": "array",
        "items": {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"]}
    }))
}

/// Several top-level values where the schema wants a list. Unique: nothing but whitespace or
/// commas stands between them, so every value is part of the answer, in the order given; the only
/// value of the schema's type holding all of them is the list of them.
#[test]
fn several_top_level_values_become_the_list() {
    let p = ok(r#"{"k": "v1"} {"k": "v2"}"#, &list_of_objects());
    assert_eq!(p.value, json!([{"k": "v1"}, {"k": "v2"}]));
    assert_eq!(p.repairs, vec![Repair::CollectedValues { count: 2 }]);
    // JSON Lines after a line of prose.
    let p = ok(
        "Here they are:\n{\"k\": \"a\"},\n{\"k\": \"b\"}\n{\"k\": \"c\"}",
        &list_of_objects(),
    );
    assert_eq!(p.value, json!([{"k": "a"}, {"k": "b"}, {"k": "c"}]));
    assert_eq!(
        kinds(&p),
        vec![RepairKind::ExtractedFromProse, RepairKind::CollectedValues]
    );
}

/// Counter-examples: a cut-off last value is not dropped; values with prose between them are
/// separate readings (an example and an answer?), which tie; for an object schema, two objects
/// are two readings.
#[test]
fn several_values_that_are_not_one_list_are_rejected() {
    assert!(matches!(
        err(r#"{"k": "v1"} {"k": "v"#, &list_of_objects()),
        ParseError::Truncated { .. }
    ));
    assert!(matches!(
        err(
            r#"For example {"k": "v0"}; my answer: {"k": "v1"}"#,
            &list_of_objects()
        ),
        ParseError::Ambiguous { .. }
    ));
    let object = schema(json!({"type": "object", "properties": {"k": {"type": "string"}}}));
    let e = err(r#"{"k": "v1"} {"k": "v2"}"#, &object);
    assert_eq!(
        e.to_string(),
        r#"the answer can be read two ways that fit equally well, {"k":"v1"} (in the prose) and {"k":"v2"} (in the prose); reply with one JSON value"#
    );
    // The same value twice is one reading.
    assert_eq!(
        ok(r#"{"k": "v1"} {"k": "v1"}"#, &object).value,
        json!({"k": "v1"})
    );
}

/// A number where the schema wants a string. Unique: an integer has one JSON spelling (no leading
/// zeros, no exponent, no fraction), so its digits are exactly what the model wrote.
#[test]
fn an_integer_where_a_string_is_wanted_becomes_its_digits() {
    let strings = schema(json!({"type": "array", "items": {"type": "string"}}));
    let p = ok("[1, 2, 3]", &strings);
    assert_eq!(p.value, json!(["1", "2", "3"]));
    assert_eq!(kinds(&p), vec![RepairKind::Coerced; 3]);
    let zip = schema(json!({
        "type": "object", "properties": {"zip": {"type": "string"}}, "required": ["zip"]
    }));
    let p = ok(r#"{"zip": 5531}"#, &zip);
    assert_eq!(p.value, json!({"zip": "5531"}));
    assert_eq!(
        p.repairs,
        vec![Repair::Coerced {
            path: "zip".into(),
            from: json!(5531),
            to: json!("5531")
        }]
    );
}

/// Counter-examples: a fraction or an exponent is not spelled back as written (`1.50` reads as
/// 1.5, `1e3` as 1000.0), and a leading zero (`05531`) is not JSON.
#[test]
fn a_number_whose_spelling_is_lost_stays_rejected() {
    let price = schema(json!({
        "type": "object", "properties": {"p": {"type": "string"}}, "required": ["p"]
    }));
    for text in [r#"{"p": 1.50}"#, r#"{"p": 1e3}"#, r#"{"p": 05531}"#] {
        assert_eq!(accepted(text, &price), None, "{text}");
    }
}

/// Unquoted single-word values. Unique: one word, ended by `,` or the closing bracket, where a
/// value must stand, is no JSON value, and as a string it is exactly the characters written.
#[test]
fn a_bare_word_value_is_a_string() {
    let any = schema(json!({}));
    let p = ok("{a: b}", &any);
    assert_eq!(p.value, json!({"a": "b"}));
    assert_eq!(
        kinds(&p),
        vec![RepairKind::QuotedKey, RepairKind::QuotedBareValue]
    );
    let p = ok(r#"{"status": active}"#, &any);
    assert_eq!(p.value, json!({"status": "active"}));
    assert_eq!(
        p.repairs,
        vec![Repair::QuotedBareValue {
            path: "status".into(),
            word: "active".into()
        }]
    );
}

/// Counter-examples: two words (one string, or a missing comma?), a literal in another case
/// (`NULL`: null or the word?), `NaN`, a word the answer ends in (cut off), and words in brackets
/// in prose ("[citation needed]", "[TODO]").
#[test]
fn bare_words_that_may_mean_something_else_are_rejected() {
    let any = schema(json!({}));
    for text in [
        r#"{"status": in progress}"#,
        r#"{"status": NULL}"#,
        r#"{"status": TRUE}"#,
        r#"{"n": NaN}"#,
    ] {
        assert!(matches!(err(text, &any), ParseError::Invalid(_)), "{text}");
    }
    assert!(matches!(
        err(r#"{"status": activ"#, &any),
        ParseError::Truncated { .. }
    ));
    let strings = schema(json!({"type": "array", "items": {"type": "string"}}));
    assert!(err("I am not sure [TODO] here.", &strings) == ParseError::NoJson);
}

/// An unescaped quote inside a string. Unique: what follows the quote (a letter, not `,`, `:`,
/// a bracket or another string) cannot follow the end of a string, so the quote cannot end it;
/// the string ends at the first quote that can.
#[test]
fn a_quote_that_cannot_end_a_string_is_part_of_it() {
    let any = schema(json!({}));
    let p = ok(r#"{"text": "somet"string with quotes"}"#, &any);
    assert_eq!(p.value, json!({"text": "somet\"string with quotes"}));
    assert_eq!(
        p.repairs,
        vec![Repair::EscapedInnerQuote {
            path: "text".into()
        }]
    );
    let p = ok(r#"{"q": "she said "hi" to me", "n": 1}"#, &any);
    assert_eq!(p.value, json!({"q": "she said \"hi\" to me", "n": 1}));
    // A bare answer for a string.
    let string = schema(json!({"type": "string"}));
    assert_eq!(
        ok(r#""somet"string with quotes""#, &string).value,
        json!("somet\"string with quotes")
    );
    // An apostrophe in a single-quoted string.
    assert_eq!(
        ok("{'text': 'it's fine'}", &any).value,
        json!({"text": "it's fine"})
    );
}

/// Counter-example: two list items that could be one string (`["a" "b"]`: a missing comma, or
/// one string `a" "b`?), and a quote followed by `:`.
#[test]
fn a_quote_before_another_string_is_not_guessed() {
    let strings = schema(json!({"type": "array", "items": {"type": "string"}}));
    assert!(matches!(
        err(r#"["a" "b"]"#, &strings),
        ParseError::Invalid(_)
    ));
    assert!(matches!(
        err(r#"{"a": "b": "c"}"#, &schema(json!({}))),
        ParseError::Invalid(_)
    ));
}

fn digits() -> SchemaValidator {
    schema(json!({"type": "string", "enum": ["ONE", "TWO"]}))
}

/// Enum values with spacing or another case, and bare top-level answers. Unique: exactly one
/// allowed value equals the answer once surrounding whitespace, then case, is ignored; a bare
/// answer is read only when the schema's root is one scalar type, and the whole answer is one
/// line without JSON syntax.
#[test]
fn enum_values_and_bare_answers_are_matched() {
    let p = ok(r#""  TWO  ""#, &digits());
    assert_eq!(p.value, json!("TWO"));
    assert_eq!(kinds(&p), vec![RepairKind::MatchedEnumCase]);
    let p = ok("TWO", &digits());
    assert_eq!(p.value, json!("TWO"));
    assert_eq!(kinds(&p), vec![RepairKind::ReadBareAnswer]);
    assert_eq!(ok("two", &digits()).value, json!("TWO"));
    assert_eq!(
        ok("True", &schema(json!({"type": "boolean"}))).value,
        json!(true)
    );
    assert_eq!(
        ok("hello", &schema(json!({"type": "string"}))).value,
        json!("hello")
    );
    assert_eq!(
        ok("12.5", &schema(json!({"type": "number"}))).value,
        json!(12.5)
    );
    // A constant, and an enum inside an object.
    let c = schema(json!({"type": "object", "properties": {"v": {"const": "Yes"}}}));
    assert_eq!(ok(r#"{"v": " yes "}"#, &c).value, json!({"v": "Yes"}));
}

/// Counter-examples: two values that differ only in case, a value with other text, prose over
/// several lines, `None` for a string (null or the word?), `yes` for a boolean, and a bare word
/// for an object.
#[test]
fn answers_that_match_no_single_value_are_rejected() {
    let twice = schema(json!({"enum": ["One", "ONE"]}));
    assert_eq!(accepted(r#"" one ""#, &twice), None);
    assert_eq!(accepted(r#""TWO.""#, &digits()), None);
    assert_eq!(accepted("The answer is:\nTWO", &digits()), None);
    let optional = schema(json!({"type": ["string", "null"]}));
    assert_eq!(accepted("None", &optional), None);
    assert_eq!(accepted("yes", &schema(json!({"type": "boolean"}))), None);
    assert_eq!(
        err("hello", &schema(json!({"type": "object"}))),
        ParseError::NoJson
    );
}

fn shapes() -> SchemaValidator {
    schema(json!({
        "anyOf": [
            {
                "type": "object",
                "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}},
                "required": ["kind", "r"], "additionalProperties": false
            },
            {
                "type": "object",
                "properties": {"kind": {"const": "square"}, "side": {"type": "number"}},
                "required": ["kind", "side"], "additionalProperties": false
            }
        ]
    }))
}

/// A union of two object schemas where coercion makes the value fit one branch. Unique: each
/// branch is tried on a copy; exactly one fits after coercion.
#[test]
fn a_union_takes_the_one_branch_coercion_fits() {
    let p = ok(r#"{"kind": "circle", "r": "2.5"}"#, &shapes());
    assert_eq!(p.value, json!({"kind": "circle", "r": 2.5}));
    assert_eq!(kinds(&p), vec![RepairKind::Coerced]);
    let p = ok(r#"{"kind": "Square", "side": 3}"#, &shapes());
    assert_eq!(p.value, json!({"kind": "square", "side": 3}));
}

/// Counter-example: two branches that each fit after one coercion are two readings; the parser
/// names both.
#[test]
fn a_union_two_branches_fit_is_rejected_naming_both() {
    let s = schema(json!({
        "type": "object",
        "properties": {"v": {"anyOf": [
            {"type": "integer"},
            {"type": "array", "items": {"type": "string"}}
        ]}}
    }));
    let e = err(r#"{"v": "1"}"#, &s);
    assert_eq!(
        e.to_string(),
        "the answer can be read two ways that fit equally well, 1 at `v` and [\"1\"] at `v`; reply with one JSON value"
    );
}

/// Keys that are numbers or `null` in a map. Unique: a key is a string; the key's text as written
/// is the only string it can be.
#[test]
fn number_and_null_keys_are_their_text() {
    let map = schema(json!({"type": "object", "additionalProperties": {"type": "string"}}));
    let p = ok(r#"{5: "b", null: "n"}"#, &map);
    assert_eq!(p.value, json!({"5": "b", "null": "n"}));
    assert_eq!(kinds(&p), vec![RepairKind::QuotedKey; 2]);
}

/// Counter-examples: a missing key, a missing colon.
#[test]
fn a_member_without_a_key_or_colon_is_rejected() {
    let any = schema(json!({}));
    assert!(matches!(err(r#"{: "b"}"#, &any), ParseError::Invalid(_)));
    assert!(matches!(err(r#"{5 "b"}"#, &any), ParseError::Invalid(_)));
}

fn closed() -> SchemaValidator {
    schema(json!({
        "type": "object",
        "properties": {"label": {"type": "string"}},
        "required": ["label"],
        "additionalProperties": false
    }))
}

/// Extra keys for a closed schema. Unique: the schema allows no other key, so the value without
/// it is the only one that fits, and nothing the schema asks for is touched.
#[test]
fn an_extra_key_of_a_closed_object_is_dropped() {
    let p = ok(r#"{"label": "x", "reason": "because"}"#, &closed());
    assert_eq!(p.value, json!({"label": "x"}));
    assert_eq!(
        p.repairs,
        vec![Repair::DroppedUnknownKey {
            path: String::new(),
            key: "reason".into()
        }]
    );
}

/// Counter-example: a misspelt required key is not dropped (the value would still not fit, so
/// nothing is coerced and the schema errors reach the reask).
#[test]
fn a_misspelt_key_is_not_dropped() {
    let p = parse(r#"{"lable": "x"}"#, &closed(), &ParseLimits::default()).unwrap();
    assert_eq!(p.value, json!({"lable": "x"}));
    assert!(p.repairs.is_empty());
}

/// The ranked search: fewest schema errors, then fewest repairs, then the cheapest; the reasons
/// are in the explanation.
#[test]
fn the_search_explains_its_choice() {
    let s = schema(json!({
        "type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]
    }));
    let text = "Example: {\"name\": \"x\"}\nAnswer: {'label': 'ok'}";
    let e = explain(text, &s, &ParseLimits::default());
    assert_eq!(e.result.as_ref().unwrap().value, json!({"label": "ok"}));
    assert_eq!(e.considered.len(), 3, "{e}");
    assert!(matches!(e.considered[0].outcome, Outcome::Failed(_)));
    assert!(matches!(
        e.considered[1].outcome,
        Outcome::Read {
            schema_errors: 1,
            ..
        }
    ));
    let shown = e.to_string();
    assert!(shown.contains("chosen: {\"label\":\"ok\"}"), "{shown}");
    assert!(shown.contains("converted_single_quotes"), "{shown}");
}

/// Denied kinds: a reading that needs one is refused, and the error names the kind.
#[test]
fn a_denied_repair_rejects_the_reading() {
    let any = schema(json!({}));
    let limits = ParseLimits::default().denying(RepairSet::of(&[RepairKind::QuotedBareValue]));
    let e = parse(r#"{"status": active}"#, &any, &limits).unwrap_err();
    assert_eq!(
        e,
        ParseError::Denied {
            kind: RepairKind::QuotedBareValue,
            repair: "read the bare word `active` at `status` as a string".into()
        }
    );
    // A denied coercion is not made; the value is returned as written, for the schema to reject.
    let zip = schema(json!({"type": "object", "properties": {"zip": {"type": "string"}}}));
    let limits = ParseLimits::default().denying(RepairSet::of(&[RepairKind::Coerced]));
    let p = parse(r#"{"zip": 5531}"#, &zip, &limits).unwrap();
    assert_eq!(p.value, json!({"zip": 5531}));
    assert!(!zip.is_valid(&p.value));
}
