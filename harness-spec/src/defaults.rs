//! Durations and bounds a contract gets when it does not say otherwise. The macro resolves them at
//! compile time and the runtime's `Backoff::DEFAULT` is built from them.

/// The per-attempt timeout of a task that declares none (30 s).
pub const TIMEOUT_MS: u64 = 30_000;

/// The delay before the first retry (200 ms, before jitter).
pub const BACKOFF_INITIAL_MS: u64 = 200;

/// The longest single delay between retries (10 s).
pub const BACKOFF_MAX_MS: u64 = 10_000;

/// How much each delay grows over the previous one.
pub const BACKOFF_MULTIPLIER: f64 = 2.0;

/// Whether delays are drawn uniformly from `0..=computed` (full jitter).
pub const BACKOFF_JITTER: bool = true;

/// The most documents a declared context source contributes when it does not say (5).
pub const SOURCE_LIMIT: u32 = 5;

/// How long one fetch of a declared context source may take when it does not say (2 s).
pub const SOURCE_TIMEOUT_MS: u64 = 2_000;

/// The version of the compact notation a prompt shows an output type in (harness-core's
/// `contract::notation`). `#[llm_task]` hashes it into every contract version
/// (`output_notation=notation-1`), so a change of what prompts show changes the versions.
pub const OUTPUT_NOTATION: &str = "notation-1";
