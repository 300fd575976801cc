//! What every sink shares: the hash chain, and the retry queue that keeps records through I/O errors.

use std::collections::VecDeque;
use std::io;

use serde_json::Value;
use tracing::{error, warn};

use super::record::{AuditRecord, MessagePolicy, seal_value};

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
    pub max_pending: usize,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            messages: MessagePolicy::Full,
            fsync: Fsync::Never,
            max_pending: 10_000,
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

    /// Chains a record serialized without `prev_hash`/`hash` and stores it (with any earlier
    /// records still queued).
    pub fn push_value(&mut self, mut value: Value) -> io::Result<()> {
        let (id, prev_hash) = match value.as_object_mut() {
            Some(map) => {
                map.insert("prev_hash".into(), Value::String(self.last_hash.clone()));
                map.remove("hash");
                let id = map
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                (id, self.last_hash.clone())
            }
            None => return Ok(()),
        };
        let (hash, line) = seal_value(&mut value);
        self.last_hash.clone_from(&hash);
        self.pending.push_back(Sealed {
            id,
            prev_hash,
            hash,
            line,
        });
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

    /// Chains and stores a record.
    pub fn push(&mut self, record: &AuditRecord) -> io::Result<()> {
        let value = serde_json::to_value(record).map_err(io::Error::other)?;
        self.push_value(value)
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

/// The record of a call as a JSON value, without chain fields: built outside the sink's lock.
pub(crate) fn record_value(call: &crate::engine::CallEnd<'_>, policy: MessagePolicy) -> Value {
    let record = AuditRecord::from_call_end(call, policy);
    serde_json::to_value(&record).unwrap_or(Value::Null)
}
