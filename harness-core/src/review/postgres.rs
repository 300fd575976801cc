//! The review queue in PostgreSQL (feature `postgres`): several instances, one queue.
//!
//! The same table as the SQLite store. Every operation is one transaction; a decision, a claim
//! and a completion lock the item's row (`SELECT … FOR UPDATE`) before applying the shared state
//! machine, so two instances claiming one approved item get one [`Claim::Run`] between them. A
//! commit is durable before it returns (`synchronous_commit = on`, PostgreSQL's default). A lost
//! connection is opened again at the next operation.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::{Client, Transaction};

use super::rows::{self, FORMAT};
use super::store::{claim_step, complete_step, decide_step};
use super::{
    Claim, Completion, Decision, ReviewError, ReviewId, ReviewItem, ReviewStatus, ReviewStore,
};
use crate::memory::Redactor;
use crate::memory::postgres::{describe, open_client, reason};
use crate::provider::BoxFuture;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS harness_review_format (format BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS harness_reviews (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    arguments_hash TEXT,
    item TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS harness_reviews_status ON harness_reviews(status, created_ms, id);";

/// The review queue in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresReviews {
    config: Arc<str>,
    client: Arc<Mutex<Option<Client>>>,
    name: Arc<str>,
    redactor: Arc<Redactor>,
}

impl std::fmt::Debug for PostgresReviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresReviews")
            .field("name", &self.name)
            .finish()
    }
}

fn fail(store: &str, operation: &str) -> impl Fn(tokio_postgres::Error) -> ReviewError {
    let context = format!("{store}: {operation}");
    move |e| ReviewError::Store(format!("{context}: {}", reason(&e)))
}

impl PostgresReviews {
    /// Connects with a libpq-style connection string or a `postgres://` URL (no TLS), creates
    /// the tables if needed and checks their format. The password is never part of the store's
    /// name or its errors.
    pub async fn connect(config: &str) -> Result<PostgresReviews, ReviewError> {
        let store = PostgresReviews {
            config: config.into(),
            client: Arc::new(Mutex::new(None)),
            name: format!("postgres:{}", describe(config)).into(),
            redactor: Arc::new(Redactor::new().with_env_keys()),
        };
        let mut guard = store.client().await?;
        let client = guard.as_mut().ok_or_else(|| store.closed())?;
        // Two instances starting at once must not race on CREATE TABLE: serialise on a lock.
        client
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock(7262114); {SCHEMA} COMMIT;"
            ))
            .await
            .map_err(fail(&store.name, "creating the tables"))?;
        let row = client
            .query_one("SELECT max(format)::BIGINT FROM harness_review_format", &[])
            .await
            .map_err(fail(&store.name, "reading the format"))?;
        let found: Option<i64> = row.get(0);
        rows::check_format(&store.name, found)?;
        if found.is_none() {
            client
                .execute(
                    "INSERT INTO harness_review_format (format) VALUES ($1)",
                    &[&FORMAT],
                )
                .await
                .map_err(fail(&store.name, "recording the format"))?;
        }
        drop(guard);
        Ok(store)
    }

    /// With this redactor for transcripts (default: known key formats and the keys in the
    /// environment).
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = Arc::new(redactor);
        self
    }

    fn closed(&self) -> ReviewError {
        ReviewError::Store(format!("{}: no connection", self.name))
    }

    /// The connection, opened again if it was lost.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, ReviewError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            let client = open_client(&self.config, &self.name)
                .await
                .map_err(fail(&self.name, "connecting"))?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// One read-modify-write of item `id` under its row lock: `f` changes the item and says
    /// whether to write it back, and what to answer.
    async fn update<T>(
        &self,
        id: &ReviewId,
        f: impl FnOnce(&mut ReviewItem) -> (bool, Result<T, ReviewError>),
    ) -> Result<T, ReviewError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(|| self.closed())?;
        let tx = client
            .transaction()
            .await
            .map_err(fail(&self.name, "starting a transaction"))?;
        let mut item = read(&tx, &self.name, id.as_str(), true)
            .await?
            .ok_or_else(|| ReviewError::NotFound(id.to_string()))?;
        let (write_back, answer) = f(&mut item);
        if write_back {
            write(&tx, &self.name, &item, &self.redactor, false).await?;
            tx.commit().await.map_err(fail(&self.name, "committing"))?;
        }
        answer
    }
}

