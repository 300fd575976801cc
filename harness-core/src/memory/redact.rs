//! Keeping secrets out of memory: known key formats and the exact secrets a program registers.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;

use crate::provider::Message;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Key formats recognised without registration: OpenAI/Anthropic-style `sk-…`, bearer tokens,
/// AWS access key ids, GitHub and Slack tokens, and `api_key=…`-style assignments.
const PATTERNS: &str = r"(?x)
    \bsk-[A-Za-z0-9_\-]{16,}
  | \b[Bb]earer\s+[A-Za-z0-9._~+/=\-]{16,}
  | \bAKIA[0-9A-Z]{16}\b
  | \bgh[pousr]_[A-Za-z0-9]{30,}
  | \bxox[abprs]-[A-Za-z0-9\-]{10,}
  | (?P<keep>(?i:\b(?:api[_-]?key|access[_-]?token|secret|password)\s*[:=]\s*))[^\s,;'\x22]{8,}
";

fn patterns() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // The pattern is a constant, tested below; `Regex::new` cannot fail on it.
    RE.get_or_init(|| Regex::new(PATTERNS).unwrap_or_else(|_| Regex::new("$^").expect("empty")))
}

/// Replaces secrets in text before it is stored: every match of the known key formats, and every
/// occurrence of a secret registered with [`Redactor::secret`] (e.g. the API keys the program
/// reads from its environment).
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for the known key formats only.
    pub fn new() -> Self {
        Redactor::default()
    }

    /// Also replaces every occurrence of `secret` (ignored if shorter than 8 characters, which
    /// would redact ordinary words).
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        if secret.len() >= 8 {
            self.secrets.push(secret);
        }
        self
    }

    /// Registers the values of the usual API-key variables that are set in this process's
    /// environment (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `HARNESS_API_KEY`).
    pub fn with_env_keys(mut self) -> Self {
        for var in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HARNESS_API_KEY"] {
            if let Ok(value) = std::env::var(var) {
                self = self.secret(value);
            }
        }
        self
    }

    /// `text` with its secrets replaced by `[redacted]`.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = patterns().replace_all(text, "${keep}[redacted]");
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }

    /// Redacts each message's content in place.
    pub fn messages(&self, messages: &mut [Message]) {
        for m in messages {
            if let Cow::Owned(clean) = self.text(&m.content) {
                m.content = clean;
            }
        }
    }

    /// Redacts every string (and object key) inside a JSON value in place.
    pub fn json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if let Cow::Owned(clean) = self.text(s) {
                    *s = clean;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            serde_json::Value::Object(map) => {
                let entries = std::mem::take(map);
                for (k, mut v) in entries {
                    self.json(&mut v);
                    map.insert(self.text(&k).into_owned(), v);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_compiles() {
        assert!(Regex::new(PATTERNS).is_ok());
    }

    #[test]
    fn known_formats_and_registered_secrets_are_replaced() {
        let r = Redactor::new().secret("hunter2-but-longer");
        let cases = [
            (
                "my key is sk-proj-abcdefghijklmnop1234",
                "my key is [redacted]",
            ),
            (
                "Authorization: Bearer abcdefghijklmnopqrstu",
                "Authorization: [redacted]",
            ),
            ("AKIAABCDEFGHIJKLMNOP is aws", "[redacted] is aws"),
            ("api_key=abcd1234efgh done", "api_key=[redacted] done"),
            ("PASSWORD: correct-horse-battery", "PASSWORD: [redacted]"),
            ("the pass is hunter2-but-longer.", "the pass is [redacted]."),
            ("a plain sentence about skis", "a plain sentence about skis"),
        ];
        for (input, want) in cases {
            assert_eq!(r.text(input), want, "{input}");
        }
    }

    #[test]
    fn short_secrets_are_not_registered() {
        let r = Redactor::new().secret("abc");
        assert_eq!(r.text("abc abc"), "abc abc");
    }

    #[test]
    fn json_strings_and_keys_are_redacted() {
        let r = Redactor::new();
        let mut v = serde_json::json!({"note": ["sk-abcdefghijklmnopqrst"], "n": 1});
        r.json(&mut v);
        assert_eq!(v, serde_json::json!({"note": ["[redacted]"], "n": 1}));
    }
}
