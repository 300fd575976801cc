//! The review queue in one SQLite file (feature `sqlite`): WAL, `synchronous = FULL`.
//!
//! Tables `harness_reviews` (the item as JSON, beside its id, status, kind, creation time and the
//! hash of its call's arguments) and `harness_review_format`; they may share a file with the
//! memory tables. Every operation is one `BEGIN IMMEDIATE` transaction that reads the row, applies
//! the state machine every store shares, and writes it back before it returns: a claim is on
//! disk before the tool runs, so two processes — or one process before and after a crash — never
//! both get [`Claim::Run`] for one item.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::rows::{self, FORMAT};
use super::store::{claim_step, complete_step, decide_step};
use super::{
    Claim, Completion, Decision, ReviewError, ReviewId, ReviewItem, ReviewStatus, ReviewStore,
};
use crate::memory::Redactor;
use crate::provider::BoxFuture;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS harness_review_format (format INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS harness_reviews (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    arguments_hash TEXT,
    item TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS harness_reviews_status ON harness_reviews(status, created_ms, id);";

/// The review queue in a SQLite file.
#[derive(Clone)]
pub struct SqliteReviews {
    conn: Arc<Mutex<Connection>>,
    name: Arc<str>,
    redactor: Arc<Redactor>,
}

impl std::fmt::Debug for SqliteReviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReviews")
            .field("name", &self.name)
            .finish()
    }
}

fn fail(store: &str, operation: &str) -> impl Fn(rusqlite::Error) -> ReviewError {
    let context = format!("{store}: {operation}");
    move |e| ReviewError::Store(format!("{context}: {e}"))
}

impl SqliteReviews {
    /// Opens (or creates, with the folders above it) the queue at `path`. A file that is not a
    /// SQLite database, or holds review tables of a newer format, is a typed error.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteReviews, ReviewError> {
        let path = path.as_ref();
        let name: Arc<str> = format!("sqlite:{}", path.display()).into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| ReviewError::Store(format!("{name}: creating the folder: {e}")))?;
        }
        let conn = Connection::open(path).map_err(fail(&name, "opening"))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(fail(&name, "setting the busy timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail(&name, "switching to WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail(&name, "setting synchronous"))?;
        conn.execute_batch(SCHEMA)
            .map_err(fail(&name, "creating the tables"))?;
        let found: Option<i64> = conn
            .query_row("SELECT max(format) FROM harness_review_format", [], |r| {
                r.get(0)
            })
            .map_err(fail(&name, "reading the format"))?;
        rows::check_format(&name, found)?;
        if found.is_none() {
            conn.execute(
                "INSERT INTO harness_review_format (format) VALUES (?1)",
                [FORMAT],
            )
            .map_err(fail(&name, "recording the format"))?;
        }
        Ok(SqliteReviews {
            conn: Arc::new(Mutex::new(conn)),
            name,
            redactor: Arc::new(Redactor::new().with_env_keys()),
        })
    }

    /// With this redactor for transcripts (default: known key formats and the keys in the
    /// environment).
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = Arc::new(redactor);
        self
    }

    /// Runs `f` on the connection off the async threads.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &str, &Redactor) -> Result<T, ReviewError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, ReviewError>> {
        let conn = self.conn.clone();
        let name = self.name.clone();
        let redactor = self.redactor.clone();
        Box::pin(async move {
            let task = tokio::task::spawn_blocking(move || {
                // SQLite rolls back a transaction a panic left open: a poisoned lock is safe.
                let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                f(&mut conn, &name, &redactor)
            });
            task.await
                .map_err(|e| ReviewError::Store(format!("sqlite: running a query: {e}")))?
        })
    }

    /// One read-modify-write of item `id` in a `BEGIN IMMEDIATE` transaction: `f` changes the
    /// item and says whether to write it back, and what to answer.
    fn update<T: Send + 'static>(
        &self,
        id: &ReviewId,
        f: impl FnOnce(&mut ReviewItem) -> (bool, Result<T, ReviewError>) + Send + 'static,
    ) -> BoxFuture<'static, Result<T, ReviewError>> {
        let id = id.clone();
        self.run(move |conn, name, redactor| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail(name, "starting a transaction"))?;
            let mut item = read(&tx, name, id.as_str())?
                .ok_or_else(|| ReviewError::NotFound(id.to_string()))?;
            let (write_back, answer) = f(&mut item);
            if write_back {
                write(&tx, name, &item, redactor, false)?;
                tx.commit().map_err(fail(name, "committing"))?;
            }
            answer
        })
    }
}