async fn read(
    tx: &Transaction<'_>,
    name: &str,
    id: &str,
    lock: bool,
) -> Result<Option<ReviewItem>, ReviewError> {
    let sql = if lock {
        "SELECT item, arguments_hash FROM harness_reviews WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT item, arguments_hash FROM harness_reviews WHERE id = $1"
    };
    let row = tx
        .query_opt(sql, &[&id])
        .await
        .map_err(fail(name, "reading an item"))?;
    row.map(|r| {
        let json: String = r.get(0);
        let hash: Option<String> = r.get(1);
        rows::decode(name, id, &json, hash.as_deref())
    })
    .transpose()
}

async fn write(
    tx: &Transaction<'_>,
    name: &str,
    item: &ReviewItem,
    redactor: &Redactor,
    insert: bool,
) -> Result<(), ReviewError> {
    let row = rows::encode(item, redactor)?;
    let sql = if insert {
        "INSERT INTO harness_reviews (id, status, kind, created_ms, arguments_hash, item)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING"
    } else {
        "UPDATE harness_reviews SET status = $2, kind = $3, created_ms = $4, arguments_hash = $5,
         item = $6 WHERE id = $1"
    };
    let n = tx
        .execute(
            sql,
            &[
                &item.id.as_str(),
                &item.status.as_str(),
                &item.kind.as_str(),
                &rows::signed(item.created_ms),
                &row.arguments_hash,
                &row.json,
            ],
        )
        .await
        .map_err(fail(name, "writing an item"))?;
    if insert && n == 0 {
        return Err(ReviewError::Duplicate(item.id.to_string()));
    }
    Ok(())
}

impl ReviewStore for PostgresReviews {
    fn put<'a>(&'a self, item: &'a ReviewItem) -> BoxFuture<'a, Result<(), ReviewError>> {
        Box::pin(async move {
            let mut guard = self.client().await?;
            let client = guard.as_mut().ok_or_else(|| self.closed())?;
            let tx = client
                .transaction()
                .await
                .map_err(fail(&self.name, "starting a transaction"))?;
            write(&tx, &self.name, item, &self.redactor, true).await?;
            tx.commit().await.map_err(fail(&self.name, "committing"))
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a ReviewId,
    ) -> BoxFuture<'a, Result<Option<ReviewItem>, ReviewError>> {
        Box::pin(async move {
            let mut guard = self.client().await?;
            let client = guard.as_mut().ok_or_else(|| self.closed())?;
            let tx = client
                .transaction()
                .await
                .map_err(fail(&self.name, "starting a transaction"))?;
            read(&tx, &self.name, id.as_str(), false).await
        })
    }

    fn list(
        &self,
        status: Option<ReviewStatus>,
    ) -> BoxFuture<'_, Result<Vec<ReviewItem>, ReviewError>> {
        Box::pin(async move {
            let guard = self.client().await?;
            let client = guard.as_ref().ok_or_else(|| self.closed())?;
            let found = client
                .query(
                    "SELECT id, item, arguments_hash FROM harness_reviews
                     WHERE $1::TEXT IS NULL OR status = $1 ORDER BY created_ms, id",
                    &[&status.map(ReviewStatus::as_str)],
                )
                .await
                .map_err(fail(&self.name, "listing"))?;
            found
                .iter()
                .map(|r| {
                    let (id, json, hash): (String, String, Option<String>) =
                        (r.get(0), r.get(1), r.get(2));
                    rows::decode(&self.name, &id, &json, hash.as_deref())
                })
                .collect()
        })
    }

    fn decide<'a>(
        &'a self,
        id: &'a ReviewId,
        decision: &'a Decision,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ReviewItem, ReviewError>> {
        Box::pin(self.update(id, move |item| decide_step(item, decision, now_ms)))
    }

    fn claim<'a>(
        &'a self,
        id: &'a ReviewId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Claim, ReviewError>> {
        Box::pin(self.update(id, move |item| claim_step(item, now_ms)))
    }

    fn complete<'a>(
        &'a self,
        id: &'a ReviewId,
        completion: &'a Completion,
    ) -> BoxFuture<'a, Result<ReviewItem, ReviewError>> {
        Box::pin(self.update(id, move |item| complete_step(item, completion)))
    }
}
