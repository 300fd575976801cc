//! Memory: sessions of turns with a typed state, persisted across calls, processes and hand-offs.
//!
//! A **session** is a numbered list of [`Turn`]s (the messages of one exchange, kept whole: a turn is
//! the smallest unit a context plan drops), the [`Summary`]s written over older turns (stored beside
//! the originals, which are kept), and one typed state value (`serde`, with the hash of its JSON
//! schema). Every change is a [`Commit`] against the version the writer read: a store applies it
//! only if the session is still at that version (compare-and-swap), so two processes appending to
//! one session never lose or fork a turn — the second one gets [`MemoryError::Conflict`], reloads,
//! and tries again ([`Memory::append`] does that for you).
//!
//! Stores: [`sqlite::SqliteMemory`] (feature `sqlite`: embedded, WAL, a commit is durable before
//! the call returns) and [`postgres::PostgresMemory`] (feature `postgres`: several instances on one
//! database). Both implement [`SessionStore`]; one test suite runs against both.
//!
//! Secrets never enter memory: every message and every string of the state passes through a
//! [`Redactor`] (known key formats, plus the exact secrets you register) before it is stored.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use harness_core::memory::{Memory, sqlite::SqliteMemory};
//! use harness_core::provider::Message;
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! struct Cart { items: Vec<String> }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("harness-memory-doc-{}", std::process::id()));
//! let memory = Memory::new(SqliteMemory::open(dir.join("memory.db")).unwrap());
//! let id = "customer-42".parse().unwrap();
//! let mut session = memory.open::<Cart>(&id).await.unwrap();
//! session.state.items.push("kettle".into());
//! memory
//!     .commit(&mut session, vec![Message::user("add a kettle"), Message::assistant("Added.")])
//!     .await
//!     .unwrap();
//! let again = memory.open::<Cart>(&id).await.unwrap();
//! assert_eq!(again.turns.len(), 1);
//! assert_eq!(again.state.items, ["kettle"]);
//! # std::fs::remove_dir_all(&dir).ok();
//! # });
//! # }
//! ```

mod error;
mod redact;
mod rows;
mod session;
mod types;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use error::MemoryError;
pub use redact::Redactor;
pub use session::{Memory, Session, SessionState, state_schema_hash};
pub use types::{Commit, SessionId, SessionStore, Snapshot, StoredState, Summary, Turn};

/// The on-disk format of the memory tables this build writes. A database whose tables say a
/// higher number was written by a newer harness: opening it is [`MemoryError::NewerFormat`].
pub const FORMAT: u32 = 1;

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
