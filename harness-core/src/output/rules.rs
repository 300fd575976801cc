//! The checks behind `#[llm(range(..))]`, `length`, `pattern`, `one_of` and `custom`, called by the
//! code `#[derive(LlmOutput)]` generates. Each pushes a [`ValidationError`](super::ValidationError)
//! worded for a model to act on ("must be at most 1, got 1.5").
//!
//! Which field types a rule applies to is said by a trait per rule ([`RangeTarget`],
//! [`LengthTarget`], [`TextTarget`]); a rule on a field of another type is a compile error at the
//! rule, worded by `#[diagnostic::on_unimplemented]`. `None` is never checked: an absent optional
//! value satisfies every rule.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use super::{FieldPath, LlmOutput, ValidationErrors};

/// The longest stretch of a model's value quoted back in a message.
const QUOTE_MAX_CHARS: usize = 80;

// ---------------------------------------------------------------------------------------------
// range

/// A value `#[llm(range(..))]` can check: numbers, and `Option`s or `Box`es of numbers.
#[diagnostic::on_unimplemented(
    message = "`range(..)` applies to numbers, and `{Self}` is not a number",
    label = "`range` cannot check a `{Self}`",
    note = "use `length(..)` to bound strings and lists, and `range(..)` for integer and float fields"
)]
pub trait RangeTarget {
    /// The number, or `None` when there is nothing to check.
    fn range_value(&self) -> Option<f64>;
}

macro_rules! range_target {
    ($($t:ty),*) => {$(
        impl RangeTarget for $t {
            #[allow(clippy::cast_precision_loss)] // A bound check tolerates rounding of huge integers.
            fn range_value(&self) -> Option<f64> {
                Some(*self as f64)
            }
        }
    )*};
}
range_target!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64
);

impl<T: RangeTarget> RangeTarget for Option<T> {
    fn range_value(&self) -> Option<f64> {
        self.as_ref().and_then(RangeTarget::range_value)
    }
}

impl<T: RangeTarget + ?Sized> RangeTarget for Box<T> {
    fn range_value(&self) -> Option<f64> {
        (**self).range_value()
    }
}

/// Checks `min <= value <= max` (either bound optional). NaN breaks every range.
pub fn range<T: RangeTarget + ?Sized>(
    value: &T,
    min: Option<f64>,
    max: Option<f64>,
    path: &FieldPath,
    errors: &mut ValidationErrors,
) {
    let Some(v) = value.range_value() else {
        return;
    };
    if v.is_nan() {
        errors.push(
            path,
            "range",
            format!("must be a number{}, got NaN", bounds(min, max)),
        );
    } else if let Some(min) = min.filter(|min| v < *min) {
        errors.push(path, "range", format!("must be at least {min}, got {v}"));
    } else if let Some(max) = max.filter(|max| v > *max) {
        errors.push(path, "range", format!("must be at most {max}, got {v}"));
    }
}

