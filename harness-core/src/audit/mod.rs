//! The audit trail: one record per call, hash-chained sinks, a verifier, and replay.
//!
//! Every finished call becomes one [`AuditRecord`]: what was asked (the exact first request, or
//! its hashes under a [`MessagePolicy`]), every attempt's raw output, validation errors and
//! repairs, every contract step, the outcome, usage, cost and timing. Each record carries the
//! previous record's hash (`prev_hash`) and its own (`hash`, SHA-256 over the record's canonical
//! JSON without `hash`), so changing, removing or reordering a record breaks the chain where it
//! happened, and [`verify_jsonl`] says where.
//!
//! ```no_run
//! use harness_core::audit::{JsonlSink, verify_jsonl};
//! # fn demo(builder: harness_core::HarnessBuilder) -> Result<(), Box<dyn std::error::Error>> {
//! let harness = builder.observer(JsonlSink::open("audit.jsonl")?).build()?;
//! // ... calls ...
//! let report = verify_jsonl("audit.jsonl")?;
//! assert!(report.chain_ok(), "{report}");
//! # Ok(()) }
//! ```
//!
//! Replay turns recorded calls into tests: [`replay`] sends a record's request again and diffs
//! the answers; [`ReplayProvider`] answers requests from records,
//! offline. [`reproduce`] rebuilds every attempt's exact request from a record, checks it
//! against the recorded fingerprint, re-runs the call and compares the outputs field by field;
//! [`find`] picks records by task, time, input hash and outcome.

mod canonical;
mod chain;
mod find;
mod jsonl;
mod record;
mod replay;
mod replay_provider;
pub mod reproduce;
mod sink;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod verify;

pub(crate) use canonical::rfc3339;
pub use canonical::{canonical_json, hash_hex};
pub use find::{BadTime, Filter, Found, FoundTable, MIN_HASH_PREFIX, TimeBound, find};
pub use jsonl::{JsonlSink, JsonlStore};
pub use record::{
    AuditRecord, GENESIS_HASH, MessagePolicy, RECORD_VERSION, RecordedAction, RecordedAttempt,
    RecordedInput, RecordedMessage, RecordedOutcome, RecordedPlan, RecordedRequest,
    RecordedViolation,
};
pub use replay::{
    Difference, ReplayError, ReplayResult, diff_json, replay, replay_with, request_fingerprint,
};
pub use replay_provider::ReplayProvider;
pub use sink::{AuditSink, AuditStore, Fsync, SinkOptions};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteSink, SqliteStore, read_sqlite, verify_sqlite};
pub use store::{find_record, read_jsonl, read_path, verify_jsonl, verify_path};
pub use verify::{BreakKind, ChainBreak, TornTail, VerifyReport, verify_reader};
