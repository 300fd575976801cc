//! From raw model text to a checked, typed value: lenient parse → JSON schema → rules → confidence.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use super::parse::{self, ParseError, ParseLimits, Repair};
use super::{FieldPath, LlmOutput, ValidationError, ValidationErrors};

/// A compiled JSON schema for one output type.
pub struct SchemaValidator {
    schema: Value,
    wire: OnceLock<Arc<Value>>,
    instruction: OnceLock<Arc<str>>,
    validator: Option<jsonschema::Validator>,
    compile_error: Option<String>,
}

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaValidator")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl SchemaValidator {
    /// Compiles `schema`. A schema that cannot be compiled is kept and reported by
    /// [`SchemaValidator::compile_error`]; such a validator accepts nothing.
    pub fn new(schema: Value) -> Self {
        match jsonschema::validator_for(&schema) {
            Ok(v) => SchemaValidator {
                schema,
                wire: OnceLock::new(),
                instruction: OnceLock::new(),
                validator: Some(v),
                compile_error: None,
            },
            Err(e) => SchemaValidator {
                schema,
                wire: OnceLock::new(),
                instruction: OnceLock::new(),
                validator: None,
                compile_error: Some(e.to_string()),
            },
        }
    }

    /// The validator of `T`'s schema, compiled once per process.
    pub fn for_type<T: LlmOutput>() -> Arc<SchemaValidator> {
        static CACHE: OnceLock<Mutex<HashMap<TypeId, Arc<SchemaValidator>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let mut map = match cache.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(SchemaValidator::new(T::output_schema())))
            .clone()
    }

    /// The schema.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// The schema as requests carry it ([`wire_schema`](super::wire_schema)), built once and
    /// shared by every request.
    pub fn wire_schema(&self) -> Arc<Value> {
        self.wire
            .get_or_init(|| Arc::new(super::wire_schema(&self.schema)))
            .clone()
    }

    /// The instruction that asks the model for JSON of this type when the server does not
    /// enforce the schema ([`schema_instruction`](super::schema_instruction)), built once.
    pub fn instruction(&self) -> &str {
        self.shared_instruction_ref()
    }

    /// [`instruction`](Self::instruction), shared (what requests carry).
    pub fn shared_instruction(&self) -> Arc<str> {
        self.shared_instruction_ref().clone()
    }

    fn shared_instruction_ref(&self) -> &Arc<str> {
        self.instruction
            .get_or_init(|| Arc::from(super::schema_instruction(&self.schema)))
    }

    /// Why the schema itself is unusable, if it is.
    pub fn compile_error(&self) -> Option<&str> {
        self.compile_error.as_deref()
    }

    /// Whether `value` fits the schema.
    pub fn is_valid(&self, value: &Value) -> bool {
        self.validator.as_ref().is_some_and(|v| v.is_valid(value))
    }

    /// What in `value` does not fit the schema, worded for a model.
    pub fn errors(&self, value: &Value) -> Vec<ValidationError> {
        let Some(validator) = &self.validator else {
            return vec![ValidationError {
                path: String::new(),
                rule: "schema",
                message: format!(
                    "the output schema cannot be used: {}",
                    self.compile_error.as_deref().unwrap_or("unknown error")
                ),
            }];
        };
        validator
            .iter_errors(value)
            .map(|e| {
                let pointer = e.instance_path().to_string();
                ValidationError {
                    path: pointer_to_path(&pointer),
                    rule: "schema",
                    message: e.to_string(),
                }
            })
            .collect()
    }
}

