//! [`Harness::from_env`](crate::Harness::from_env): a harness configured from environment
//! variables. The parsing is a pure function of a map, [`from_vars`], so it can be tested (and
//! fed from a `.env` file) without touching the process environment.

use std::collections::HashMap;

use super::{Harness, HarnessBuilder};
use crate::error::ConfigError;
use crate::provider::http::{self, Secret};
use crate::provider::{Anthropic, OpenAiCompatible};

/// The OpenAI-compatible server used when `OPENAI_BASE_URL` is not set: the local llama-server
/// that `scripts/local-model.sh` starts.
pub const DEFAULT_OPENAI_BASE_URL: &str = "http://127.0.0.1:8089/v1";

/// The variables [`from_vars`] reads.
pub const VARIABLES: [&str; 5] = [
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "HARNESS_MODEL",
];

/// Reads [`VARIABLES`] from the process environment and builds a harness with [`from_vars`].
pub fn from_env() -> Result<Harness, ConfigError> {
    builder_from_env()?.build()
}

/// [`from_env`], stopping before `build()` so observers, recovery and telemetry settings can be
/// added: `HarnessBuilder::from_env()?.observer(sink).build()?`.
pub fn builder_from_env() -> Result<HarnessBuilder, ConfigError> {
    let mut vars = HashMap::new();
    for name in VARIABLES {
        match std::env::var(name) {
            Ok(v) => {
                vars.insert(name.to_owned(), v);
            }
            Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(ConfigError(format!("{name} is not valid UTF-8")));
            }
        }
    }
    builder_from_vars(&vars)
}

/// Builds a harness from variables:
///
/// - `OPENAI_BASE_URL` (default [`DEFAULT_OPENAI_BASE_URL`]) and `OPENAI_API_KEY` (optional):
///   an [`OpenAiCompatible`] provider registered as `openai`, the default provider;
/// - `ANTHROPIC_API_KEY` (and optionally `ANTHROPIC_BASE_URL`): an [`Anthropic`] provider
///   registered as `anthropic`, which receives every model whose name starts with `claude`;
/// - `HARNESS_MODEL`: the default model, and an override of every task's primary model.
///
/// Empty values count as unset. Errors name the variable and the problem, never its value.
pub fn from_vars(vars: &HashMap<String, String>) -> Result<Harness, ConfigError> {
    builder_from_vars(vars)?.build()
}

