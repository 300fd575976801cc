//! One sink over any audit store: [`AuditSink`], which [`JsonlSink`](super::JsonlSink) and
//! `SqliteSink` name for their stores, and the options they share.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;

use super::chain::{HashChain, Store};
use super::record::{AuditRecord, MessagePolicy};
use crate::observe::{CallEnd, Observer};

/// When a sink asks the OS to put records on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fsync {
    /// Never: each record is written and flushed to the OS before the call returns, which survives
    /// the process being killed (SIGKILL, panic, OOM) but not a machine crash or power loss.
    #[default]
    Never,
    /// After every record (`fsync`/`fdatasync`, or SQLite's `synchronous = FULL`): survives a
    /// machine crash too, at the cost of a disk flush per call (milliseconds on most disks).
    EveryRecord,
}

/// Options shared by the sinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkOptions {
    /// How much of the prompt each record keeps.
    pub messages: MessagePolicy,
    /// When to ask the OS to put records on disk.
    pub fsync: Fsync,
    /// How many records the sink holds in memory while the store is failing. Each record that
    /// could not be written stays queued and is written, in order, before the next one (or on
    /// [`flush`](AuditSink::flush)). When the queue is full the oldest record is dropped,
    /// an error is logged and [`dropped`](AuditSink::dropped) counts it; the chain then
    /// shows the gap (the verifier reports the next record as unlinked), so a loss is never silent.
    /// With `background`, also how many records may be in flight to the writer thread.
    pub max_pending: usize,
    /// Seal and write records on a background thread (`harness-audit`). The observer then costs
    /// the caller only the building of the record instead of also its hashing and write, but a
    /// record still in flight when the process is killed is lost: use it where throughput
    /// matters more than the last few records before a crash. `flush()` and dropping the sink
    /// wait for the records in flight. When `max_pending` records are in flight, the caller
    /// writes its record itself (back-pressure, never a drop).
    pub background: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            messages: MessagePolicy::Full,
            fsync: Fsync::Never,
            max_pending: 10_000,
            background: false,
        }
    }
}

/// Where an [`AuditSink`] puts its records: [`JsonlStore`](super::JsonlStore) (a file, one
/// record per line) or `SqliteStore` (a table, one record per row, feature `sqlite`). Sealed:
/// implemented by those two only, so stores can gain methods without breaking anyone.
pub trait AuditStore: Store {}

impl<T: Store> AuditStore for T {}

/// An [`Observer`] that writes one hash-chained [`AuditRecord`] per finished call to a store.
///
/// Open one with [`JsonlSink::open`](super::JsonlSink) or `SqliteSink::open`. Write errors
/// never panic and never lose a record silently: see [`SinkOptions::max_pending`]. One sink
/// per store: two sinks (or two processes) appending to the same store would fork the chain,
/// and the verifier would report it; share one sink between harnesses by passing an
/// `Arc<JsonlSink>` to `HarnessBuilder::observer`.
pub struct AuditSink<S: AuditStore> {
    writer: Writer<S>,
    options: SinkOptions,
}

impl<S: AuditStore> fmt::Debug for AuditSink<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSink")
            .field("store", &self.lock().store.name())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<S: AuditStore> AuditSink<S> {
    /// A sink over `store`, whose chain stands at `last_hash`.
    pub(crate) fn start(store: S, last_hash: String, options: SinkOptions) -> io::Result<Self> {
        let chain = HashChain::new(store, last_hash, options.max_pending);
        Ok(AuditSink {
            writer: Writer::new(chain, &options)?,
            options,
        })
    }

    /// Chains and stores a record built elsewhere (its `prev_hash` and `hash` are replaced).
    /// An I/O error is returned, and the record stays queued.
    pub fn append(&self, record: &AuditRecord) -> io::Result<()> {
        self.writer.submit(record.clone())
    }

    /// Writes the records still queued after earlier I/O errors (and, with
    /// [`SinkOptions::background`], waits for the records in flight).
    pub fn flush(&self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Records waiting in memory after I/O errors.
    pub fn pending(&self) -> usize {
        self.lock().pending()
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped()
    }

    /// The hash of the last record chained (written or queued).
    pub fn last_hash(&self) -> String {
        self.lock().last_hash().to_owned()
    }

    /// The options in force.
    pub fn options(&self) -> SinkOptions {
        self.options
    }

    fn lock(&self) -> MutexGuard<'_, HashChain<S>> {
        self.writer.lock()
    }
}

impl<S: AuditStore> Observer for AuditSink<S> {
    fn on_call_end(&self, call: &CallEnd<'_>) {
        // Built outside the sink's lock.
        let record = AuditRecord::from_call_end(call, self.options.messages);
        // Errors are logged by the chain and the record stays queued.
        let _ = self.writer.submit(record);
    }
}

/// Creates the folders above `path` that do not exist yet, so a sink can open
/// `logs/2026/audit.jsonl` in a fresh checkout.
pub(crate) fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create the folder {} for {}: {e}",
                    dir.display(),
                    path.display()
                ),
            )
        }),
        _ => Ok(()),
    }
}

