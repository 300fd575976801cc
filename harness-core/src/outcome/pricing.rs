//! Token prices and the cost of calls.
//!
//! A [`PriceTable`] maps model names to US dollars per million input and output tokens, and,
//! where the provider bills them apart, per million input tokens read from or written to its
//! prompt cache. The built-in defaults ([`PriceTable::with_defaults`]) are list prices as of
//! [`DEFAULTS_AS_OF`]; prices change, so set your own ([`PriceTable::set`]) or load them from a
//! file ([`PriceTable::load`], see `docs/cost.md`) for anything you bill on. A model the table
//! does not know has no cost (`None`), never a guessed one.
//!
//! ```
//! use harness_core::telemetry::pricing::{Price, PriceTable};
//! use harness_core::Usage;
//!
//! let mut prices = PriceTable::empty();
//! prices.set("my-model", Price::per_million(0.50, 1.50));
//! let usage = Usage::new(2_000_000, 1_000_000);
//! assert_eq!(prices.cost("my-model", usage), Some(2.50));
//! assert_eq!(prices.cost("other-model", usage), None);
//!
//! // 1.5M of the 2M input tokens read from the cache, at a tenth of the input rate.
//! prices.set("cached-model", Price::per_million(1.0, 2.0).with_cache(0.10, 1.25));
//! let cached = Usage::new(2_000_000, 0).with_cache(1_500_000, 0);
//! let cost = prices.cost("cached-model", cached).unwrap();
//! assert!((cost - (0.50 + 0.15)).abs() < 1e-12);
//! ```

mod load;

use std::collections::HashMap;

pub use load::PriceFileError;

use super::{Attempt, CallReport};
use crate::provider::Usage;

/// The date the built-in prices were taken from the providers' public price lists.
pub const DEFAULTS_AS_OF: &str = "2025-06-01";

/// The price of one model, in US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    /// USD per million input (prompt) tokens.
    pub input_per_million: f64,
    /// USD per million output (completion) tokens, reasoning tokens included.
    pub output_per_million: f64,
    /// USD per million input tokens read from the prompt cache; `None` bills them as input.
    pub cache_read_per_million: Option<f64>,
    /// USD per million input tokens written to the prompt cache; `None` bills them as input.
    pub cache_write_per_million: Option<f64>,
}

impl Price {
    /// A price in USD per million input and output tokens, cached input billed as input.
    pub const fn per_million(input: f64, output: f64) -> Self {
        Price {
            input_per_million: input,
            output_per_million: output,
            cache_read_per_million: None,
            cache_write_per_million: None,
        }
    }

    /// With these rates (USD per million) for input tokens read from and written to the cache.
    pub const fn with_cache(mut self, read: f64, write: f64) -> Self {
        self.cache_read_per_million = Some(read);
        self.cache_write_per_million = Some(write);
        self
    }

    /// With this rate (USD per million) for input tokens read from the cache; writes stay at the
    /// input rate (OpenAI's cached input).
    pub const fn with_cache_read(mut self, read: f64) -> Self {
        self.cache_read_per_million = Some(read);
        self
    }

    /// Free (a local model).
    pub const FREE: Price = Price::per_million(0.0, 0.0);

    /// The cost of `usage` at this price, in USD: uncached input, cache reads, cache writes and
    /// output, each at its rate.
    pub fn cost(&self, usage: Usage) -> f64 {
        let read = self
            .cache_read_per_million
            .unwrap_or(self.input_per_million);
        let write = self
            .cache_write_per_million
            .unwrap_or(self.input_per_million);
        (usage.uncached_input_tokens() as f64 * self.input_per_million
            + usage.cache_read_tokens as f64 * read
            + usage.cache_write_tokens as f64 * write
            + usage.output_tokens as f64 * self.output_per_million)
            / 1_000_000.0
    }
}

