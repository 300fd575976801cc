//! The shared session store (feature `postgres`): several harness instances on one PostgreSQL.
//!
//! The same tables as the SQLite store. A commit is one transaction that locks the session's row
//! (`SELECT … FOR UPDATE`), checks its version, appends and commits; a new session is inserted with
//! `ON CONFLICT DO NOTHING`, so two instances creating one session at once see one win and one
//! [`MemoryError::Conflict`]. PostgreSQL's default `synchronous_commit = on` makes a commit durable
//! before it returns. A lost connection is re-opened at the next operation.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Transaction};

use super::rows::{self, Reader, SessionRow, SummaryRow, TurnRow};
use super::types::{Commit, SessionId, SessionStore, Snapshot};
use super::{FORMAT, MemoryError, now_ms};
use crate::provider::BoxFuture;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS harness_memory_format (format INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS harness_sessions (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    owner TEXT,
    state TEXT,
    state_schema TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    expires_ms BIGINT
);
CREATE INDEX IF NOT EXISTS harness_sessions_expiry ON harness_sessions(expires_ms);
CREATE TABLE IF NOT EXISTS harness_turns (
    session_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    author TEXT,
    at_ms BIGINT NOT NULL,
    messages TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS harness_summaries (
    session_id TEXT NOT NULL,
    through BIGINT NOT NULL,
    text TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (session_id, through)
);";

/// Sessions in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresMemory {
    config: Arc<str>,
    client: Arc<Mutex<Option<Client>>>,
    name: Arc<str>,
}

fn store_error(store: &str, operation: &'static str, e: tokio_postgres::Error) -> MemoryError {
    MemoryError::Store {
        store: store.to_owned(),
        operation,
        reason: reason(&e),
    }
}

/// What went wrong, in words: `Error`'s Display is terse ("db error"); the database's own
/// message is in `as_db_error`.
pub(crate) fn reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

impl PostgresMemory {
    /// Connects with a libpq-style connection string (`host=127.0.0.1 port=5432 user=… dbname=…`
    /// or a `postgres://` URL; no TLS), creates the tables if needed, and checks their format.
    /// The password, if any, is never part of the store's name or its errors.
    pub async fn connect(config: &str) -> Result<PostgresMemory, MemoryError> {
        let name: Arc<str> = format!("postgres:{}", describe(config)).into();
        let store = PostgresMemory {
            config: config.into(),
            client: Arc::new(Mutex::new(None)),
            name,
        };
        let mut guard = store.client().await?;
        let client = guard.as_mut().ok_or_else(|| store.closed())?;
        let fail = |op| {
            let name = store.name.clone();
            move |e| store_error(&name, op, e)
        };
        // Two instances starting at once must not race on CREATE TABLE: serialise on a lock.
        client
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock(7262113); {SCHEMA} COMMIT;"
            ))
            .await
            .map_err(fail("creating the tables"))?;
        let row = client
            .query_one("SELECT max(format)::BIGINT FROM harness_memory_format", &[])
            .await
            .map_err(fail("reading the format"))?;
        let found: Option<i64> = row.get(0);
        rows::check_format(&store.name, found)?;
        if found.is_none() {
            client
                .execute(
                    "INSERT INTO harness_memory_format (format) VALUES ($1)",
                    &[&(FORMAT as i32)],
                )
                .await
                .map_err(fail("recording the format"))?;
        }
        drop(guard);
        Ok(store)
    }

    fn closed(&self) -> MemoryError {
        MemoryError::Store {
            store: self.name.to_string(),
            operation: "connecting",
            reason: "no connection".into(),
        }
    }

    /// The connection, opened again if it was lost.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, MemoryError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            let client = open_client(&self.config, &self.name)
                .await
                .map_err(|e| store_error(&self.name, "connecting", e))?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// Starts a transaction on the connection `guard` holds.
    async fn begin<'g>(
        &self,
        guard: &'g mut Option<Client>,
        operation: &'static str,
    ) -> Result<Transaction<'g>, MemoryError> {
        let client = guard.as_mut().ok_or_else(|| self.closed())?;
        client
            .transaction()
            .await
            .map_err(|e| store_error(&self.name, operation, e))
    }

    /// Commits `tx` if `out` is `Ok` (else it rolls back as it drops), and returns `out`.
    async fn end<T>(
        &self,
        tx: Transaction<'_>,
        operation: &'static str,
        out: Result<T, MemoryError>,
    ) -> Result<T, MemoryError> {
        let out = out?;
        tx.commit()
            .await
            .map_err(|e| store_error(&self.name, operation, e))?;
        Ok(out)
    }
}

