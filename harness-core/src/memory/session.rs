//! The typed layer: a session with a state struct, committed through a store with redaction.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::types::{Commit, SessionId, SessionStore, Snapshot, StoredState, Summary, Turn};
use super::{MemoryError, Redactor, now_ms};
use crate::digest::hash_hex;
use crate::provider::Message;

/// A session's state type: serde both ways, a JSON schema (its hash guards against loading a state
/// written by another version of the struct), and a `Default` for a new session.
pub trait SessionState: Serialize + DeserializeOwned + JsonSchema + Default + Send {}

impl<T: Serialize + DeserializeOwned + JsonSchema + Default + Send> SessionState for T {}

/// The SHA-256 (hex) of `S`'s JSON schema, as stored beside each state it writes. Renaming,
/// adding, removing or retyping a field changes it; doc comments are left out of the hash.
pub fn state_schema_hash<S: JsonSchema>() -> String {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<S>();
    let mut value = serde_json::to_value(schema).unwrap_or(serde_json::Value::Null);
    strip_docs(&mut value);
    hash_hex(value.to_string().as_bytes())
}

/// Removes `description`, `title` and `$schema` (documentation, not shape) from a schema.
fn strip_docs(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for key in ["description", "title", "$schema"] {
                if map.get(key).is_some_and(serde_json::Value::is_string) {
                    map.remove(key);
                }
            }
            map.values_mut().for_each(strip_docs);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_docs),
        _ => {}
    }
}

/// A session loaded with its typed state. Change `state`, then [`Memory::commit`] it with the
/// turn it belongs to.
#[derive(Clone, Debug)]
pub struct Session<S> {
    /// The session.
    pub id: SessionId,
    /// The typed state (`S::default()` for a new session).
    pub state: S,
    /// Every turn, oldest first.
    pub turns: Vec<Turn>,
    /// Every summary, oldest first.
    pub summaries: Vec<Summary>,
    /// The task or agent the session was last handed to.
    pub owner: Option<String>,
    /// When the session expires, if it has a retention period.
    pub expires_ms: Option<u64>,
    version: u64,
}

impl<S> Session<S> {
    /// The version this copy was read at (0: never committed).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The newest summary, if any.
    pub fn summary(&self) -> Option<&Summary> {
        self.summaries.last()
    }

    /// The turns the newest summary does not cover (all of them when there is none).
    pub fn unsummarised(&self) -> &[Turn] {
        let through = self.summary().map_or(0, |s| s.through);
        let start = self.turns.partition_point(|t| t.seq <= through);
        &self.turns[start..]
    }
}