/// [`from_vars`], stopping before `build()` so observers (audit sinks, metrics), recovery and
/// telemetry settings can be added.
pub fn builder_from_vars(vars: &HashMap<String, String>) -> Result<HarnessBuilder, ConfigError> {
    let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    // Checked here first, so errors name the variable; the builders would refuse them too.
    let key = |name: &str| -> Result<Option<&str>, ConfigError> {
        match get(name) {
            Some(k) => {
                Secret::new(k.to_owned()).map_or(Ok(()), |s| s.check(name))?;
                Ok(Some(k))
            }
            None => Ok(None),
        }
    };

    let base = match get("OPENAI_BASE_URL") {
        Some(url) => url,
        None => {
            // Said once, at setup: a user who forgot the variable sees where calls will go.
            tracing::info!(
                endpoint = DEFAULT_OPENAI_BASE_URL,
                model = get("HARNESS_MODEL").unwrap_or("each task's own"),
                "OPENAI_BASE_URL is not set; using the local OpenAI-compatible server"
            );
            DEFAULT_OPENAI_BASE_URL
        }
    };
    http::parse_base_url(base, "OPENAI_BASE_URL")?;
    let mut openai = OpenAiCompatible::builder(base);
    if let Some(k) = key("OPENAI_API_KEY")? {
        openai = openai.api_key(k);
    }
    let mut builder = Harness::builder().provider("openai", openai.build()?);

    if let Some(k) = key("ANTHROPIC_API_KEY")? {
        let mut anthropic = Anthropic::builder(k);
        if let Some(url) = get("ANTHROPIC_BASE_URL") {
            http::parse_base_url(url, "ANTHROPIC_BASE_URL")?;
            anthropic = anthropic.base_url(url);
        }
        builder = builder
            .provider("anthropic", anthropic.build()?)
            .route("claude", "anthropic");
    }

    if let Some(model) = get("HARNESS_MODEL") {
        builder = builder.default_model(model).model_override(model);
    }
    if let Some(pins) = get("HARNESS_PIN_MODELS") {
        for pin in pins.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((task, model)) = pin.split_once('=') else {
                return Err(ConfigError(format!(
                    "HARNESS_PIN_MODELS: `{pin}` is not `task=model` (a comma-separated list)"
                )));
            };
            builder = builder.pin_model(task.trim(), model.trim());
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn info(h: &Harness, name: &str) -> crate::provider::ProviderInfo {
        h.provider(name).expect(name).info()
    }

    #[test]
    fn defaults_to_the_local_model() {
        let h = from_vars(&vars(&[])).unwrap();
        let i = info(&h, "openai");
        assert_eq!(i.address.as_deref(), Some("127.0.0.1"));
        assert_eq!(i.port, Some(8089));
        assert!(h.provider("anthropic").is_none());
        assert_eq!(h.route(None, "anything").unwrap().0, "openai");
    }

    #[test]
    fn reads_every_variable() {
        let h = from_vars(&vars(&[
            ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            ("OPENAI_API_KEY", "sk-test"),
            ("ANTHROPIC_API_KEY", "ak-test"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/"),
            ("HARNESS_MODEL", "gpt-4o-mini"),
        ]))
        .unwrap();
        assert_eq!(
            info(&h, "openai").address.as_deref(),
            Some("api.openai.com")
        );
        assert_eq!(info(&h, "openai").port, Some(443));
        assert_eq!(info(&h, "anthropic").port, Some(9));
        assert_eq!(h.route(None, "claude-3-5-haiku").unwrap().0, "anthropic");
        assert_eq!(h.route(None, "gpt-4o").unwrap().0, "openai");
        let debug = format!("{h:?}");
        assert!(debug.contains("gpt-4o-mini"), "{debug}");
        assert!(
            !debug.contains("sk-test") && !debug.contains("ak-test"),
            "{debug}"
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let h = from_vars(&vars(&[
            ("OPENAI_BASE_URL", ""),
            ("ANTHROPIC_API_KEY", " "),
            ("HARNESS_MODEL", ""),
        ]))
        .unwrap();
        assert_eq!(info(&h, "openai").port, Some(8089));
        assert!(h.provider("anthropic").is_none());
        assert!(!format!("{h:?}").contains("Some"), "{h:?}");
    }

    #[test]
    fn bad_values_name_the_variable_and_not_the_value() {
        let e = from_vars(&vars(&[(
            "OPENAI_BASE_URL",
            "localhost:8089/v1?key=sekrit",
        )]))
        .unwrap_err();
        assert!(e.0.starts_with("OPENAI_BASE_URL "), "{e}");
        assert!(!e.0.contains("sekrit"), "{e}");

        let e = from_vars(&vars(&[("OPENAI_BASE_URL", "no url at all")])).unwrap_err();
        assert!(e.0.contains("OPENAI_BASE_URL is not a valid URL"), "{e}");

        let e = from_vars(&vars(&[
            ("ANTHROPIC_API_KEY", "ak"),
            ("ANTHROPIC_BASE_URL", "https://user:sekrit@example.com"),
        ]))
        .unwrap_err();
        assert!(e.0.starts_with("ANTHROPIC_BASE_URL "), "{e}");
        assert!(!e.0.contains("sekrit"), "{e}");

        let e = from_vars(&vars(&[("OPENAI_API_KEY", "sk-line\nbreak")])).unwrap_err();
        assert!(e.0.starts_with("OPENAI_API_KEY contains"), "{e}");
        assert!(!e.0.contains("sk-line"), "{e}");
    }

    /// The `info` events `f` logs, as `field=value ...` lines.
    fn infos(f: impl FnOnce()) -> Vec<String> {
        use std::fmt::Write as _;
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt as _;

        struct Infos(Arc<Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Infos {
            fn on_event(
                &self,
                e: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                if *e.metadata().level() != tracing::Level::INFO {
                    return;
                }
                let mut line = String::new();
                e.record(&mut |f: &tracing::field::Field, v: &dyn std::fmt::Debug| {
                    let _ = write!(line, "{}={v:?} ", f.name());
                });
                self.0.lock().unwrap().push(line);
            }
        }
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Infos(lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            // Other tests may have met the callsite with no subscriber around and cached it as
            // never interesting; ask again now that this one is installed.
            tracing::callsite::rebuild_interest_cache();
            f();
        });
        lines.lock().unwrap().clone()
    }

    #[test]
    fn the_local_default_is_logged_with_its_endpoint_and_model_and_never_a_key() {
        let lines = infos(|| {
            from_vars(&vars(&[
                ("OPENAI_API_KEY", "sk-never-logged"),
                ("HARNESS_MODEL", "smollm2-135m"),
            ]))
            .unwrap();
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("endpoint=\"http://127.0.0.1:8089/v1\""),
            "{lines:?}"
        );
        assert!(lines[0].contains("model=\"smollm2-135m\""), "{lines:?}");
        assert!(!lines[0].contains("sk-never-logged"), "{lines:?}");

        let lines = infos(|| drop(from_vars(&vars(&[])).unwrap()));
        assert!(lines[0].contains("model=\"each task's own\""), "{lines:?}");

        let set = vars(&[("OPENAI_BASE_URL", "https://api.openai.com/v1")]);
        assert!(infos(|| drop(from_vars(&set).unwrap())).is_empty());
    }

    #[test]
    fn anthropic_base_url_alone_is_ignored() {
        let h = from_vars(&vars(&[("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")])).unwrap();
        assert!(h.provider("anthropic").is_none());
    }
}
