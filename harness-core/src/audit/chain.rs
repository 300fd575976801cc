//! The hash chain every sink writes: each record carries the hash of the one before it, and
//! records that could not be stored wait in a queue, in order, until the store works again.

use std::collections::VecDeque;
use std::io;

#[cfg(test)]
use serde_json::Value;
use tracing::{error, warn};

#[cfg(test)]
use super::canonical::seal_value;
use super::record::AuditRecord;

/// A record linked into the chain and ready to store: its id, the hash it links to, its own
/// hash, and its canonical JSON line (which ends with that hash).
#[derive(Clone, Debug)]
// The chain fields are columns in SQLite; the JSONL store needs only the line.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub struct ChainedRecord {
    pub(crate) id: String,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
    pub(crate) line: String,
}

/// Where chained records go: what [`AuditStore`](super::AuditStore) stands for. Public in a
/// private module, so only this crate implements it.
pub trait Store: Send + 'static {
    /// Stores all of `batch`, in order, or none of it.
    fn append(&mut self, batch: &[ChainedRecord]) -> io::Result<()>;
    /// `jsonl:<path>` or `sqlite:<path>`, for logs.
    fn name(&self) -> &str;
}

/// The hash chain of one store: the hash of the last record chained, and the queue of records
/// chained but not yet stored (kept through I/O errors, written in order once the store works).
pub(crate) struct HashChain<S> {
    pub store: S,
    last_hash: String,
    pending: VecDeque<ChainedRecord>,
    max_pending: usize,
    dropped: u64,
}

impl<S: Store> HashChain<S> {
    pub fn new(store: S, last_hash: String, max_pending: usize) -> Self {
        HashChain {
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
        let chained = ChainedRecord {
            id: record.id,
            prev_hash: record.prev_hash,
            hash: record.hash,
            line,
        };
        self.enqueue(chained)
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
        let chained = ChainedRecord {
            id,
            prev_hash: self.last_hash.clone(),
            hash,
            line,
        };
        self.enqueue(chained)
    }

    fn enqueue(&mut self, chained: ChainedRecord) -> io::Result<()> {
        self.last_hash.clone_from(&chained.hash);
        self.pending.push_back(chained);
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

    /// The hash the next record links to.
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }
    /// Records chained but not yet stored.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
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
        fn append(&mut self, batch: &[ChainedRecord]) -> io::Result<()> {
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

    impl Flaky {
        fn new(failing: bool) -> Self {
            Flaky {
                lines: Vec::new(),
                failing,
            }
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
        let mut chain = HashChain::new(Flaky::new(true), crate::audit::GENESIS_HASH.into(), 10);
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
        let mut chain = HashChain::new(Flaky::new(false), crate::audit::GENESIS_HASH.into(), 2);
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