/// Sessions over a [`SessionStore`], with redaction, retention and conflict handling.
#[derive(Clone)]
pub struct Memory {
    store: Arc<dyn SessionStore>,
    redactor: Redactor,
    retention: Option<Duration>,
    max_attempts: u32,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("store", &self.store.name())
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Memory {
    /// Memory over `store`, redacting the known key formats and the API keys in this process's
    /// environment, with no retention period, trying a contended [`append`](Self::append) 8 times.
    pub fn new(store: impl SessionStore) -> Memory {
        Memory {
            store: Arc::new(store),
            redactor: Redactor::new().with_env_keys(),
            retention: None,
            max_attempts: 8,
        }
    }

    /// Uses this redactor (register the program's own secrets with [`Redactor::secret`]).
    pub fn with_redactor(mut self, redactor: Redactor) -> Memory {
        self.redactor = redactor;
        self
    }

    /// Keeps each session for `ttl` after its last commit; [`purge_expired`](Self::purge_expired)
    /// deletes it after that, and loading it finds nothing.
    pub fn with_retention(mut self, ttl: Duration) -> Memory {
        self.retention = Some(ttl);
        self
    }

    /// How many times [`append`](Self::append) tries against concurrent writers (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Memory {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The store.
    pub fn store(&self) -> &dyn SessionStore {
        &*self.store
    }

    /// Loads the session (a new, empty one if it was never committed to). A state written by a
    /// struct with another schema is [`MemoryError::StateSchemaMismatch`].
    pub async fn open<S: SessionState>(&self, id: &SessionId) -> Result<Session<S>, MemoryError> {
        self.load(id, None::<fn(&str, serde_json::Value) -> Result<S, String>>)
            .await
    }

    /// Loads the session; a state written by another schema goes through `migrate` (given the
    /// stored schema hash and JSON) instead of being an error. What `migrate` returns is the
    /// session's state from then on; it is stored at the next commit.
    pub async fn open_migrating<S: SessionState>(
        &self,
        id: &SessionId,
        migrate: impl FnOnce(&str, serde_json::Value) -> Result<S, String>,
    ) -> Result<Session<S>, MemoryError> {
        self.load(id, Some(migrate)).await
    }

    async fn load<S: SessionState>(
        &self,
        id: &SessionId,
        migrate: Option<impl FnOnce(&str, serde_json::Value) -> Result<S, String>>,
    ) -> Result<Session<S>, MemoryError> {
        let snapshot = self
            .store
            .load(id)
            .await?
            .unwrap_or_else(|| Snapshot::empty(id.clone()));
        let state = typed_state::<S>(id, snapshot.state, migrate)?;
        Ok(Session {
            id: snapshot.id,
            state,
            turns: snapshot.turns,
            summaries: snapshot.summaries,
            owner: snapshot.owner,
            expires_ms: snapshot.expires_ms,
            version: snapshot.version,
        })
    }

    /// Appends `turn` and stores `session.state`, at the version the session was read at. On
    /// success the session is updated (new turn, new version); on [`MemoryError::Conflict`] nothing
    /// changed anywhere: reload and redo, or use [`append`](Self::append).
    pub async fn commit<S: SessionState>(
        &self,
        session: &mut Session<S>,
        turn: Vec<Message>,
    ) -> Result<u64, MemoryError> {
        self.commit_with(session, Some(turn), None, None).await
    }

    /// Stores `session.state` without a turn.
    pub async fn commit_state<S: SessionState>(
        &self,
        session: &mut Session<S>,
    ) -> Result<u64, MemoryError> {
        self.commit_with(session, None, None, None).await
    }

    /// Stores a summary of the turns up to `through` beside them (the turns are kept).
    pub async fn summarise<S: SessionState>(
        &self,
        session: &mut Session<S>,
        through: u64,
        text: &str,
    ) -> Result<u64, MemoryError> {
        let text = self.redactor.text(text).into_owned();
        self.commit_with(session, None, Some((through, text)), None)
            .await
    }

    /// Hands the session (its history and typed state) to the task or agent `to`: it is recorded
    /// as the owner, and `to` opens the same id to continue.
    pub async fn hand_off<S: SessionState>(
        &self,
        session: &mut Session<S>,
        to: &str,
    ) -> Result<u64, MemoryError> {
        self.commit_with(session, None, None, Some(to.to_owned()))
            .await
    }

    /// Loads the session, lets `change` update its state and say the turn to append, and commits;
    /// when another writer got there first, waits a random moment, reloads and calls `change`
    /// again (up to the configured attempts). `change` must therefore be cheap and free of side effects: do the model call
    /// before, and pass its messages in.
    pub async fn append<S: SessionState>(
        &self,
        id: &SessionId,
        author: Option<&str>,
        mut change: impl FnMut(&mut S) -> Vec<Message>,
    ) -> Result<Session<S>, MemoryError> {
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                // Writers that collided back off for a random 0..2^n ms (n ≤ 6), so they stop
                // colliding instead of retrying in lockstep.
                let cap = 1u64 << attempt.min(6);
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..cap * 1000))).await;
            }
            let mut session = self.open::<S>(id).await?;
            let turn = change(&mut session.state);
            let commit = self.build(&session, Some(turn), None, None, author)?;
            match self.store.commit(id, commit.clone()).await {
                Ok(version) => {
                    apply(&mut session, commit, version);
                    return Ok(session);
                }
                Err(MemoryError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(MemoryError::Contended {
            session: id.to_string(),
            attempts: self.max_attempts,
        })
    }

    /// Deletes the session: turns, summaries and state. Whether it existed.
    pub async fn delete(&self, id: &SessionId) -> Result<bool, MemoryError> {
        self.store.delete(id).await
    }

    /// Deletes every session past its retention period; how many.
    pub async fn purge_expired(&self) -> Result<u64, MemoryError> {
        self.store.purge_expired(now_ms()).await
    }

    async fn commit_with<S: SessionState>(
        &self,
        session: &mut Session<S>,
        turn: Option<Vec<Message>>,
        summary: Option<(u64, String)>,
        owner: Option<String>,
    ) -> Result<u64, MemoryError> {
        let commit = self.build(session, turn, summary, owner, None)?;
        let version = self.store.commit(&session.id, commit.clone()).await?;
        apply(session, commit, version);
        Ok(version)
    }

    /// The commit for `session`'s current state plus the given changes, redacted.
    fn build<S: SessionState>(
        &self,
        session: &Session<S>,
        turn: Option<Vec<Message>>,
        summary: Option<(u64, String)>,
        owner: Option<String>,
        author: Option<&str>,
    ) -> Result<Commit, MemoryError> {
        let mut json = serde_json::to_value(&session.state).map_err(|e| MemoryError::BadState {
            session: session.id.to_string(),
            reason: e.to_string(),
        })?;
        self.redactor.json(&mut json);
        let turn = turn.map(|mut messages| {
            self.redactor.messages(&mut messages);
            messages
        });
        Ok(Commit {
            expected_version: session.version,
            turn,
            author: author.map(str::to_owned).or_else(|| session.owner.clone()),
            state: Some(StoredState {
                schema_hash: state_schema_hash::<S>(),
                json,
            }),
            owner,
            summary,
            retain_for: self.retention,
        })
    }
}