/// List prices as of [`DEFAULTS_AS_OF`] (USD per million input, output tokens; cached input as
/// the providers bill it: OpenAI's cache reads at half or a quarter of the input rate, writes at
/// the input rate; Anthropic's reads at a tenth, five-minute writes at 1.25×).
const DEFAULTS: [(&str, Price); 10] = [
    (
        "gpt-4o",
        Price::per_million(2.50, 10.00).with_cache_read(1.25),
    ),
    (
        "gpt-4o-mini",
        Price::per_million(0.15, 0.60).with_cache_read(0.075),
    ),
    (
        "gpt-4.1",
        Price::per_million(2.00, 8.00).with_cache_read(0.50),
    ),
    (
        "gpt-4.1-mini",
        Price::per_million(0.40, 1.60).with_cache_read(0.10),
    ),
    (
        "gpt-4.1-nano",
        Price::per_million(0.10, 0.40).with_cache_read(0.025),
    ),
    (
        "claude-3-5-haiku",
        Price::per_million(0.80, 4.00).with_cache(0.08, 1.00),
    ),
    (
        "claude-3-5-sonnet",
        Price::per_million(3.00, 15.00).with_cache(0.30, 3.75),
    ),
    (
        "claude-3-7-sonnet",
        Price::per_million(3.00, 15.00).with_cache(0.30, 3.75),
    ),
    (
        "claude-sonnet-4",
        Price::per_million(3.00, 15.00).with_cache(0.30, 3.75),
    ),
    (
        "claude-opus-4",
        Price::per_million(15.00, 75.00).with_cache(1.50, 18.75),
    ),
];

/// Prices by model name.
///
/// A model matches its own name exactly, or else the longest entry it extends with a version or
/// date suffix: `gpt-4o-2024-08-06` and `claude-3-5-haiku-20241022` use the `gpt-4o` and
/// `claude-3-5-haiku` prices, `llama3:8b` uses `llama3`'s; `gpt-4o-mini` never uses `gpt-4o`'s
/// (the suffix must start with `-` and a digit, `:` or `@`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceTable {
    prices: HashMap<String, Price>,
}

impl PriceTable {
    /// A table with no prices: every cost is `None` until [`set`](Self::set).
    pub fn empty() -> Self {
        PriceTable::default()
    }

    /// The built-in list prices (as of [`DEFAULTS_AS_OF`]) for a few OpenAI and Anthropic models.
    pub fn with_defaults() -> Self {
        let mut table = PriceTable::empty();
        for (model, price) in DEFAULTS {
            table.set(model, price);
        }
        table
    }

    /// Sets (or replaces) the price of `model`.
    pub fn set(&mut self, model: impl Into<String>, price: Price) -> &mut Self {
        self.prices.insert(model.into(), price);
        self
    }

    /// Builder form of [`set`](Self::set).
    pub fn with(mut self, model: impl Into<String>, price: Price) -> Self {
        self.set(model, price);
        self
    }

    /// Adds every price of `other`, replacing those of the same models (e.g. the defaults, then
    /// a file's prices: `PriceTable::with_defaults().merged(PriceTable::load(path)?)`).
    pub fn merged(mut self, other: PriceTable) -> Self {
        self.prices.extend(other.prices);
        self
    }