/// `/items/2/label` → `items[2].label`.
fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty() {
            out.push('[');
            out.push_str(&seg);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

/// The result of checking one model answer.
#[derive(Debug)]
pub enum Checked<T> {
    /// Valid, and confident enough (or the type has no confidence field).
    Valid {
        /// The typed value.
        value: T,
        /// The JSON it was read from.
        json: Value,
        /// Repairs the lenient parser applied.
        repairs: Vec<Repair>,
    },
    /// Valid, but the confidence is below the threshold.
    LowConfidence {
        /// The typed value.
        value: T,
        /// The JSON it was read from.
        json: Value,
        /// Repairs applied.
        repairs: Vec<Repair>,
        /// The confidence the model gave.
        confidence: f64,
        /// The threshold it missed.
        threshold: f64,
    },
    /// Not a usable answer.
    Invalid {
        /// What was wrong, for the caller and for a reask.
        errors: ValidationErrors,
        /// Repairs tried before giving up.
        repairs: Vec<Repair>,
        /// Why parsing failed, when it did.
        parse_error: Option<ParseError>,
    },
}

/// The errors of a value that broke the schema. When it still deserializes, the type's own rules
/// say what is wrong in their words ("must be at most 1, got 1.5", by field path); schema errors
/// are kept for the paths no rule speaks of (missing fields, wrong types, extra keys).
fn merge_rule_errors<T: LlmOutput>(
    value: &Value,
    schema_errors: Vec<ValidationError>,
) -> ValidationErrors {
    let Ok(typed) = serde_json::from_value::<T>(value.clone()) else {
        return ValidationErrors(schema_errors);
    };
    let mut rules = ValidationErrors::new();
    typed.validate(&FieldPath::root(), &mut rules);
    if rules.is_empty() {
        return ValidationErrors(schema_errors);
    }
    let covered: Vec<String> = rules.iter().map(|e| e.path.clone()).collect();
    rules.0.extend(
        schema_errors
            .into_iter()
            .filter(|e| !covered.contains(&e.path)),
    );
    rules
}

/// Checks `raw` model text against `T`: lenient parse (fences, prose, repairs, schema-guided
/// coercion), JSON schema, deserialisation, `#[llm(...)]` rules, then confidence against
/// `threshold`.
pub fn check_value<T: LlmOutput>(
    raw: &str,
    threshold: Option<f64>,
    limits: &ParseLimits,
) -> Checked<T> {
    let schema = SchemaValidator::for_type::<T>();
    let parsed = match parse::parse(raw, &schema, limits) {
        Ok(p) => p,
        Err(e) => {
            let mut errors = ValidationErrors::new();
            errors.push(&FieldPath::root(), "json", e.to_string());
            return Checked::Invalid {
                errors,
                repairs: Vec::new(),
                parse_error: Some(e),
            };
        }
    };
    let schema_errors = schema.errors(&parsed.value);
    if !schema_errors.is_empty() {
        return Checked::Invalid {
            errors: merge_rule_errors::<T>(&parsed.value, schema_errors),
            repairs: parsed.repairs,
            parse_error: None,
        };
    }
    let value: T = match serde_json::from_value(parsed.value.clone()) {
        Ok(v) => v,
        Err(e) => {
            let mut errors = ValidationErrors::new();
            errors.push(&FieldPath::root(), "type", e.to_string());
            return Checked::Invalid {
                errors,
                repairs: parsed.repairs,
                parse_error: None,
            };
        }
    };
    let mut errors = ValidationErrors::new();
    value.validate(&FieldPath::root(), &mut errors);
    if !errors.is_empty() {
        return Checked::Invalid {
            errors,
            repairs: parsed.repairs,
            parse_error: None,
        };
    }
    if let (Some(threshold), Some(confidence)) = (threshold, value.confidence()) {
        // NaN never passes a threshold.
        if confidence.partial_cmp(&threshold).is_none_or(|o| o.is_lt()) {
            return Checked::LowConfidence {
                value,
                json: parsed.value,
                repairs: parsed.repairs,
                confidence,
                threshold,
            };
        }
    }
    Checked::Valid {
        value,
        json: parsed.value,
        repairs: parsed.repairs,
    }
}

#[cfg(test)]
mod tests {
    use super::pointer_to_path;

    #[test]
    fn pointers_become_paths() {
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(pointer_to_path("/items/2/label"), "items[2].label");
        assert_eq!(pointer_to_path("/a~1b"), "a/b");
    }
}