/// A new connection (no TLS), its connection task spawned; a connection that ends is logged
/// under `name`, and the next operation of its store opens another.
pub(crate) async fn open_client(
    config: &str,
    name: &Arc<str>,
) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(config, NoTls).await?;
    let name = name.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(store = %name, error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}

/// `host:port/dbname` of a connection string, without user or password.
pub(crate) fn describe(config: &str) -> String {
    match config.parse::<tokio_postgres::Config>() {
        Ok(c) => {
            let host = c
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_else(|| "localhost".into());
            let port = c.get_ports().first().copied().unwrap_or(5432);
            format!("{host}:{port}/{}", c.get_dbname().unwrap_or("postgres"))
        }
        Err(_) => "(unparsable connection string)".into(),
    }
}

impl SessionStore for PostgresMemory {
    fn name(&self) -> String {
        self.name.to_string()
    }

    fn load<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, MemoryError>> {
        const OP: &str = "loading a session";
        Box::pin(async move {
            let mut guard = self.client().await?;
            let tx = self.begin(&mut guard, OP).await?;
            let out = load(&tx, &self.name, id).await;
            self.end(tx, OP, out).await
        })
    }

    fn commit<'a>(
        &'a self,
        id: &'a SessionId,
        commit: Commit,
    ) -> BoxFuture<'a, Result<u64, MemoryError>> {
        const OP: &str = "committing";
        Box::pin(async move {
            let mut guard = self.client().await?;
            let tx = self.begin(&mut guard, OP).await?;
            let out = apply(&tx, &self.name, id, commit).await;
            self.end(tx, OP, out).await
        })
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, MemoryError>> {
        const OP: &str = "deleting";
        Box::pin(async move {
            let mut guard = self.client().await?;
            let tx = self.begin(&mut guard, OP).await?;
            let out = delete_rows(&tx, id.as_str())
                .await
                .map(|n| n > 0)
                .map_err(|e| store_error(&self.name, OP, e));
            self.end(tx, OP, out).await
        })
    }

    fn purge_expired(&self, now_ms: u64) -> BoxFuture<'_, Result<u64, MemoryError>> {
        const OP: &str = "purging expired sessions";
        Box::pin(async move {
            let mut guard = self.client().await?;
            let tx = self.begin(&mut guard, OP).await?;
            let out = purge(&tx, now_ms)
                .await
                .map_err(|e| store_error(&self.name, OP, e));
            self.end(tx, OP, out).await
        })
    }
}

async fn purge(tx: &Transaction<'_>, now_ms: u64) -> Result<u64, tokio_postgres::Error> {
    let ids = tx
        .query(
            "SELECT id FROM harness_sessions WHERE expires_ms < $1 FOR UPDATE",
            &[&rows::signed(now_ms)],
        )
        .await?;
    for row in &ids {
        let id: String = row.get(0);
        delete_rows(tx, &id).await?;
    }
    Ok(ids.len() as u64)
}

async fn delete_rows(tx: &Transaction<'_>, id: &str) -> Result<u64, tokio_postgres::Error> {
    tx.execute("DELETE FROM harness_turns WHERE session_id = $1", &[&id])
        .await?;
    tx.execute(
        "DELETE FROM harness_summaries WHERE session_id = $1",
        &[&id],
    )
    .await?;
    tx.execute("DELETE FROM harness_sessions WHERE id = $1", &[&id])
        .await
}

async fn session_row(
    tx: &Transaction<'_>,
    id: &str,
    lock: bool,
) -> Result<Option<SessionRow>, tokio_postgres::Error> {
    let sql = if lock {
        "SELECT version, owner, state, state_schema, created_ms, updated_ms, expires_ms
         FROM harness_sessions WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT version, owner, state, state_schema, created_ms, updated_ms, expires_ms
         FROM harness_sessions WHERE id = $1"
    };
    let row = tx.query_opt(sql, &[&id]).await?;
    Ok(row.map(|r| SessionRow {
        version: r.get(0),
        owner: r.get(1),
        state: r.get(2),
        state_schema: r.get(3),
        created_ms: r.get(4),
        updated_ms: r.get(5),
        expires_ms: r.get(6),
    }))
}