/// Brings the local copy to what the store now holds after `commit` succeeded at `version`.
fn apply<S: SessionState>(session: &mut Session<S>, commit: Commit, version: u64) {
    let now = now_ms();
    session.version = version;
    if let Some(messages) = commit.turn {
        session.turns.push(Turn {
            seq: session.turns.len() as u64 + 1,
            messages,
            author: commit.author,
            at_ms: now,
        });
    }
    if let Some((through, text)) = commit.summary {
        session.summaries.push(Summary {
            through,
            text,
            at_ms: now,
        });
    }
    if let Some(owner) = commit.owner {
        session.owner = Some(owner);
    }
    if let Some(ttl) = commit.retain_for {
        session.expires_ms = Some(now.saturating_add(ttl.as_millis() as u64));
    }
    if let Some(state) = commit.state
        && let Ok(s) = serde_json::from_value(state.json)
    {
        session.state = s;
    }
}

/// The typed state of a loaded session.
fn typed_state<S: SessionState>(
    id: &SessionId,
    stored: Option<StoredState>,
    migrate: Option<impl FnOnce(&str, serde_json::Value) -> Result<S, String>>,
) -> Result<S, MemoryError> {
    let Some(stored) = stored else {
        return Ok(S::default());
    };
    let expected = state_schema_hash::<S>();
    let bad = |reason: String| MemoryError::BadState {
        session: id.to_string(),
        reason,
    };
    if stored.schema_hash == expected {
        return serde_json::from_value(stored.json).map_err(|e| bad(e.to_string()));
    }
    let Some(migrate) = migrate else {
        return Err(MemoryError::StateSchemaMismatch {
            session: id.to_string(),
            stored: stored.schema_hash,
            expected,
        });
    };
    migrate(&stored.schema_hash, stored.json).map_err(|reason| {
        bad(format!(
            "migration from schema {}: {reason}",
            stored.schema_hash
        ))
    })
}
