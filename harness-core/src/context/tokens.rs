//! Counting tokens: one [`TokenCounter`] interface, exact where the model's tokenizer is at hand.
//!
//! - [`Tiktoken`] (feature `tiktoken`): OpenAI's encodings (`o200k_base`, `cl100k_base`), from the
//!   BPE files bundled in `tiktoken-rs`: exact for OpenAI models, offline.
//! - [`LlamaCppCounter`]: asks a llama.cpp server's `/tokenize` endpoint, exact for the model it
//!   serves. Remote counting is async, so it counts ahead ([`LlamaCppCounter::prime`]) and answers
//!   [`count`](TokenCounter::count) from what it learnt, estimating (with the margin) what it was
//!   not asked before.
//! - [`HfTokenizer`] (feature `tokenizers`): any model with a local `tokenizer.json` (Hugging
//!   Face's format: Llama, Mistral, Qwen, SmolLM, …), through the `tokenizers` crate; exact.
//! - [`Estimator`]: bytes divided by a ratio, times a stated safety margin; for models whose
//!   tokenizer is not available (Anthropic's). It over-counts on purpose: a plan built on it fits.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::provider::Message;

/// Counts the tokens a text costs for one model family.
pub trait TokenCounter: Send + Sync {
    /// The counter, for reports and audit records: `estimate(3.5 B/token, +15%)`, `tiktoken:o200k_base`.
    fn name(&self) -> String;

    /// Tokens in `text`.
    fn count(&self, text: &str) -> u32;

    /// Tokens a chat message costs: its content plus the per-message framing (role markers).
    fn count_message(&self, message: &Message) -> u32 {
        self.count(&message.content)
            .saturating_add(MESSAGE_OVERHEAD)
    }
}

/// Tokens of chat framing per message (OpenAI's documented 3 for `<|start|>role\n…<|end|>`,
/// plus one to cover other templates' role markers).
pub const MESSAGE_OVERHEAD: u32 = 4;

/// An estimate from the byte length: `ceil(bytes / bytes_per_token × (1 + margin))`.
///
/// The default — 3.5 bytes per token and a 15% margin — over-counts English prose for the GPT,
/// Llama and Claude tokenizers we measured (see `docs/context.md`); code, numbers and non-Latin
/// scripts cost more tokens per byte, so raise the margin for them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimator {
    /// Average bytes per token assumed.
    pub bytes_per_token: f64,
    /// Added on top, as a fraction (0.15 = 15%).
    pub margin: f64,
}

impl Default for Estimator {
    fn default() -> Self {
        Estimator {
            bytes_per_token: 3.5,
            margin: 0.15,
        }
    }
}

impl TokenCounter for Estimator {
    fn name(&self) -> String {
        format!(
            "estimate({} B/token, +{:.0}%)",
            self.bytes_per_token,
            self.margin * 100.0
        )
    }

    fn count(&self, text: &str) -> u32 {
        if text.is_empty() {
            return 0;
        }
        let per = self.bytes_per_token.max(0.1);
        let tokens = (text.len() as f64 / per * (1.0 + self.margin.max(0.0))).ceil();
        tokens.min(f64::from(u32::MAX)) as u32
    }
}

/// OpenAI's tokenizers (feature `tiktoken`), from the BPE files bundled with `tiktoken-rs`.
#[cfg(feature = "tiktoken")]
pub struct Tiktoken {
    bpe: tiktoken_rs::CoreBPE,
    encoding: &'static str,
}

#[cfg(feature = "tiktoken")]
impl Tiktoken {
    /// `o200k_base` (GPT-4o, GPT-4.1, o-series).
    pub fn o200k() -> Tiktoken {
        Tiktoken {
            bpe: tiktoken_rs::o200k_base_singleton().clone(),
            encoding: "o200k_base",
        }
    }

