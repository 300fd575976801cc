//! The embedded session store (feature `sqlite`): one SQLite file, WAL, nothing to start.
//!
//! Tables `harness_sessions`, `harness_turns`, `harness_summaries` and `harness_memory_format`.
//! A commit is one `BEGIN IMMEDIATE` transaction that checks the session's version, appends, and
//! commits with `synchronous = FULL` (by default), so it is on disk before `commit` returns and a
//! process killed at any point loses no committed turn. Several processes may open one file: the
//! write lock and the version check keep them from forking a session; a writer that waits longer
//! than the busy timeout (5 s by default) gets [`MemoryError::Store`].

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::rows::{self, Reader, SessionRow, SummaryRow, TurnRow};
use super::types::{Commit, SessionId, SessionStore, Snapshot};
use super::{FORMAT, MemoryError, now_ms};
use crate::provider::BoxFuture;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS harness_memory_format (format INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS harness_sessions (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    owner TEXT,
    state TEXT,
    state_schema TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    expires_ms INTEGER
);
CREATE INDEX IF NOT EXISTS harness_sessions_expiry ON harness_sessions(expires_ms);
CREATE TABLE IF NOT EXISTS harness_turns (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    author TEXT,
    at_ms INTEGER NOT NULL,
    messages TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS harness_summaries (
    session_id TEXT NOT NULL,
    through INTEGER NOT NULL,
    text TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (session_id, through)
);";

/// How durable a SQLite commit is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = FULL`: each commit is fsynced; survives a process kill and a power loss.
    #[default]
    Fsync,
    /// `synchronous = NORMAL` under WAL: survives a process kill; a power loss may undo the last
    /// commits (never corrupts the file). About an fsync faster per commit.
    Os,
}

/// Options for [`SqliteMemory::open_with`].
#[derive(Clone, Copy, Debug)]
pub struct SqliteOptions {
    /// How durable a commit is.
    pub durability: Durability,
    /// How long a writer waits for another process's write lock before failing.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Fsync,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Sessions in one SQLite file.
#[derive(Clone)]
pub struct SqliteMemory {
    conn: Arc<Mutex<Connection>>,
    name: Arc<str>,
}

impl SqliteMemory {
    /// Opens (or creates, with the folders above it) the database at `path`, with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteMemory, MemoryError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (or creates) the database at `path`. A file that is not a SQLite database, is locked
    /// past the busy timeout, or holds memory tables of a newer format is a typed error.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteMemory, MemoryError> {
        let path = path.as_ref();
        let name: Arc<str> = format!("sqlite:{}", path.display()).into();
        let fail = |operation: &'static str| {
            let name = name.clone();
            move |e: rusqlite::Error| store_error(&name, operation, e)
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| MemoryError::Store {
                store: name.to_string(),
                operation: "creating the folder",
                reason: e.to_string(),
            })?;
        }
        let conn = Connection::open(path).map_err(fail("opening"))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(fail("setting the busy timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail("switching to WAL"))?;
        let sync = match options.durability {
            Durability::Fsync => "FULL",
            Durability::Os => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(fail("setting synchronous"))?;
        conn.execute_batch(SCHEMA)
            .map_err(fail("creating the tables"))?;
        let found: Option<i64> = conn
            .query_row("SELECT max(format) FROM harness_memory_format", [], |r| {
                r.get(0)
            })
            .map_err(fail("reading the format"))?;
        rows::check_format(&name, found)?;
        if found.is_none() {
            conn.execute(
                "INSERT INTO harness_memory_format (format) VALUES (?1)",
                [FORMAT],
            )
            .map_err(fail("recording the format"))?;
        }
        Ok(SqliteMemory {
            conn: Arc::new(Mutex::new(conn)),
            name,
        })
    }

    /// Runs `f` on the connection off the async threads.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &str) -> Result<T, MemoryError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, MemoryError>> {
        let conn = self.conn.clone();
        let name = self.name.clone();
        Box::pin(async move {
            let task = tokio::task::spawn_blocking(move || {
                // A panic while holding the lock cannot leave a half-written transaction behind
                // (SQLite rolls it back), so a poisoned lock is safe to take over.
                let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                f(&mut conn, &name)
            });
            task.await.map_err(|e| MemoryError::Store {
                store: "sqlite".into(),
                operation: "running a query",
                reason: e.to_string(),
            })?
        })
    }
}

fn store_error(store: &str, operation: &'static str, e: rusqlite::Error) -> MemoryError {
    MemoryError::Store {
        store: store.to_owned(),
        operation,
        reason: e.to_string(),
    }
}

impl SessionStore for SqliteMemory {
    fn name(&self) -> String {
        self.name.to_string()
    }

    fn load<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, MemoryError>> {
        let id = id.clone();
        self.run(move |conn, name| load(conn, name, &id))
    }

    fn commit<'a>(
        &'a self,
        id: &'a SessionId,
        commit: Commit,
    ) -> BoxFuture<'a, Result<u64, MemoryError>> {
        let id = id.clone();
        self.run(move |conn, name| apply(conn, name, &id, commit))
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, MemoryError>> {
        let id = id.clone();
        self.run(move |conn, name| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| store_error(name, "starting a delete", e))?;
            let n = delete_rows(&tx, id.as_str()).map_err(|e| store_error(name, "deleting", e))?;
            tx.commit()
                .map_err(|e| store_error(name, "committing a delete", e))?;
            Ok(n > 0)
        })
    }

    fn purge_expired(&self, now_ms: u64) -> BoxFuture<'_, Result<u64, MemoryError>> {
        self.run(move |conn, name| {
            let fail = |e| store_error(name, "purging expired sessions", e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            let ids: Vec<String> = {
                let mut stmt = tx
                    .prepare("SELECT id FROM harness_sessions WHERE expires_ms < ?1")
                    .map_err(fail)?;
                let rows = stmt
                    .query_map([rows::signed(now_ms)], |r| r.get(0))
                    .map_err(fail)?;
                rows.collect::<Result<_, _>>().map_err(fail)?
            };
            for id in &ids {
                delete_rows(&tx, id).map_err(fail)?;
            }
            tx.commit().map_err(fail)?;
            Ok(ids.len() as u64)
        })
    }
}

