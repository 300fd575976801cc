//! The SQLite sink (feature `sqlite`): the same records and chain as JSONL, one row each.
//!
//! Table `audit_records(seq INTEGER PRIMARY KEY AUTOINCREMENT, id, prev_hash, hash, record)`;
//! `record` is the exact JSON line the JSONL sink would write, so the hash covers the same bytes
//! and SQLite's JSON functions can query it (`json_extract(record, '$.outcome.status')`).

use std::io;
use std::path::Path;

use rusqlite::{Connection, params};

use super::chain::{ChainedRecord, Store};
use super::record::{AuditRecord, GENESIS_HASH};
use super::sink::{AuditSink, Fsync, SinkOptions, create_parent};
use super::verify::{VerifyReport, Walker};

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
/// in the JSONL sink: logged, queued, retried (see [`SinkOptions::max_pending`]). Opening a
/// database in a folder that does not exist yet creates the folder.
pub type SqliteSink = AuditSink<SqliteStore>;

/// The database behind a [`SqliteSink`]: table `audit_records`, one record per row.
pub struct SqliteStore {
    conn: Connection,
    name: String,
}

impl Store for SqliteStore {
    fn append(&mut self, batch: &[ChainedRecord]) -> io::Result<()> {
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

impl AuditSink<SqliteStore> {
    /// Opens (or creates) the database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> rusqlite::Result<SqliteSink> {
        Self::open_with(path, SinkOptions::default())
    }

    /// Opens (or creates) the database at `path`, and the folders above it, resuming its chain.
    pub fn open_with(path: impl AsRef<Path>, options: SinkOptions) -> rusqlite::Result<SqliteSink> {
        let path = path.as_ref();
        create_parent(path).map_err(io_error)?;
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
        AuditSink::start(store, last_hash, options).map_err(io_error)
    }
}

/// An I/O error (creating the folder, starting the writer thread) as a `rusqlite::Error`.
fn io_error(e: io::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
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