    /// The models the table prices, sorted.
    pub fn models(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.prices.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Removes a model's price.
    pub fn remove(&mut self, model: &str) -> Option<Price> {
        self.prices.remove(model)
    }

    /// The price that applies to `model`, if any.
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.prices.get(model) {
            return Some(*p);
        }
        self.prices
            .iter()
            .filter(|(name, _)| {
                model
                    .strip_prefix(name.as_str())
                    .is_some_and(is_version_suffix)
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }

    /// The cost of `usage` on `model`, in USD; `None` when the model has no price.
    pub fn cost(&self, model: &str, usage: Usage) -> Option<f64> {
        self.price(model).map(|p| p.cost(usage))
    }

    /// The cost of one attempt: priced by the model that answered when the provider named one
    /// the table knows, else by the model asked for. An attempt that billed no tokens costs 0.
    pub fn attempt_cost(&self, attempt: &Attempt) -> Option<f64> {
        if attempt.usage.total() == 0 {
            return Some(0.0);
        }
        attempt
            .response_model
            .as_deref()
            .and_then(|m| self.cost(m, attempt.usage))
            .or_else(|| self.cost(&attempt.model, attempt.usage))
    }

    /// The cost of a call over all its attempts, failed ones included; `None` when any attempt
    /// that billed tokens has no price (a partial sum would understate the bill).
    pub fn call_cost(&self, attempts: &[Attempt]) -> Option<f64> {
        attempts.iter().map(|a| self.attempt_cost(a)).sum()
    }

    /// [`call_cost`](Self::call_cost) of a report's attempts: what `CallReport::cost_usd` holds.
    pub fn report_cost(&self, report: &CallReport) -> Option<f64> {
        self.call_cost(&report.attempts)
    }
}

/// `-` followed by a digit (`-2024-08-06`, `-20241022`, `-0125`), or `:`/`@` (`:8b`, `@latest`).
fn is_version_suffix(rest: &str) -> bool {
    let mut chars = rest.chars();
    match chars.next() {
        Some('-') => chars.next().is_some_and(|c| c.is_ascii_digit()),
        Some(':' | '@') => true,
        _ => false,
    }
}

/// The cost of `usage` on `model` at the built-in prices. Prefer a [`PriceTable`] you keep up to
/// date; this is for quick estimates.
pub fn cost(model: &str, usage: Usage) -> Option<f64> {
    static DEFAULT: std::sync::OnceLock<PriceTable> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(PriceTable::with_defaults)
        .cost(model, usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64) -> Usage {
        Usage::new(i, o)
    }

    #[test]
    fn suffixes_match_only_versions() {
        let t = PriceTable::with_defaults();
        assert_eq!(t.price("gpt-4o-2024-08-06"), t.price("gpt-4o"));
        assert_eq!(
            t.price("gpt-4o-mini-2024-07-18"),
            Some(Price::per_million(0.15, 0.60).with_cache_read(0.075))
        );
        assert_eq!(
            t.price("claude-3-5-haiku-20241022"),
            Some(Price::per_million(0.80, 4.00).with_cache(0.08, 1.00))
        );
        assert_eq!(t.price("gpt-4o-audio"), None);
        assert_eq!(t.price("smollm2-135m"), None);
    }

    #[test]
    fn cached_tokens_are_billed_at_the_cache_rates() {
        let t = PriceTable::with_defaults();
        // claude-sonnet-4: 3.00 in, 0.30 cache read, 3.75 cache write, 15.00 out.
        let u = Usage::new(1_000_000 + 2_000_000 + 400_000, 100_000).with_cache(2_000_000, 400_000);
        let cost = t.cost("claude-sonnet-4-20250514", u).unwrap();
        assert!((cost - (3.00 + 0.60 + 1.50 + 1.50)).abs() < 1e-9, "{cost}");
        // gpt-4o: cache writes have no rate of their own: they are input.
        let u = Usage::new(1_000_000, 0).with_cache(500_000, 500_000);
        let cost = t.cost("gpt-4o", u).unwrap();
        assert!((cost - (0.625 + 1.25)).abs() < 1e-9, "{cost}");
        // Reasoning tokens are output tokens: no second charge.
        let u = Usage::new(0, 1_000_000).with_reasoning(900_000);
        assert_eq!(t.cost("gpt-4o", u), Some(10.0));
    }

    #[test]
    fn cost_is_per_million() {
        let t = PriceTable::empty().with("m", Price::per_million(1.0, 2.0));
        assert_eq!(t.cost("m", usage(1_000_000, 500_000)), Some(2.0));
        assert_eq!(t.cost("m:latest", usage(1000, 0)), Some(0.001));
    }
}