fn delete_rows(tx: &rusqlite::Transaction<'_>, id: &str) -> rusqlite::Result<usize> {
    tx.execute("DELETE FROM harness_turns WHERE session_id = ?1", [id])?;
    tx.execute("DELETE FROM harness_summaries WHERE session_id = ?1", [id])?;
    tx.execute("DELETE FROM harness_sessions WHERE id = ?1", [id])
}

fn load(
    conn: &mut Connection,
    name: &str,
    id: &SessionId,
) -> Result<Option<Snapshot>, MemoryError> {
    let fail = |e| store_error(name, "loading a session", e);
    let tx = conn.transaction().map_err(fail)?;
    let Some(row) = session_row(&tx, id.as_str()).map_err(fail)? else {
        return Ok(None);
    };
    if row.expires_ms.is_some_and(|e| e < rows::signed(now_ms())) {
        return Ok(None);
    }
    let turns = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT seq, author, at_ms, messages FROM harness_turns WHERE session_id = ?1 ORDER BY seq",
            )
            .map_err(fail)?;
        let rows = stmt
            .query_map([id.as_str()], |r| {
                Ok(TurnRow {
                    seq: r.get(0)?,
                    author: r.get(1)?,
                    at_ms: r.get(2)?,
                    messages: r.get(3)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(fail)?
    };
    let summaries = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT through, text, at_ms FROM harness_summaries WHERE session_id = ?1 ORDER BY through",
            )
            .map_err(fail)?;
        let rows = stmt
            .query_map([id.as_str()], |r| {
                Ok(SummaryRow {
                    through: r.get(0)?,
                    text: r.get(1)?,
                    at_ms: r.get(2)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(fail)?
    };
    Reader { store: name, id }
        .snapshot(row, turns, summaries)
        .map(Some)
}

fn session_row(tx: &rusqlite::Transaction<'_>, id: &str) -> rusqlite::Result<Option<SessionRow>> {
    tx.query_row(
        "SELECT version, owner, state, state_schema, created_ms, updated_ms, expires_ms
         FROM harness_sessions WHERE id = ?1",
        [id],
        |r| {
            Ok(SessionRow {
                version: r.get(0)?,
                owner: r.get(1)?,
                state: r.get(2)?,
                state_schema: r.get(3)?,
                created_ms: r.get(4)?,
                updated_ms: r.get(5)?,
                expires_ms: r.get(6)?,
            })
        },
    )
    .optional()
}

/// One commit: check the version under the write lock, then write everything, then commit.
fn apply(conn: &mut Connection, name: &str, id: &SessionId, c: Commit) -> Result<u64, MemoryError> {
    let fail = |e| store_error(name, "committing", e);
    let now = now_ms();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let mut found = session_row(&tx, id.as_str()).map_err(fail)?;
    if found
        .as_ref()
        .is_some_and(|r| r.expires_ms.is_some_and(|e| e < rows::signed(now)))
    {
        delete_rows(&tx, id.as_str()).map_err(fail)?;
        found = None;
    }
    let version = found.as_ref().map_or(0, |r| r.version);
    if version != rows::signed(c.expected_version) {
        return Err(MemoryError::Conflict {
            session: id.to_string(),
            expected: c.expected_version,
            found: u64::try_from(version).unwrap_or(0),
        });
    }
    let next = version + 1;
    let (state, schema) = match c.state {
        Some(s) => (Some(s.json.to_string()), Some(s.schema_hash)),
        None => (None, None),
    };
    let expires = rows::expiry(now, c.retain_for);
    tx.execute(
        "INSERT INTO harness_sessions (id, version, owner, state, state_schema, created_ms, updated_ms, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET
            version = excluded.version,
            owner = coalesce(excluded.owner, harness_sessions.owner),
            state = coalesce(excluded.state, harness_sessions.state),
            state_schema = coalesce(excluded.state_schema, harness_sessions.state_schema),
            updated_ms = excluded.updated_ms,
            expires_ms = excluded.expires_ms",
        params![id.as_str(), next, c.owner, state, schema, rows::signed(now), expires],
    )
    .map_err(fail)?;
    if let Some(messages) = c.turn {
        let seq: i64 = tx
            .query_row(
                "SELECT coalesce(max(seq), 0) + 1 FROM harness_turns WHERE session_id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .map_err(fail)?;
        tx.execute(
            "INSERT INTO harness_turns (session_id, seq, author, at_ms, messages) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id.as_str(), seq, c.author, rows::signed(now), rows::messages_json(&messages)],
        )
        .map_err(fail)?;
    }
    if let Some((through, text)) = c.summary {
        tx.execute(
            "INSERT OR REPLACE INTO harness_summaries (session_id, through, text, at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![id.as_str(), rows::signed(through), text, rows::signed(now)],
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)?;
    Ok(u64::try_from(next).unwrap_or(0))
}
