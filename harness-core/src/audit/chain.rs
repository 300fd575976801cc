//! What every sink shares: the hash chain, and the retry queue that keeps records through I/O errors.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;

#[cfg(test)]
use serde_json::Value;
use tracing::{error, warn};

#[cfg(test)]
use super::canonical::seal_value;
use super::record::{AuditRecord, MessagePolicy};

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
    /// [`flush`](super::JsonlSink::flush)). When the queue is full the oldest record is dropped,
    /// an error is logged and [`dropped`](super::JsonlSink::dropped) counts it; the chain then
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

/// A record ready to store: its chain fields and its JSON line.
#[derive(Clone, Debug)]
// The chain fields are columns in SQLite; the JSONL store needs only the line.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) struct Sealed {
    pub id: String,
    pub prev_hash: String,
    pub hash: String,
    pub line: String,
}

/// Where sealed records go. `append` stores all of `batch` or none of it.
pub(crate) trait Store: Send {
    fn append(&mut self, batch: &[Sealed]) -> io::Result<()>;
    fn name(&self) -> &str;
}

/// The chain head and the queue of records not yet stored.
pub(crate) struct Chain<S> {
    pub store: S,
    last_hash: String,
    pending: VecDeque<Sealed>,
    max_pending: usize,
    dropped: u64,
}

impl<S: Store> Chain<S> {
    pub fn new(store: S, last_hash: String, max_pending: usize) -> Self {
        Chain {
            store,
            last_hash,
            pending: VecDeque::new(),
            max_pending: max_pending.max(1),
            dropped: 0,
        }
    }

    /// Chains a record and stores it (with any earlier records still queued).
    pub fn push(&mut self, mut record: AuditRecord) -> io::Result<()> {
        let line = record.seal(&self.last_hash);
        let sealed = Sealed {
            id: record.id,
            prev_hash: record.prev_hash,
            hash: record.hash,
            line,
        };
        self.enqueue(sealed)
    }

    /// Chains any JSON object as a record (for tests of the chain itself).
    #[cfg(test)]
    pub fn push_value(&mut self, mut value: Value) -> io::Result<()> {
        let Some(map) = value.as_object_mut() else {
            return Ok(());
        };
        map.insert("prev_hash".into(), Value::String(self.last_hash.clone()));
        map.remove("hash");
        let id = map
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (hash, line) = seal_value(&value);
        let sealed = Sealed {
            id,
            prev_hash: self.last_hash.clone(),
            hash,
            line,
        };
        self.enqueue(sealed)
    }

    fn enqueue(&mut self, sealed: Sealed) -> io::Result<()> {
        self.last_hash.clone_from(&sealed.hash);
        self.pending.push_back(sealed);
        if self.pending.len() > self.max_pending
            && let Some(lost) = self.pending.pop_front()
        {
            self.dropped += 1;
            error!(
                sink = self.store.name(),
                record = %lost.id,
                dropped = self.dropped,
                "audit queue is full; the oldest unwritten record is dropped (the chain will show the gap)"
            );
        }
        self.flush()
    }

    /// Stores whatever is queued.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        match self.store.append(self.pending.make_contiguous()) {
            Ok(()) => {
                self.pending.clear();
                Ok(())
            }
            Err(e) => {
                warn!(
                    sink = self.store.name(),
                    error = %e,
                    queued = self.pending.len(),
                    "audit write failed; records stay queued and are retried with the next one"
                );
                Err(e)
            }
        }
    }

    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// A chain, written on the caller's thread or on a background thread.
pub(crate) struct Writer<S: Store + 'static> {
    chain: Arc<Mutex<Chain<S>>>,
    background: Option<(mpsc::SyncSender<Msg>, JoinHandle<()>)>,
}

enum Msg {
    Record(Box<AuditRecord>),
    Flush(mpsc::Sender<()>),
}

impl<S: Store + 'static> Writer<S> {
    pub fn new(chain: Chain<S>, options: &SinkOptions) -> io::Result<Self> {
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
    pub fn submit(&self, record: AuditRecord) -> io::Result<()> {
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
    pub fn flush(&self) -> io::Result<()> {
        if let Some((tx, _)) = &self.background {
            let (done, wait) = mpsc::channel();
            if tx.send(Msg::Flush(done)).is_ok() {
                let _ = wait.recv();
            }
        }
        self.lock().flush()
    }

    pub fn lock(&self) -> MutexGuard<'_, Chain<S>> {
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

/// The record of a call, not yet chained: built outside the sink's lock.
pub(crate) fn record_of(call: &crate::observe::CallEnd<'_>, policy: MessagePolicy) -> AuditRecord {
    AuditRecord::from_call_end(call, policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::verify::{BreakKind, Walker};

    /// Stores lines in memory; fails while `failing`.
    struct Flaky {
        lines: Vec<String>,
        failing: bool,
    }

    impl Store for Flaky {
        fn append(&mut self, batch: &[Sealed]) -> io::Result<()> {
            if self.failing {
                return Err(io::Error::other("disk on fire"));
            }
            self.lines.extend(batch.iter().map(|s| s.line.clone()));
            Ok(())
        }
        fn name(&self) -> &str {
            "flaky"
        }
    }

    fn record(i: u32) -> Value {
        serde_json::json!({"id": format!("call-{i}"), "n": i})
    }

    fn verify(lines: &[String]) -> crate::audit::VerifyReport {
        let mut w = Walker::default();
        for (i, l) in lines.iter().enumerate() {
            w.check(i as u64 + 1, l.as_bytes());
        }
        w.report
    }

    #[test]
    fn queued_records_are_written_in_order_once_the_store_recovers() {
        let store = Flaky {
            lines: Vec::new(),
            failing: true,
        };
        let mut chain = Chain::new(store, crate::audit::GENESIS_HASH.into(), 10);
        for i in 0..3 {
            assert!(chain.push_value(record(i)).is_err());
        }
        assert_eq!(chain.pending(), 3);
        chain.store.failing = false;
        chain.push_value(record(3)).unwrap();
        assert_eq!(chain.pending(), 0);
        let ids: Vec<String> = chain
            .store
            .lines
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids, ["call-0", "call-1", "call-2", "call-3"]);
        assert!(verify(&chain.store.lines).is_intact());
    }

    #[test]
    fn an_overflowing_queue_drops_the_oldest_and_the_chain_shows_the_gap() {
        let store = Flaky {
            lines: Vec::new(),
            failing: false,
        };
        let mut chain = Chain::new(store, crate::audit::GENESIS_HASH.into(), 2);
        chain.push_value(record(0)).unwrap();
        chain.store.failing = true;
        for i in 1..4 {
            let _ = chain.push_value(record(i));
        }
        assert_eq!((chain.pending(), chain.dropped()), (2, 1));
        chain.store.failing = false;
        chain.flush().unwrap();
        let report = verify(&chain.store.lines);
        let b = report.first_break.unwrap();
        assert_eq!(b.line, 2);
        assert_eq!(b.id.as_deref(), Some("call-2"));
        assert!(matches!(b.kind, BreakKind::Unlinked { .. }));
    }
}
