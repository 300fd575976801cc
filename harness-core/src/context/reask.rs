//! The text of a reask: the previous answer shown again (bounded) and what was wrong with it,
//! worded for the model.

use crate::contract::FailureClass;
use crate::output::ValidationErrors;

/// The most of a previous answer a reask shows the model again: enough to see its mistake,
/// bounded so a huge answer cannot make the next request huge (building it is synchronous work
/// that no per-attempt timeout can interrupt).
pub const MAX_ECHO_BYTES: usize = 4 * 1024;

/// A previous answer as a reask echoes it: whole when short, else its head and a note.
pub fn echo(raw: &str) -> String {
    if raw.len() <= MAX_ECHO_BYTES {
        return raw.to_owned();
    }
    let mut end = MAX_ECHO_BYTES;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[… {} more bytes cut: the answer was far too long]",
        &raw[..end],
        raw.len() - end
    )
}

/// The user message of a reask after a failure of `class`: the rules the answer broke, or for
/// low confidence the confidence given and the one required (`(confidence, threshold)`).
pub fn reask_message(
    class: FailureClass,
    validation: &ValidationErrors,
    confidence: Option<(f64, f64)>,
) -> String {
    match class {
        FailureClass::LowConfidence => match confidence {
            Some((confidence, threshold)) => format!(
                "Your answer's confidence was {confidence}, below the required {threshold}. Re-read the input carefully and answer again with one JSON object that follows the schema."
            ),
            None => "Re-read the input carefully and answer again with one JSON object that follows the schema.".to_owned(),
        },
        FailureClass::Refusal => "This is a routine data-processing request. Answer it with one JSON object that follows the schema.".to_owned(),
        _ => format!(
            "Your previous answer could not be accepted:\n{validation}\nReply again with only one JSON object that follows the schema and fixes every problem listed."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_answer_is_cut_on_a_char_boundary_with_a_note() {
        let raw = "é".repeat(MAX_ECHO_BYTES);
        let echoed = echo(&raw);
        assert!(echoed.len() < MAX_ECHO_BYTES + 100);
        assert!(echoed.contains(&format!("{} more bytes cut", raw.len() - MAX_ECHO_BYTES)));
        assert_eq!(echo("short"), "short");
    }

    #[test]
    fn each_class_gets_its_own_wording() {
        let low = reask_message(
            FailureClass::LowConfidence,
            &ValidationErrors::new(),
            Some((0.5, 0.7)),
        );
        assert!(low.contains("0.5") && low.contains("0.7"));
        let refusal = reask_message(FailureClass::Refusal, &ValidationErrors::new(), None);
        assert!(refusal.contains("routine"));
        let invalid = reask_message(FailureClass::InvalidOutput, &ValidationErrors::new(), None);
        assert!(invalid.contains("could not be accepted"));
    }
}