fn bounds(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!(" between {a} and {b}"),
        (Some(a), None) => format!(" of at least {a}"),
        (None, Some(b)) => format!(" of at most {b}"),
        (None, None) => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// length

/// A value `#[llm(length(..))]` can measure: strings (in characters), lists and maps (in items).
#[diagnostic::on_unimplemented(
    message = "`length(..)` applies to strings, lists and maps, and `{Self}` is none of them",
    label = "`length` cannot measure a `{Self}`",
    note = "use `range(..)` to bound numbers"
)]
pub trait LengthTarget {
    /// The length and its unit (`"character"`, `"item"`), or `None` when there is nothing to check.
    fn length(&self) -> Option<(usize, &'static str)>;
}

impl LengthTarget for String {
    fn length(&self) -> Option<(usize, &'static str)> {
        Some((self.chars().count(), "character"))
    }
}

impl LengthTarget for str {
    fn length(&self) -> Option<(usize, &'static str)> {
        Some((self.chars().count(), "character"))
    }
}

impl<T> LengthTarget for Vec<T> {
    fn length(&self) -> Option<(usize, &'static str)> {
        Some((self.len(), "item"))
    }
}

impl<T> LengthTarget for [T] {
    fn length(&self) -> Option<(usize, &'static str)> {
        Some((self.len(), "item"))
    }
}

impl<K, V, S> LengthTarget for HashMap<K, V, S> {
    fn length(&self) -> Option<(usize, &'static str)> {
        Some((self.len(), "entry"))
    }
}

impl<K, V> LengthTarget for BTreeMap<K, V> {
    fn length(&self) -> Option<(usize, &'static str)> {
        Some((self.len(), "entry"))
    }
}

impl<T: LengthTarget> LengthTarget for Option<T> {
    fn length(&self) -> Option<(usize, &'static str)> {
        self.as_ref().and_then(LengthTarget::length)
    }
}

impl<T: LengthTarget + ?Sized> LengthTarget for Box<T> {
    fn length(&self) -> Option<(usize, &'static str)> {
        (**self).length()
    }
}

/// Checks `min <= length <= max` (either bound optional).
pub fn length<T: LengthTarget + ?Sized>(
    value: &T,
    min: Option<usize>,
    max: Option<usize>,
    path: &FieldPath,
    errors: &mut ValidationErrors,
) {
    let Some((n, unit)) = value.length() else {
        return;
    };
    if let Some(min) = min.filter(|min| n < *min) {
        errors.push(
            path,
            "length",
            format!("must have at least {}, got {n}", count(min, unit)),
        );
    } else if let Some(max) = max.filter(|max| n > *max) {
        errors.push(
            path,
            "length",
            format!("must have at most {}, got {n}", count(max, unit)),
        );
    }
}

fn count(n: usize, unit: &str) -> String {
    match (n, unit) {
        (1, _) => format!("1 {unit}"),
        (_, "entry") => format!("{n} entries"),
        _ => format!("{n} {unit}s"),
    }
}

// ---------------------------------------------------------------------------------------------
// pattern and one_of

/// A value `#[llm(pattern = "..")]` and `#[llm(one_of(..))]` can check: strings, and `Option`s,
/// `Vec`s and `Box`es of them (each element is checked, with its index in the path).
#[diagnostic::on_unimplemented(
    message = "`pattern` and `one_of` apply to strings, and `{Self}` is not a string",
    label = "`{Self}` is not a string (nor a list or option of strings)",
    note = "use a `String` field, or an enum deriving `LlmOutput` for a closed set of values"
)]
pub trait TextTarget {
    /// Calls `f` with every string in the value and its path.
    fn each_text(&self, path: &FieldPath, f: &mut dyn FnMut(&str, &FieldPath));
}

impl TextTarget for String {
    fn each_text(&self, path: &FieldPath, f: &mut dyn FnMut(&str, &FieldPath)) {
        f(self, path);
    }
}

impl TextTarget for str {
    fn each_text(&self, path: &FieldPath, f: &mut dyn FnMut(&str, &FieldPath)) {
        f(self, path);
    }
}

impl<T: TextTarget> TextTarget for Option<T> {
    fn each_text(&self, path: &FieldPath, f: &mut dyn FnMut(&str, &FieldPath)) {
        if let Some(v) = self {
            v.each_text(path, f);
        }
    }
}

impl<T: TextTarget> TextTarget for Vec<T> {
    fn each_text(&self, path: &FieldPath, f: &mut dyn FnMut(&str, &FieldPath)) {
        for (i, v) in self.iter().enumerate() {
            v.each_text(&path.index(i), f);
        }
    }
}

impl<T: TextTarget + ?Sized> TextTarget for Box<T> {
    fn each_text(&self, path: &FieldPath, f: &mut dyn FnMut(&str, &FieldPath)) {
        (**self).each_text(path, f);
    }
}

/// A regular expression from `#[llm(pattern = "..")]`: checked by the macro at compile time,
/// compiled once on first use. Like JSON Schema's `pattern`, it matches anywhere in the value
/// unless anchored with `^...$`.
pub struct Pattern {
    source: &'static str,
    regex: OnceLock<Result<regex::Regex, String>>,
}

impl Pattern {
    /// A pattern, not compiled yet.
    pub const fn new(source: &'static str) -> Self {
        Pattern {
            source,
            regex: OnceLock::new(),
        }
    }