    /// `cl100k_base` (GPT-4, GPT-3.5).
    pub fn cl100k() -> Tiktoken {
        Tiktoken {
            bpe: tiktoken_rs::cl100k_base_singleton().clone(),
            encoding: "cl100k_base",
        }
    }

    /// The encoding of an OpenAI model name, or `None` for a model tiktoken does not know.
    pub fn for_model(model: &str) -> Option<Tiktoken> {
        match tiktoken_rs::tokenizer::get_tokenizer(model)? {
            tiktoken_rs::tokenizer::Tokenizer::O200kBase => Some(Tiktoken::o200k()),
            tiktoken_rs::tokenizer::Tokenizer::Cl100kBase => Some(Tiktoken::cl100k()),
            _ => None,
        }
    }
}

#[cfg(feature = "tiktoken")]
impl TokenCounter for Tiktoken {
    fn name(&self) -> String {
        format!("tiktoken:{}", self.encoding)
    }

    fn count(&self, text: &str) -> u32 {
        let n = self.bpe.encode_ordinary(text).len();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// Why a local `tokenizer.json` could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("loading the tokenizer {path}: {reason}")]
pub struct TokenizerFileError {
    /// The file.
    pub path: String,
    /// What was wrong (unreadable, not a tokenizer, an unsupported model type).
    pub reason: String,
}

/// A Hugging Face `tokenizer.json` (feature `tokenizers`): exact counts for the model it ships with.
///
/// ```no_run
/// # #[cfg(feature = "tokenizers")] {
/// use harness_core::context::{TokenCounter, tokens::HfTokenizer};
/// let counter = HfTokenizer::from_file("models/SmolLM2-135M/tokenizer.json")?;
/// assert!(counter.count("The quick brown fox") > 0);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "tokenizers")]
pub struct HfTokenizer {
    tokenizer: tokenizers::Tokenizer,
    name: String,
}

#[cfg(feature = "tokenizers")]
impl HfTokenizer {
    /// Loads `path`. A missing, unreadable or malformed file is a [`TokenizerFileError`] naming
    /// the file and what was wrong; nothing panics.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<HfTokenizer, TokenizerFileError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| TokenizerFileError {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let tokenizer = HfTokenizer::from_bytes(&bytes, &shown)?;
        Ok(tokenizer)
    }

    /// Loads a `tokenizer.json` already in memory; `name` shows in [`TokenCounter::name`].
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<HfTokenizer, TokenizerFileError> {
        let tokenizer =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| TokenizerFileError {
                path: name.to_owned(),
                reason: format!("not a tokenizer.json the tokenizers crate can read: {e}"),
            })?;
        Ok(HfTokenizer {
            tokenizer,
            name: format!("tokenizer.json:{name}"),
        })
    }
}

#[cfg(feature = "tokenizers")]
impl TokenCounter for HfTokenizer {
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Tokens without the model's special tokens (BOS/EOS): the chat framing is counted by
    /// [`count_message`](TokenCounter::count_message). A text the tokenizer cannot encode (it
    /// has no unknown token for a character) is estimated instead, never a panic.
    fn count(&self, text: &str) -> u32 {
        match self.tokenizer.encode_fast(text, false) {
            Ok(encoding) => u32::try_from(encoding.len()).unwrap_or(u32::MAX),
            Err(_) => Estimator::default().count(text),
        }
    }
}

/// Why a remote tokenizer could not count.
#[derive(Debug, thiserror::Error)]
#[error("tokenizing with {url}: {reason}")]
pub struct TokenizeError {
    /// The endpoint.
    pub url: String,
    /// What went wrong (status, transport error, an answer without `tokens`).
    pub reason: String,
}

/// A llama.cpp server's `/tokenize` endpoint: exact counts for the model it serves.
pub struct LlamaCppCounter {
    client: reqwest::Client,
    url: String,
    known: RwLock<HashMap<u64, u32>>,
    fallback: Estimator,
}

