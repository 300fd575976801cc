//! What can go wrong with memory, each case saying what was wrong and where.

/// An error from a session store or the typed layer above it. Nothing committed is lost by any of
/// them: a failed commit changed nothing, and the caller still holds what it tried to write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// Another writer committed to the session first. Reload and try again.
    #[error(
        "session `{session}` is at version {found}, not {expected}: another writer committed first (reload and retry)"
    )]
    Conflict {
        /// The session.
        session: String,
        /// The version the writer read.
        expected: u64,
        /// The version the store has.
        found: u64,
    },
    /// The session's state was written by a type with a different schema, and no migration was given.
    #[error(
        "the state of session `{session}` was written by a type whose schema hash is {stored}, not {expected} (this type's): load it with `open_migrating` and a migration"
    )]
    StateSchemaMismatch {
        /// The session.
        session: String,
        /// The hash stored with the state.
        stored: String,
        /// The hash of the type asked for.
        expected: String,
    },
    /// The stored state (or a migration's result) does not deserialise into the type asked for.
    #[error("the state of session `{session}` does not fit its type: {reason}")]
    BadState {
        /// The session.
        session: String,
        /// What serde said.
        reason: String,
    },
    /// The database's memory tables were written by a newer harness.
    #[error(
        "{store}: memory tables of format {found}, newer than this build's {supported}: upgrade harness to read them"
    )]
    NewerFormat {
        /// The store.
        store: String,
        /// The format the tables say.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// A row that cannot be read back (a turn's messages that are not JSON, a negative version).
    #[error("{store}: corrupt row for session `{session}`: {reason}")]
    Corrupt {
        /// The store.
        store: String,
        /// The session.
        session: String,
        /// What was wrong.
        reason: String,
    },
    /// A session id outside the allowed alphabet or length.
    #[error("invalid session id {0:?}: use 1 to 128 ASCII letters, digits or `. _ : @ -`")]
    InvalidId(String),
    /// The database could not be opened, read or written (locked past the busy timeout, disk
    /// full, connection lost, permissions).
    #[error("{store}: {operation}: {reason}")]
    Store {
        /// The store.
        store: String,
        /// What was being done.
        operation: &'static str,
        /// What the database said.
        reason: String,
    },
    /// A concurrent writer kept winning: [`Memory::append`](super::Memory::append) gave up.
    #[error("session `{session}`: gave up after {attempts} conflicting commits")]
    Contended {
        /// The session.
        session: String,
        /// How many commits were tried.
        attempts: u32,
    },
}