    /// The pattern as written.
    pub fn source(&self) -> &'static str {
        self.source
    }

    fn regex(&self) -> &Result<regex::Regex, String> {
        self.regex
            .get_or_init(|| regex::Regex::new(self.source).map_err(|e| e.to_string()))
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

/// Checks that every string in `value` matches `pattern`.
pub fn pattern<T: TextTarget + ?Sized>(
    value: &T,
    pattern: &Pattern,
    path: &FieldPath,
    errors: &mut ValidationErrors,
) {
    let re = match pattern.regex() {
        Ok(re) => re,
        Err(e) => {
            // The macro validated the syntax; this is only reachable past the regex size limits.
            errors.push(
                path,
                "pattern",
                format!("the pattern `{}` cannot be used: {e}", pattern.source),
            );
            return;
        }
    };
    value.each_text(path, &mut |s, p| {
        if !re.is_match(s) {
            errors.push(
                p,
                "pattern",
                format!(
                    "must match the regular expression `{}`, got {}",
                    pattern.source,
                    quote(s)
                ),
            );
        }
    });
}

/// Checks that every string in `value` is one of `allowed`.
pub fn one_of<T: TextTarget + ?Sized>(
    value: &T,
    allowed: &[&str],
    path: &FieldPath,
    errors: &mut ValidationErrors,
) {
    value.each_text(path, &mut |s, p| {
        if !allowed.contains(&s) {
            let mut list = String::new();
            for (i, a) in allowed.iter().enumerate() {
                if i > 0 {
                    list.push_str(", ");
                }
                let _ = write!(list, "{a:?}");
            }
            errors.push(
                p,
                "one_of",
                format!("must be one of {list}; got {}", quote(s)),
            );
        }
    });
}

/// Adds `"enum": allowed` to a field's schema: to the schema itself for a string, to `items` for a
/// list, and allowing `null` for an optional string.
pub fn schema_one_of(schema: &mut schemars::Schema, allowed: &[&str]) {
    let values = || -> Vec<serde_json::Value> { allowed.iter().map(|s| (*s).into()).collect() };
    if has_type(schema, "array") {
        if let Some(items) = schema
            .get_mut("items")
            .and_then(|i| <&mut schemars::Schema>::try_from(i).ok())
        {
            schema_one_of(items, allowed);
        }
    } else if has_type(schema, "string") {
        let mut list = values();
        if has_type(schema, "null") {
            list.push(serde_json::Value::Null);
        }
        schema.insert("enum".to_owned(), list.into());
    }
}

fn has_type(schema: &schemars::Schema, ty: &str) -> bool {
    match schema.get("type") {
        Some(serde_json::Value::String(s)) => s == ty,
        Some(serde_json::Value::Array(a)) => a.iter().any(|t| t.as_str() == Some(ty)),
        _ => false,
    }
}

fn quote(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(QUOTE_MAX_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}… ({} characters)", s.chars().count())
    } else {
        format!("{head:?}")
    }
}

// ---------------------------------------------------------------------------------------------
// custom

/// Records the result of a `#[llm(custom = path::to_fn)]` check: `Err(message)` is a broken rule.
pub fn custom<E: fmt::Display>(
    result: Result<(), E>,
    path: &FieldPath,
    errors: &mut ValidationErrors,
) {
    if let Err(e) = result {
        errors.push(path, "custom", e.to_string());
    }
}

// ---------------------------------------------------------------------------------------------
// nested outputs

/// Values whose rules a containing output checks too: every type deriving `LlmOutput` (the derive
/// implements it by calling [`LlmOutput::validate`]), and `Vec`s, `Option`s, `Box`es, arrays and
/// string-keyed maps of them. Generated code reaches it through an autoref probe, so fields of
/// other types are simply not descended into. (Not a blanket impl over `LlmOutput`: `Box` is
/// `#[fundamental]`, so that would overlap with the `Box` impl.)
pub trait Nested {
    /// Checks this value's rules, with paths below `path`.
    fn validate_nested(&self, path: &FieldPath, errors: &mut ValidationErrors);
}

/// Validates `value` as an [`LlmOutput`]; what derived [`Nested`] impls call.
pub fn validate_output<T: LlmOutput>(value: &T, path: &FieldPath, errors: &mut ValidationErrors) {
    value.validate(path, errors);
}

/// Leaves have no rules of their own; these impls let generic outputs (`Page<T>`, with the derive
/// adding `T: Nested`) be instantiated with them.
macro_rules! nested_leaf {
    ($($t:ty),*) => {$(
        impl Nested for $t {
            fn validate_nested(&self, _path: &FieldPath, _errors: &mut ValidationErrors) {}
        }
    )*};
}
nested_leaf!(
    String,
    bool,
    char,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    f32,
    f64,
    serde_json::Value
);

impl<T: Nested> Nested for Vec<T> {
    fn validate_nested(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        for (i, v) in self.iter().enumerate() {
            v.validate_nested(&path.index(i), errors);
        }
    }
}

impl<T: Nested, const N: usize> Nested for [T; N] {
    fn validate_nested(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        for (i, v) in self.iter().enumerate() {
            v.validate_nested(&path.index(i), errors);
        }
    }
}

impl<T: Nested> Nested for Option<T> {
    fn validate_nested(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        if let Some(v) = self {
            v.validate_nested(path, errors);
        }
    }
}