impl LlamaCppCounter {
    /// The server at `base_url` (`http://127.0.0.1:8089`, with or without a trailing `/v1`).
    pub fn new(base_url: &str) -> LlamaCppCounter {
        let base = base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        LlamaCppCounter {
            client: reqwest::Client::new(),
            url: format!("{base}/tokenize"),
            known: RwLock::new(HashMap::new()),
            fallback: Estimator::default(),
        }
    }

    /// Asks the server for the exact count of `text` (and remembers it).
    pub async fn count_exact(&self, text: &str) -> Result<u32, TokenizeError> {
        let fail = |reason: String| TokenizeError {
            url: self.url.clone(),
            reason,
        };
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "content": text, "add_special": false }).to_string())
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        let bytes = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        let body: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
        let n = body["tokens"]
            .as_array()
            .ok_or_else(|| fail("the answer has no `tokens` array".into()))?
            .len();
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if let Ok(mut known) = self.known.write() {
            known.insert(key(text), n);
        }
        Ok(n)
    }

    /// Counts every text exactly ahead of a synchronous assembly.
    pub async fn prime<'t>(
        &self,
        texts: impl IntoIterator<Item = &'t str>,
    ) -> Result<(), TokenizeError> {
        for text in texts {
            if !self.is_known(text) {
                self.count_exact(text).await?;
            }
        }
        Ok(())
    }

    fn is_known(&self, text: &str) -> bool {
        self.known
            .read()
            .is_ok_and(|known| known.contains_key(&key(text)))
    }
}

fn key(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl TokenCounter for LlamaCppCounter {
    fn name(&self) -> String {
        format!("llama.cpp:{}", self.url)
    }

    fn count(&self, text: &str) -> u32 {
        let known = self
            .known
            .read()
            .ok()
            .and_then(|known| known.get(&key(text)).copied());
        known.unwrap_or_else(|| self.fallback.count(text))
    }
}

/// Remembers the counts of another counter, by text: a session's turns and a knowledge base's
/// documents are counted once per process instead of at every assembly. Bounded: when it holds
/// `capacity` texts it starts over.
pub struct CachedCounter<C> {
    inner: C,
    known: RwLock<HashMap<u64, u32>>,
    capacity: usize,
}

impl<C: TokenCounter> CachedCounter<C> {
    /// Caches up to 65,536 texts' counts of `inner`.
    pub fn new(inner: C) -> CachedCounter<C> {
        CachedCounter {
            inner,
            known: RwLock::new(HashMap::new()),
            capacity: 1 << 16,
        }
    }
}

impl<C: TokenCounter> TokenCounter for CachedCounter<C> {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn count(&self, text: &str) -> u32 {
        let k = key(text);
        if let Some(n) = self.known.read().ok().and_then(|m| m.get(&k).copied()) {
            return n;
        }
        let n = self.inner.count(text);
        if let Ok(mut m) = self.known.write() {
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(k, n);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimator_rounds_up_with_its_margin() {
        let e = Estimator::default();
        assert_eq!(e.count(""), 0);
        assert_eq!(e.count("a"), 1);
        // 35 bytes / 3.5 = 10, +15% = 11.5 → 12.
        assert_eq!(e.count(&"x".repeat(35)), 12);
        assert!(e.name().contains("+15%"));
    }

    #[test]
    fn a_cached_counter_answers_like_its_inner_counter() {
        let c = CachedCounter::new(Estimator::default());
        for text in ["", "a", "hello world", "hello world"] {
            assert_eq!(c.count(text), Estimator::default().count(text));
        }
        assert_eq!(c.known.read().unwrap().len(), 3);
    }

    #[cfg(feature = "tiktoken")]
    #[test]
    fn tiktoken_counts_known_strings() {
        let t = Tiktoken::o200k();
        assert_eq!(t.count("hello world"), 2);
        assert_eq!(t.name(), "tiktoken:o200k_base");
        assert!(Tiktoken::for_model("gpt-4o-mini").is_some());
        assert!(Tiktoken::for_model("smollm2-135m").is_none());
    }
}
