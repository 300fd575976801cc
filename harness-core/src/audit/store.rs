//! Audit stores on disk: reading records and verifying whole files, JSONL or SQLite (recognised
//! by the SQLite file header). The chain checks themselves are in `verify.rs`; the sinks that
//! write the stores are `jsonl.rs` and `sqlite.rs`.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::record::AuditRecord;
use super::verify::{VerifyReport, verify_reader};

/// `sqlite::$f($path)` as an `io::Result`, or, built without the `sqlite` feature, an error
/// saying so.
macro_rules! in_sqlite {
    ($f:ident($path:expr)) => {{
        #[cfg(feature = "sqlite")]
        let result = super::sqlite::$f($path).map_err(io::Error::other);
        #[cfg(not(feature = "sqlite"))]
        let result = {
            let _ = $path;
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this is a SQLite audit store; harness-core was built without the `sqlite` feature",
            ))
        };
        result
    }};
}

/// Verifies a JSONL audit file.
pub fn verify_jsonl(path: impl AsRef<Path>) -> io::Result<VerifyReport> {
    verify_reader(BufReader::new(File::open(path)?))
}

/// Reads every complete record of a JSONL audit file (without verifying; a torn last line is
/// skipped). Lines that are not records are errors.
pub fn read_jsonl(path: impl AsRef<Path>) -> io::Result<Vec<AuditRecord>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut records = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        line += 1;
        let record = serde_json::from_slice(&buf).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {line} is not an audit record: {e}"),
            )
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Reads every complete record of an audit store, JSONL or SQLite (recognised by the SQLite file
/// header), in order.
pub fn read_path(path: impl AsRef<Path>) -> io::Result<Vec<AuditRecord>> {
    let path = path.as_ref();
    if is_sqlite(path)? {
        return in_sqlite!(read_sqlite(path));
    }
    read_jsonl(path)
}

/// The record with id `id` in an audit store, JSONL or SQLite.
pub fn find_record(path: impl AsRef<Path>, id: &str) -> io::Result<Option<AuditRecord>> {
    Ok(read_path(path)?.into_iter().find(|r| r.id == id))
}

/// Verifies an audit store, JSONL or SQLite (recognised by the SQLite file header).
pub fn verify_path(path: impl AsRef<Path>) -> io::Result<VerifyReport> {
    let path = path.as_ref();
    if is_sqlite(path)? {
        return in_sqlite!(verify_sqlite(path));
    }
    verify_jsonl(path)
}

fn is_sqlite(path: &Path) -> io::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut file = File::open(path)?;
    let n = file.read(&mut head)?;
    Ok(n == 16 && &head == b"SQLite format 3\0")
}