async fn load(
    tx: &Transaction<'_>,
    name: &str,
    id: &SessionId,
) -> Result<Option<Snapshot>, MemoryError> {
    let fail = |e| store_error(name, "loading a session", e);
    let Some(row) = session_row(tx, id.as_str(), false).await.map_err(fail)? else {
        return Ok(None);
    };
    if row.expires_ms.is_some_and(|e| e < rows::signed(now_ms())) {
        return Ok(None);
    }
    let turns = tx
        .query(
            "SELECT seq, author, at_ms, messages FROM harness_turns WHERE session_id = $1 ORDER BY seq",
            &[&id.as_str()],
        )
        .await
        .map_err(fail)?
        .into_iter()
        .map(|r| TurnRow {
            seq: r.get(0),
            author: r.get(1),
            at_ms: r.get(2),
            messages: r.get(3),
        })
        .collect();
    let summaries = tx
        .query(
            "SELECT through, text, at_ms FROM harness_summaries WHERE session_id = $1 ORDER BY through",
            &[&id.as_str()],
        )
        .await
        .map_err(fail)?
        .into_iter()
        .map(|r| SummaryRow {
            through: r.get(0),
            text: r.get(1),
            at_ms: r.get(2),
        })
        .collect();
    Reader { store: name, id }
        .snapshot(row, turns, summaries)
        .map(Some)
}

async fn apply(
    tx: &Transaction<'_>,
    name: &str,
    id: &SessionId,
    c: Commit,
) -> Result<u64, MemoryError> {
    let fail = |e| store_error(name, "committing", e);
    let now = rows::signed(now_ms());
    let sid = id.as_str();
    let mut found = session_row(tx, sid, true).await.map_err(fail)?;
    if found
        .as_ref()
        .is_some_and(|r| r.expires_ms.is_some_and(|e| e < now))
    {
        delete_rows(tx, sid).await.map_err(fail)?;
        found = None;
    }
    let conflict = |found: i64| MemoryError::Conflict {
        session: id.to_string(),
        expected: c.expected_version,
        found: u64::try_from(found).unwrap_or(0),
    };
    let version = found.as_ref().map_or(0, |r| r.version);
    if version != rows::signed(c.expected_version) {
        return Err(conflict(version));
    }
    let next = version + 1;
    let (state, schema) = match &c.state {
        Some(s) => (Some(s.json.to_string()), Some(s.schema_hash.clone())),
        None => (None, None),
    };
    let expires = rows::expiry(now as u64, c.retain_for);
    if found.is_none() {
        let inserted = tx
            .execute(
                "INSERT INTO harness_sessions (id, version, owner, state, state_schema, created_ms, updated_ms, expires_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (id) DO NOTHING",
                &[&sid, &next, &c.owner, &state, &schema, &now, &expires],
            )
            .await
            .map_err(fail)?;
        if inserted == 0 {
            // Another instance created it between our read and our insert.
            let theirs = session_row(tx, sid, false).await.map_err(fail)?;
            return Err(conflict(theirs.map_or(1, |r| r.version)));
        }
    } else {
        tx.execute(
            "UPDATE harness_sessions SET version = $2,
                owner = coalesce($3, owner), state = coalesce($4, state),
                state_schema = coalesce($5, state_schema), updated_ms = $6, expires_ms = $7
             WHERE id = $1",
            &[&sid, &next, &c.owner, &state, &schema, &now, &expires],
        )
        .await
        .map_err(fail)?;
    }
    if let Some(messages) = &c.turn {
        tx.execute(
            "INSERT INTO harness_turns (session_id, seq, author, at_ms, messages)
             SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4 FROM harness_turns WHERE session_id = $1",
            &[&sid, &c.author, &now, &rows::messages_json(messages)],
        )
        .await
        .map_err(fail)?;
    }
    if let Some((through, text)) = &c.summary {
        tx.execute(
            "INSERT INTO harness_summaries (session_id, through, text, at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (session_id, through) DO UPDATE SET text = excluded.text, at_ms = excluded.at_ms",
            &[&sid, &rows::signed(*through), text, &now],
        )
        .await
        .map_err(fail)?;
    }
    u64::try_from(next).map_err(|_| conflict(next))
}