impl<T: Nested> Nested for Box<T> {
    fn validate_nested(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        (**self).validate_nested(path, errors);
    }
}

impl<V: Nested, S> Nested for HashMap<String, V, S> {
    fn validate_nested(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        for (k, v) in self {
            v.validate_nested(&path.field(k), errors);
        }
    }
}

impl<V: Nested> Nested for BTreeMap<String, V> {
    fn validate_nested(&self, path: &FieldPath, errors: &mut ValidationErrors) {
        for (k, v) in self {
            v.validate_nested(&path.field(k), errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        f: impl FnOnce(&FieldPath, &mut ValidationErrors),
    ) -> Vec<(String, &'static str, String)> {
        let mut errors = ValidationErrors::new();
        f(&FieldPath::root().field("f"), &mut errors);
        errors
            .iter()
            .map(|e| (e.path.clone(), e.rule, e.message.clone()))
            .collect()
    }

    #[test]
    fn range_reports_the_broken_bound() {
        let e = run(|p, e| range(&1.5f64, Some(0.0), Some(1.0), p, e));
        assert_eq!(
            e,
            [("f".into(), "range", "must be at most 1, got 1.5".into())]
        );
        let e = run(|p, e| range(&-2i32, Some(0.0), None, p, e));
        assert_eq!(e[0].2, "must be at least 0, got -2");
        assert!(run(|p, e| range(&0.5f32, Some(0.0), Some(1.0), p, e)).is_empty());
        assert!(run(|p, e| range(&None::<f64>, Some(0.0), Some(1.0), p, e)).is_empty());
        let e = run(|p, e| range(&f64::NAN, Some(0.0), Some(1.0), p, e));
        assert_eq!(e[0].2, "must be a number between 0 and 1, got NaN");
    }

    #[test]
    fn length_counts_chars_and_items() {
        let e = run(|p, e| length(&"héllo".to_string(), None, Some(4), p, e));
        assert_eq!(e[0].2, "must have at most 4 characters, got 5");
        assert!(run(|p, e| length(&"héllo".to_string(), None, Some(5), p, e)).is_empty());
        let e = run(|p, e| length(&Vec::<u8>::new(), Some(1), None, p, e));
        assert_eq!(e[0].2, "must have at least 1 item, got 0");
        assert!(run(|p, e| length(&None::<String>, Some(1), None, p, e)).is_empty());
    }

    #[test]
    fn pattern_checks_every_string_with_its_index() {
        static P: Pattern = Pattern::new("^[A-Z]{3}$");
        let v = vec!["ABC".to_string(), "abcd".to_string()];
        let e = run(|p, e| pattern(&v, &P, p, e));
        assert_eq!(
            e,
            [(
                "f[1]".into(),
                "pattern",
                "must match the regular expression `^[A-Z]{3}$`, got \"abcd\"".into()
            )]
        );
    }

    #[test]
    fn one_of_lists_the_choices() {
        let e = run(|p, e| one_of(&"maybe".to_string(), &["yes", "no"], p, e));
        assert_eq!(e[0].2, "must be one of \"yes\", \"no\"; got \"maybe\"");
        assert!(run(|p, e| one_of(&Some("no".to_string()), &["yes", "no"], p, e)).is_empty());
    }

    #[test]
    fn long_values_are_truncated_in_messages() {
        let long = "x".repeat(200);
        let e = run(|p, e| one_of(&long, &["a"], p, e));
        assert!(e[0].2.ends_with("… (200 characters)"), "{}", e[0].2);
    }

    #[test]
    fn custom_records_the_message() {
        let e = run(|p, e| custom(Err::<(), _>("must be a weekday"), p, e));
        assert_eq!(e, [("f".into(), "custom", "must be a weekday".into())]);
    }

    #[test]
    fn one_of_schema_goes_where_the_strings_are() {
        let mut s = schemars::json_schema!({"type": "string"});
        schema_one_of(&mut s, &["a", "b"]);
        assert_eq!(s.get("enum").unwrap(), &serde_json::json!(["a", "b"]));
        let mut s = schemars::json_schema!({"type": ["string", "null"]});
        schema_one_of(&mut s, &["a"]);
        assert_eq!(s.get("enum").unwrap(), &serde_json::json!(["a", null]));
        let mut s = schemars::json_schema!({"type": "array", "items": {"type": "string"}});
        schema_one_of(&mut s, &["a"]);
        assert_eq!(s.pointer("/items/enum").unwrap(), &serde_json::json!(["a"]));
    }
}