fn read(tx: &Transaction<'_>, name: &str, id: &str) -> Result<Option<ReviewItem>, ReviewError> {
    let row: Option<(String, Option<String>)> = tx
        .query_row(
            "SELECT item, arguments_hash FROM harness_reviews WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(fail(name, "reading an item"))?;
    row.map(|(json, hash)| rows::decode(name, id, &json, hash.as_deref()))
        .transpose()
}

fn write(
    tx: &Transaction<'_>,
    name: &str,
    item: &ReviewItem,
    redactor: &Redactor,
    insert: bool,
) -> Result<(), ReviewError> {
    let row = rows::encode(item, redactor)?;
    let sql = if insert {
        "INSERT INTO harness_reviews (id, status, kind, created_ms, arguments_hash, item)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    } else {
        "UPDATE harness_reviews SET status = ?2, kind = ?3, created_ms = ?4, arguments_hash = ?5,
         item = ?6 WHERE id = ?1"
    };
    tx.execute(
        sql,
        params![
            item.id.as_str(),
            item.status.as_str(),
            item.kind.as_str(),
            rows::signed(item.created_ms),
            row.arguments_hash,
            row.json
        ],
    )
    .map_err(fail(name, "writing an item"))?;
    Ok(())
}

impl ReviewStore for SqliteReviews {
    fn put<'a>(&'a self, item: &'a ReviewItem) -> BoxFuture<'a, Result<(), ReviewError>> {
        let item = item.clone();
        self.run(move |conn, name, redactor| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail(name, "starting a transaction"))?;
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM harness_reviews WHERE id = ?1",
                    [item.id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(fail(name, "checking the id"))?;
            if exists.is_some() {
                return Err(ReviewError::Duplicate(item.id.to_string()));
            }
            write(&tx, name, &item, redactor, true)?;
            tx.commit().map_err(fail(name, "committing"))
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a ReviewId,
    ) -> BoxFuture<'a, Result<Option<ReviewItem>, ReviewError>> {
        let id = id.clone();
        self.run(move |conn, name, _| {
            let tx = conn.transaction().map_err(fail(name, "reading"))?;
            read(&tx, name, id.as_str())
        })
    }

    fn list(
        &self,
        status: Option<ReviewStatus>,
    ) -> BoxFuture<'_, Result<Vec<ReviewItem>, ReviewError>> {
        self.run(move |conn, name, _| {
            let f = fail(name, "listing");
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, item, arguments_hash FROM harness_reviews
                     WHERE ?1 IS NULL OR status = ?1 ORDER BY created_ms, id",
                )
                .map_err(&f)?;
            let found = stmt
                .query_map([status.map(ReviewStatus::as_str)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .map_err(&f)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&f)?;
            found
                .iter()
                .map(|(id, json, hash)| rows::decode(name, id, json, hash.as_deref()))
                .collect()
        })
    }

    fn decide<'a>(
        &'a self,
        id: &'a ReviewId,
        decision: &'a Decision,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ReviewItem, ReviewError>> {
        let decision = decision.clone();
        self.update(id, move |item| decide_step(item, &decision, now_ms))
    }

    fn claim<'a>(
        &'a self,
        id: &'a ReviewId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Claim, ReviewError>> {
        self.update(id, move |item| claim_step(item, now_ms))
    }

    fn complete<'a>(
        &'a self,
        id: &'a ReviewId,
        completion: &'a Completion,
    ) -> BoxFuture<'a, Result<ReviewItem, ReviewError>> {
        let completion = completion.clone();
        self.update(id, move |item| complete_step(item, &completion))
    }
}
