//! The append-only JSONL sink: one record per line, each carrying the previous line's hash.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tracing::{error, warn};

use super::canonical::{canonical_json, hash_hex};
use super::chain::{ChainedRecord, Store};
use super::record::GENESIS_HASH;
use super::sink::{AuditSink, Fsync, SinkOptions, create_parent};

/// Writes one JSON line per finished call to an append-only file, hash-chained.
///
/// Each record is written with a single `write` and handed to the OS before the call returns,
/// so a process killed at any point loses no record of a call that completed (see [`Fsync`] for
/// machine crashes). Opening an existing file resumes its chain from the last line; a torn last
/// line (a write cut short by a crash) is moved to `<file>.torn-<unix_ms>` first, so the chain
/// stays verifiable and the fragment is kept as evidence. Opening a file in a folder that does
/// not exist yet creates the folder.
///
/// Write errors never panic and never lose a record silently: see [`SinkOptions::max_pending`].
///
/// One sink per file: two sinks (or two processes) appending to the same file would fork the
/// chain, and the verifier would report it. Share one sink between harnesses by passing an
/// `Arc<JsonlSink>` to `HarnessBuilder::observer`. The write happens on the thread that finished
/// the call (a few microseconds; with [`Fsync::EveryRecord`], a disk flush), unless
/// [`SinkOptions::background`] is set.
pub type JsonlSink = AuditSink<JsonlStore>;

/// The file behind a [`JsonlSink`]: one canonical JSON record per line.
pub struct JsonlStore {
    path: PathBuf,
    name: String,
    file: File,
    /// The file's length after the last complete write: a failed write is cut back to it.
    good_len: u64,
    fsync: Fsync,
    buf: Vec<u8>,
}

impl Store for JsonlStore {
    fn append(&mut self, batch: &[ChainedRecord]) -> io::Result<()> {
        self.buf.clear();
        for s in batch {
            self.buf.extend_from_slice(s.line.as_bytes());
            self.buf.push(b'\n');
        }
        let result = self.file.write_all(&self.buf).and_then(|()| {
            if self.fsync == Fsync::EveryRecord {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => {
                self.good_len += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A partial line would glue itself to the next one: cut the file back.
                if let Err(cut) = self.file.set_len(self.good_len) {
                    error!(path = %self.path.display(), error = %cut, "could not cut back a partial audit write");
                }
                Err(e)
            }
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl AuditSink<JsonlStore> {
    /// Opens (or creates) `path` for appending, with default options: full messages, no fsync.
    pub fn open(path: impl AsRef<Path>) -> io::Result<JsonlSink> {
        Self::open_with(path, SinkOptions::default())
    }

    /// Opens (or creates) `path` for appending, and the folders above it.
    pub fn open_with(path: impl AsRef<Path>, options: SinkOptions) -> io::Result<JsonlSink> {
        let path = path.as_ref().to_path_buf();
        create_parent(&path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let (last_hash, good_len) = resume(&mut file, &path)?;
        let store = JsonlStore {
            name: format!("jsonl:{}", path.display()),
            path,
            file,
            good_len,
            fsync: options.fsync,
            buf: Vec::with_capacity(4096),
        };
        AuditSink::start(store, last_hash, options)
    }
}

/// Finds where the chain in `file` stands: the last record's hash and the length of the complete
/// lines. A torn last line is moved to a side file and cut off; a complete record that lacks only
/// its newline gets one.
fn resume(file: &mut File, path: &Path) -> io::Result<(String, u64)> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok((GENESIS_HASH.to_owned(), 0));
    }
    let ends_clean = read_at(file, len - 1, 1)?.first() == Some(&b'\n');
    let (last_start, good_len) = if ends_clean {
        (line_start(file, len - 1)?, len)
    } else {
        let start = line_start(file, len)?;
        let tail = read_at(file, start, (len - start) as usize)?;
        if let Some(hash) = intact_hash(&tail) {
            // Everything but the newline made it: finish the line.
            file.write_all(b"\n")?;
            return Ok((hash, len + 1));
        }
        let side = torn_path(path);
        warn!(
            path = %path.display(),
            bytes = tail.len(),
            moved_to = %side.display(),
            "the audit file ends in a torn line (a write cut short); moving it aside"
        );
        std::fs::write(&side, &tail)?;
        file.set_len(start)?;
        if start == 0 {
            return Ok((GENESIS_HASH.to_owned(), 0));
        }
        (line_start(file, start - 1)?, start)
    };
    let line = read_at(file, last_start, (good_len - last_start) as usize)?;
    let line = trim_newline(&line);
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the last record of {} is unreadable ({e}); run `harness audit verify` on it",
                path.display()
            ),
        )
    })?;
    let hash = value
        .get("hash")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the last record of {} has no hash", path.display()),
            )
        })?
        .to_owned();
    Ok((hash, good_len))
}

/// The hash of a line that is a complete record whose hash verifies.
pub(crate) fn intact_hash(line: &[u8]) -> Option<String> {
    let mut value: Value = serde_json::from_slice(trim_newline(line)).ok()?;
    let stored = value.as_object_mut()?.remove("hash")?;
    let stored = stored.as_str()?.to_owned();
    (hash_hex(&canonical_json(&value)) == stored).then_some(stored)
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

fn torn_path(path: &Path) -> PathBuf {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".torn-{ms}"));
    PathBuf::from(name)
}

fn read_at(file: &mut File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// The offset where the line containing the byte before `end` starts (just after the previous
/// newline, or 0).
fn line_start(file: &mut File, end: u64) -> io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut hi = end;
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK);
        let chunk = read_at(file, lo, (hi - lo) as usize)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(lo + i as u64 + 1);
        }
        hi = lo;
    }
    Ok(0)
}
