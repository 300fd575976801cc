//! What a store keeps and the one interface every store implements.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::MemoryError;
use crate::provider::{BoxFuture, Message};

/// A session's name: 1 to 128 characters of ASCII letters, digits and `. _ : @ -`.
///
/// The alphabet keeps ids safe in file names, URLs, log lines and SQL without quoting.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SessionId {
    type Err = MemoryError;

    fn from_str(s: &str) -> Result<Self, MemoryError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "._:@-".contains(c);
        if s.is_empty() || s.len() > 128 || !s.chars().all(ok_char) {
            return Err(MemoryError::InvalidId(s.chars().take(140).collect()));
        }
        Ok(SessionId(s.to_owned()))
    }
}

impl TryFrom<String> for SessionId {
    type Error = MemoryError;
    fn try_from(s: String) -> Result<Self, MemoryError> {
        s.parse()
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One exchange of a session, kept whole: the user's message, the assistant's answer, and any
/// messages between them. A context plan drops whole turns, never a part of one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// 1 for the first turn of the session, then 2, 3, ... with no gaps.
    pub seq: u64,
    /// The messages, in order.
    pub messages: Vec<Message>,
    /// The task or agent that wrote the turn, if it said.
    pub author: Option<String>,
    /// When it was committed, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// A summary of the turns up to and including `through`, written when they no longer fit a
/// budget. The turns it summarises are kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The last turn it covers.
    pub through: u64,
    /// The summary.
    pub text: String,
    /// When it was written, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// A session's state as stored: its JSON and the hash of the JSON schema of the type that wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredState {
    /// `state_schema_hash` of the type that wrote it.
    pub schema_hash: String,
    /// The value.
    pub json: serde_json::Value,
}

/// A session as loaded from a store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The session.
    pub id: SessionId,
    /// Its version: 0 before the first commit, then one more per commit.
    pub version: u64,
    /// The task or agent the session was last handed to.
    pub owner: Option<String>,
    /// The state, if one was ever committed.
    pub state: Option<StoredState>,
    /// Every turn, oldest first.
    pub turns: Vec<Turn>,
    /// Every summary, oldest first.
    pub summaries: Vec<Summary>,
    /// When the session was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When it was last committed to.
    pub updated_ms: u64,
    /// When it expires (it is deleted by the next purge after that), if it has a retention period.
    pub expires_ms: Option<u64>,
}

impl Snapshot {
    /// A session that was never committed to.
    pub fn empty(id: SessionId) -> Snapshot {
        Snapshot {
            id,
            version: 0,
            owner: None,
            state: None,
            turns: Vec::new(),
            summaries: Vec::new(),
            created_ms: 0,
            updated_ms: 0,
            expires_ms: None,
        }
    }
}

/// One change to a session, applied only if the session is still at `expected_version`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Commit {
    /// The version the writer read (0 for a new session).
    pub expected_version: u64,
    /// The messages of the turn to append, if any (numbered by the store).
    pub turn: Option<Vec<Message>>,
    /// Who wrote the turn.
    pub author: Option<String>,
    /// The new state, if it changed.
    pub state: Option<StoredState>,
    /// Hand the session to this task or agent.
    pub owner: Option<String>,
    /// A summary to store beside the turns it covers.
    pub summary: Option<(u64, String)>,
    /// Keep the session this long after this commit (each commit renews it).
    pub retain_for: Option<Duration>,
}

/// A place sessions are kept. Implementations must apply a [`Commit`] atomically and only at its
/// expected version, and must have made it durable when `commit` returns `Ok`.
pub trait SessionStore: Send + Sync + 'static {
    /// The store, for messages: `sqlite:/path/to.db`, `postgres:host:port/db`.
    fn name(&self) -> String;

    /// The session, or `None` if it was never committed to (or was deleted or has expired).
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, MemoryError>>;

    /// Applies `commit`; the new version, or [`MemoryError::Conflict`] if another writer got
    /// there first.
    fn commit<'a>(
        &'a self,
        id: &'a SessionId,
        commit: Commit,
    ) -> BoxFuture<'a, Result<u64, MemoryError>>;

    /// Deletes the session with its turns, summaries and state; whether it existed.
    fn delete<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, MemoryError>>;

    /// Deletes every session that expired before `now_ms`; how many.
    fn purge_expired(&self, now_ms: u64) -> BoxFuture<'_, Result<u64, MemoryError>>;
}

impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, MemoryError>> {
        (**self).load(id)
    }
    fn commit<'a>(
        &'a self,
        id: &'a SessionId,
        commit: Commit,
    ) -> BoxFuture<'a, Result<u64, MemoryError>> {
        (**self).commit(id, commit)
    }
    fn delete<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, MemoryError>> {
        (**self).delete(id)
    }
    fn purge_expired(&self, now_ms: u64) -> BoxFuture<'_, Result<u64, MemoryError>> {
        (**self).purge_expired(now_ms)
    }
}