/// A hash chain, written on the caller's thread or on a background thread.
struct Writer<S: Store + 'static> {
    chain: Arc<Mutex<HashChain<S>>>,
    background: Option<(mpsc::SyncSender<Msg>, JoinHandle<()>)>,
}

enum Msg {
    Record(Box<AuditRecord>),
    Flush(mpsc::Sender<()>),
}

impl<S: Store + 'static> Writer<S> {
    fn new(chain: HashChain<S>, options: &SinkOptions) -> io::Result<Self> {
        let chain = Arc::new(Mutex::new(chain));
        let background = if options.background {
            let (tx, rx) = mpsc::sync_channel::<Msg>(options.max_pending.max(1));
            let shared = chain.clone();
            let thread = std::thread::Builder::new()
                .name("harness-audit".into())
                .spawn(move || {
                    for msg in rx {
                        let mut chain = shared.lock().unwrap_or_else(|p| p.into_inner());
                        match msg {
                            // Errors are logged by the chain; the record stays queued.
                            Msg::Record(r) => drop(chain.push(*r)),
                            Msg::Flush(done) => {
                                let _ = chain.flush();
                                let _ = done.send(());
                            }
                        }
                    }
                })?;
            Some((tx, thread))
        } else {
            None
        };
        Ok(Writer { chain, background })
    }

    /// Chains and stores a record, here or on the background thread.
    fn submit(&self, record: AuditRecord) -> io::Result<()> {
        if let Some((tx, _)) = &self.background {
            match tx.try_send(Msg::Record(Box::new(record))) {
                Ok(()) => return Ok(()),
                Err(mpsc::TrySendError::Full(Msg::Record(r)))
                | Err(mpsc::TrySendError::Disconnected(Msg::Record(r))) => {
                    return self.lock().push(*r);
                }
                Err(_) => return Ok(()),
            }
        }
        self.lock().push(record)
    }

    /// Waits for records in flight, then writes what is queued.
    fn flush(&self) -> io::Result<()> {
        if let Some((tx, _)) = &self.background {
            let (done, wait) = mpsc::channel();
            if tx.send(Msg::Flush(done)).is_ok() {
                let _ = wait.recv();
            }
        }
        self.lock().flush()
    }

    fn lock(&self) -> MutexGuard<'_, HashChain<S>> {
        // A panic while holding the lock cannot leave the chain half-updated in a way that
        // matters: at worst one record is queued twice, which the verifier would flag.
        self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<S: Store + 'static> Drop for Writer<S> {
    fn drop(&mut self) {
        if let Some((tx, thread)) = self.background.take() {
            drop(tx);
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// A path under a fresh temporary folder, two levels of which do not exist yet.
    fn fresh(file: &str) -> (PathBuf, PathBuf) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let root =
            std::env::temp_dir().join(format!("harness-sink-{}-{nanos}", std::process::id()));
        let path = root.join("not").join("yet").join(file);
        assert!(!root.exists());
        (root, path)
    }

    fn record(id: &str) -> crate::audit::AuditRecord {
        serde_json::from_value(serde_json::json!({
            "actions": [], "actor": null, "attempts": [], "contract_version": "1",
            "cost_usd": null, "ended_at": "", "fingerprint": "", "id": id, "inputs": [],
            "latency_ms": 0.0, "model_answered": null, "model_requested": "m", "module": "t",
            "outcome": {"candidate": null, "class": null, "reason": null, "status": "answer",
                        "value": null},
            "prev_hash": "",
            "request": {"max_tokens": null, "message_policy": "full", "messages": [],
                        "model": "m", "response_format": {"type": "text"}, "seed": null,
                        "temperature": null},
            "started_at": "", "task": "t", "usage": {"input_tokens": 0, "output_tokens": 0},
            "v": crate::audit::RECORD_VERSION,
        }))
        .expect("a minimal record")
    }

    /// Appends one record through `sink`, closes it, and checks the store at `path` holds it.
    fn holds_one_record<S: super::AuditStore>(sink: super::AuditSink<S>, path: &Path) {
        sink.append(&record("call-1")).unwrap();
        drop(sink);
        let report = crate::audit::verify_path(path).unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!(crate::audit::read_path(path).unwrap().len(), 1);
    }

    #[test]
    fn a_jsonl_sink_creates_the_folders_above_its_file() {
        let (root, path) = fresh("audit.jsonl");
        holds_one_record(crate::audit::JsonlSink::open(&path).unwrap(), &path);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn a_sqlite_sink_creates_the_folders_above_its_database() {
        let (root, path) = fresh("audit.db");
        holds_one_record(crate::audit::SqliteSink::open(&path).unwrap(), &path);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_folder_that_cannot_be_created_is_an_error_naming_it() {
        let (root, path) = fresh("audit.jsonl");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("not"), b"a file, not a folder").unwrap();
        let e = crate::audit::JsonlSink::open(&path).unwrap_err();
        assert!(e.to_string().contains("cannot create the folder"), "{e}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
