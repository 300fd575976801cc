//! The SQLite sink (feature `sqlite`): the same records and chain as JSONL, one row each.
//!
//! Table `audit_records(seq INTEGER PRIMARY KEY AUTOINCREMENT, id, prev_hash, hash, record)`;
//! `record` is the exact JSON line the JSONL sink would write, so the hash covers the same bytes
//! and SQLite's JSON functions can query it (`json_extract(record, '$.outcome.status')`).

use std::io;
use std::path::Path;
use std::sync::MutexGuard;

use rusqlite::{Connection, params};

use super::chain::{Chain, Fsync, Sealed, SinkOptions, Store, Writer, record_of};
use super::record::{AuditRecord, GENESIS_HASH};
use super::verify::{VerifyReport, Walker};
use crate::observe::{CallEnd, Observer};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS audit_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_records_id ON audit_records(id);";

/// Writes one row per finished call to a SQLite database, hash-chained like [`JsonlSink`](super::JsonlSink).
///
/// Each record is committed (WAL journal) before the call returns. Write errors are handled as
/// in the JSONL sink: logged, queued, retried (see [`SinkOptions::max_pending`]).
pub struct SqliteSink {
    writer: Writer<SqliteStore>,
    options: SinkOptions,
}

impl std::fmt::Debug for SqliteSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSink")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

pub(crate) struct SqliteStore {
    conn: Connection,
    name: String,
}

impl Store for SqliteStore {
    fn append(&mut self, batch: &[Sealed]) -> io::Result<()> {
        let tx = self.conn.transaction().map_err(io::Error::other)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO audit_records (id, prev_hash, hash, record) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(io::Error::other)?;
            for s in batch {
                insert
                    .execute(params![s.id, s.prev_hash, s.hash, s.line])
                    .map_err(io::Error::other)?;
            }
        }
        tx.commit().map_err(io::Error::other)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl SqliteSink {
    /// Opens (or creates) the database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> rusqlite::Result<SqliteSink> {
        Self::open_with(path, SinkOptions::default())
    }

    /// Opens (or creates) the database at `path`, resuming its chain.
    pub fn open_with(path: impl AsRef<Path>, options: SinkOptions) -> rusqlite::Result<SqliteSink> {
        let path = path.as_ref();
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match options.fsync {
                Fsync::EveryRecord => "FULL",
                Fsync::Never => "NORMAL",
            },
        )?;
        conn.execute_batch(SCHEMA)?;
        let last_hash: String = conn
            .query_row(
                "SELECT hash FROM audit_records ORDER BY seq DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(GENESIS_HASH.to_owned()),
                e => Err(e),
            })?;
        let store = SqliteStore {
            conn,
            name: format!("sqlite:{}", path.display()),
        };
        Ok(SqliteSink {
            writer: Writer::new(Chain::new(store, last_hash, options.max_pending), &options)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
            options,
        })
    }

    /// Chains and stores a record built elsewhere.
    pub fn append(&self, record: &AuditRecord) -> io::Result<()> {
        self.writer.submit(record.clone())
    }

    /// Writes the records still queued after earlier errors.
    pub fn flush(&self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Records waiting in memory after errors.
    pub fn pending(&self) -> usize {
        self.lock().pending()
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped()
    }

    /// The hash of the last record chained.
    pub fn last_hash(&self) -> String {
        self.lock().last_hash().to_owned()
    }

    fn lock(&self) -> MutexGuard<'_, Chain<SqliteStore>> {
        self.writer.lock()
    }
}

impl Observer for SqliteSink {
    fn on_call_end(&self, call: &CallEnd<'_>) {
        let record = record_of(call, self.options.messages);
        let _ = self.writer.submit(record);
    }
}

/// Verifies the chain in a SQLite audit database; `line` in the report is the row's `seq`.
pub fn verify_sqlite(path: impl AsRef<Path>) -> rusqlite::Result<VerifyReport> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare("SELECT seq, record FROM audit_records ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let mut walker = Walker::default();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let record: String = row.get(1)?;
        walker.check(seq as u64, record.as_bytes());
    }
    Ok(walker.report)
}

/// Reads every record of a SQLite audit database, in order.
pub fn read_sqlite(path: impl AsRef<Path>) -> rusqlite::Result<Vec<AuditRecord>> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare("SELECT record FROM audit_records ORDER BY seq")?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        let text = row?;
        let record = serde_json::from_str(&text)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        out.push(record);
    }
    Ok(out)
}
