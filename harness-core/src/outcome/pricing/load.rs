//! [`PriceTable::load`]: prices from a JSON file (or TOML, with the `toml` feature).
//!
//! One entry per model, in US dollars per million tokens; `cache_read` and `cache_write` are
//! optional (without them cached input is billed as input):
//!
//! ```json
//! {
//!   "gpt-4o": {"input": 2.50, "output": 10.00, "cache_read": 1.25},
//!   "claude-sonnet-4": {"input": 3.00, "output": 15.00, "cache_read": 0.30, "cache_write": 3.75}
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Price, PriceTable};

/// Why a price file could not be loaded. Names the file, and the model or position at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriceFileError {
    /// The file could not be read.
    #[error("cannot read the price table {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a price table (bad syntax, an unknown key, a price that is not a number).
    #[error("the price table {} is not valid: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column.
        message: String,
    },
    /// A price is negative or not finite.
    #[error("the price table {}: model `{model}`: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The model whose price is wrong.
        model: String,
        /// What is wrong.
        message: String,
    },
}

/// One model's entry in a file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePrice {
    input: f64,
    output: f64,
    #[serde(default)]
    cache_read: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
}

impl PriceTable {
    /// The prices in the file at `path`: JSON, or TOML when the name ends in `.toml` (feature
    /// `toml`). Only the file's models: add the built-in ones with
    /// `PriceTable::with_defaults().merged(PriceTable::load(path)?)`.
    pub fn load(path: impl AsRef<Path>) -> Result<PriceTable, PriceFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PriceFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        let entries = if is_toml {
            parse_toml(&text, path)?
        } else {
            serde_json::from_str::<BTreeMap<String, FilePrice>>(&text).map_err(|e| {
                PriceFileError::Syntax {
                    path: path.to_owned(),
                    message: e.to_string(),
                }
            })?
        };
        table(entries, path)
    }

    /// The prices in a JSON text of the same shape as a [`load`](Self::load)ed file.
    pub fn from_json(text: &str) -> Result<PriceTable, PriceFileError> {
        let path = Path::new("(text)");
        let entries: BTreeMap<String, FilePrice> =
            serde_json::from_str(text).map_err(|e| PriceFileError::Syntax {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        table(entries, path)
    }
}

#[cfg(feature = "toml")]
fn parse_toml(text: &str, path: &Path) -> Result<BTreeMap<String, FilePrice>, PriceFileError> {
    toml::from_str(text).map_err(|e| PriceFileError::Syntax {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

#[cfg(not(feature = "toml"))]
fn parse_toml(_: &str, path: &Path) -> Result<BTreeMap<String, FilePrice>, PriceFileError> {
    Err(PriceFileError::Syntax {
        path: path.to_owned(),
        message: "TOML price tables need harness-core's `toml` feature; use JSON or enable it"
            .into(),
    })
}

fn table(entries: BTreeMap<String, FilePrice>, path: &Path) -> Result<PriceTable, PriceFileError> {
    let mut table = PriceTable::empty();
    for (model, p) in entries {
        let rates = [
            ("input", Some(p.input)),
            ("output", Some(p.output)),
            ("cache_read", p.cache_read),
            ("cache_write", p.cache_write),
        ];
        if let Some((key, v)) = rates
            .iter()
            .find_map(|(k, v)| v.filter(|v| !v.is_finite() || *v < 0.0).map(|v| (k, v)))
        {
            return Err(PriceFileError::Invalid {
                path: path.to_owned(),
                model,
                message: format!(
                    "`{key}` must be a price of 0 or more (USD per million tokens), got {v}"
                ),
            });
        }
        let mut price = Price::per_million(p.input, p.output);
        price.cache_read_per_million = p.cache_read;
        price.cache_write_per_million = p.cache_write;
        table.set(model, price);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Usage;

    fn file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("harness-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_json_file_prices_models_with_their_cache_rates() {
        let path = file(
            "prices.json",
            r#"{"my-model": {"input": 1.0, "output": 4.0, "cache_read": 0.1, "cache_write": 1.25},
                "plain": {"input": 0.5, "output": 0.5}}"#,
        );
        let t = PriceTable::load(&path).unwrap();
        assert_eq!(t.models(), ["my-model", "plain"]);
        assert_eq!(
            t.price("my-model-x"),
            None,
            "a suffix must start with a digit"
        );
        assert_eq!(
            t.price("my-model-2025-01-01"),
            Some(Price::per_million(1.0, 4.0).with_cache(0.1, 1.25))
        );
        let u = Usage::new(3_000_000, 1_000_000).with_cache(1_000_000, 1_000_000);
        let cost = t.cost("my-model", u).unwrap();
        assert!((cost - (1.0 + 0.1 + 1.25 + 4.0)).abs() < 1e-9, "{cost}");
        let merged = PriceTable::with_defaults().merged(t);
        assert!(merged.price("gpt-4o").is_some() && merged.price("plain").is_some());
    }

    #[test]
    fn bad_files_say_what_and_where() {
        let missing = PriceTable::load("/nonexistent/prices.json").unwrap_err();
        assert!(matches!(missing, PriceFileError::Read { .. }), "{missing}");
        let typo = file("typo.json", "{\"m\": {\"input\": 1, \"ouput\": 2}}");
        let e = PriceTable::load(&typo).unwrap_err().to_string();
        assert!(
            e.contains("unknown field `ouput`") && e.contains("line 1"),
            "{e}"
        );
        let negative = PriceTable::from_json(r#"{"m": {"input": -1, "output": 2}}"#).unwrap_err();
        assert_eq!(
            negative.to_string(),
            "the price table (text): model `m`: `input` must be a price of 0 or more (USD per million tokens), got -1"
        );
    }

    #[cfg(feature = "toml")]
    #[test]
    fn a_toml_file_reads_the_same() {
        let path = file(
            "prices.toml",
            "[\"claude-x\"]\ninput = 3.0\noutput = 15.0\ncache_read = 0.3\ncache_write = 3.75\n",
        );
        let t = PriceTable::load(&path).unwrap();
        assert_eq!(
            t.price("claude-x"),
            Some(Price::per_million(3.0, 15.0).with_cache(0.3, 3.75))
        );
        let bad = file("bad.toml", "[m]\ninput = \"cheap\"\noutput = 1.0\n");
        let e = PriceTable::load(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("input"), "{e}");
    }
}
