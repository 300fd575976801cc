//! [`Usage`]: the tokens one attempt billed, split the way providers bill them.

use serde::{Deserialize, Serialize};

/// Tokens billed for one attempt (or summed over a call's attempts, failed ones included).
///
/// `input_tokens` is every prompt token, cached or not: what token limits count, and what a
/// price applies to. `cache_read_tokens` and `cache_write_tokens` say how many of them were read
/// from or written to the provider's prompt cache (priced at the cache rates when the
/// [`Price`](crate::outcome::pricing::Price) has them); `reasoning_tokens` how many of the
/// `output_tokens` the model spent reasoning. Build one with [`Usage::new`] (fields may be added):
///
/// ```
/// use harness_core::Usage;
/// let u = Usage::new(1_200, 80).with_cache(1_000, 0).with_reasoning(30);
/// assert_eq!((u.uncached_input_tokens(), u.total()), (200, 1_280));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    // Fields in name order: audit records serialize straight into their canonical (sorted-key)
    // form, which they are hashed in.
    /// Of `input_tokens`, those read from the prompt cache (Anthropic's
    /// `cache_read_input_tokens`, OpenAI's `prompt_tokens_details.cached_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Of `input_tokens`, those written to the prompt cache (Anthropic's
    /// `cache_creation_input_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Completion tokens, reasoning ones included.
    pub output_tokens: u64,
    /// Of `output_tokens`, those spent reasoning (OpenAI's
    /// `completion_tokens_details.reasoning_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
}

// Zero counts are left out of JSON, so records written before these fields hash the same.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// `input` prompt and `output` completion tokens, nothing cached.
    pub const fn new(input: u64, output: u64) -> Self {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
        }
    }

    /// With `read` of the input tokens read from the prompt cache and `write` written to it.
    pub const fn with_cache(mut self, read: u64, write: u64) -> Self {
        self.cache_read_tokens = read;
        self.cache_write_tokens = write;
        self
    }

    /// With `n` of the output tokens spent reasoning.
    pub const fn with_reasoning(mut self, n: u64) -> Self {
        self.reasoning_tokens = n;
        self
    }

    /// Input and output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Input tokens neither read from nor written to the cache: those billed at the input rate.
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_tokens)
            .saturating_sub(self.cache_write_tokens)
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Usage) {
        self.input_tokens = self.input_tokens.saturating_add(rhs.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(rhs.output_tokens);
        self.cache_read_tokens = self.cache_read_tokens.saturating_add(rhs.cache_read_tokens);
        self.cache_write_tokens = self
            .cache_write_tokens
            .saturating_add(rhs.cache_write_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(rhs.reasoning_tokens);
    }
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(mut self, rhs: Usage) -> Usage {
        self += rhs;
        self
    }
}

impl std::iter::Sum for Usage {
    fn sum<I: Iterator<Item = Usage>>(iter: I) -> Usage {
        iter.fold(Usage::default(), |a, b| a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_cache_counts_stay_out_of_json_and_old_json_reads() {
        let plain = Usage::new(3, 4);
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"input_tokens":3,"output_tokens":4}"#
        );
        let old: Usage = serde_json::from_str(r#"{"input_tokens":3,"output_tokens":4}"#).unwrap();
        assert_eq!(old, plain);
        let cached = Usage::new(10, 4).with_cache(6, 2).with_reasoning(1);
        // Keys in sorted order: the canonical form audit records are hashed in.
        assert_eq!(
            serde_json::to_string(&cached).unwrap(),
            r#"{"cache_read_tokens":6,"cache_write_tokens":2,"input_tokens":10,"output_tokens":4,"reasoning_tokens":1}"#
        );
        let back: Usage = serde_json::from_str(&serde_json::to_string(&cached).unwrap()).unwrap();
        assert_eq!(back, cached);
        assert_eq!(cached.uncached_input_tokens(), 2);
    }

    #[test]
    fn sums_add_every_count() {
        let total: Usage = [
            Usage::new(10, 1).with_cache(5, 0),
            Usage::new(7, 2).with_cache(0, 7).with_reasoning(2),
        ]
        .into_iter()
        .sum();
        assert_eq!(total, Usage::new(17, 3).with_cache(5, 7).with_reasoning(2));
    }
}
