//! The verifier: walks a chain and reports the first record that breaks it.

use std::fmt;
use std::io::{self, BufRead};

use serde_json::Value;

use super::canonical::{canonical_json, hash_hex};
use super::record::GENESIS_HASH;

/// What is wrong with a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreakKind {
    /// The record's content does not match its `hash`: it was changed after it was written.
    Tampered {
        /// The hash the record carries.
        stored: String,
        /// The hash of its content.
        computed: String,
    },
    /// The record's `prev_hash` is not the hash of the record before it: a record is missing,
    /// was inserted, or the records were reordered.
    Unlinked {
        /// The previous record's hash (or the genesis hash for the first record).
        expected: String,
        /// The `prev_hash` the record carries.
        found: String,
    },
    /// Not a record: not JSON, or no `hash`/`prev_hash`.
    Malformed {
        /// Why.
        error: String,
    },
}

/// The first record that breaks the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// 1-based line number (JSONL) or row sequence number (SQLite).
    pub line: u64,
    /// The record's id, when it could be read.
    pub id: Option<String>,
    /// What is wrong.
    pub kind: BreakKind,
}

/// A last line without its newline: a write cut short (e.g. by a crash). Not a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Its 1-based line number.
    pub line: u64,
    /// Its length in bytes.
    pub bytes: usize,
}

/// The result of verifying a chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Complete records read (including any after the first break).
    pub records: u64,
    /// Records that verified before the first break.
    pub verified: u64,
    /// The hash of the last verified record.
    pub last_hash: Option<String>,
    /// The first record that breaks the chain.
    pub first_break: Option<ChainBreak>,
    /// How many records break the chain in all.
    pub breaks: u64,
    /// A torn last line, when there is one.
    pub torn_tail: Option<TornTail>,
}

impl VerifyReport {
    /// Whether every complete record verifies (a torn tail may still be present).
    pub fn chain_ok(&self) -> bool {
        self.first_break.is_none()
    }

    /// Whether every record verifies and nothing is torn.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none() && self.torn_tail.is_none()
    }
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakKind::Tampered { stored, computed } => write!(
                f,
                "hash mismatch: the record was changed after it was written (stored {stored}, content hashes to {computed})"
            ),
            BreakKind::Unlinked { expected, found } => write!(
                f,
                "prev_hash mismatch: a record is missing, inserted or out of order before it (expected {expected}, found {found})"
            ),
            BreakKind::Malformed { error } => write!(f, "not a record: {error}"),
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_break {
            None => write!(f, "OK: {} records, chain intact", self.records)?,
            Some(b) => {
                write!(
                    f,
                    "BROKEN at line {}{}: {}\n{} of {} records verify before it; {} record(s) break the chain in all",
                    b.line,
                    b.id.as_ref()
                        .map(|id| format!(" (record {id})"))
                        .unwrap_or_default(),
                    b.kind,
                    self.verified,
                    self.records,
                    self.breaks,
                )?;
            }
        }
        if let Some(t) = &self.torn_tail {
            write!(
                f,
                "\nTORN last line {} ({} bytes without a newline): a write cut short, not a record",
                t.line, t.bytes
            )?;
        }
        if let Some(h) = &self.last_hash {
            write!(f, "\nlast verified hash: {h}")?;
        }
        Ok(())
    }
}

/// Walks records in order, checking each one's hash and link.
#[derive(Default)]
pub(crate) struct Walker {
    pub report: VerifyReport,
    /// The stored hash of the previous record (links are checked against what was stored, so
    /// one changed record is reported once, not again at its successor).
    prev: Option<String>,
}

impl Walker {
    pub fn check(&mut self, line: u64, bytes: &[u8]) {
        self.report.records += 1;
        let expected = self.prev.take().unwrap_or_else(|| GENESIS_HASH.to_owned());
        let (id, kind, stored) = match judge(bytes, &expected) {
            Ok(stored) => {
                if self.report.first_break.is_none() {
                    self.report.verified += 1;
                    self.report.last_hash = Some(stored.clone());
                }
                self.prev = Some(stored);
                return;
            }
            Err(e) => e,
        };
        self.prev = stored;
        self.report.breaks += 1;
        if self.report.first_break.is_none() {
            self.report.first_break = Some(ChainBreak { line, id, kind });
        }
    }
}

type Judged = (Option<String>, BreakKind, Option<String>);

/// Checks one record: `Ok(its hash)`, or what is wrong with it.
fn judge(bytes: &[u8], expected_prev: &str) -> Result<String, Judged> {
    let malformed = |error: String| (None, BreakKind::Malformed { error }, None);
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let Some(map) = value.as_object_mut() else {
        return Err(malformed("not a JSON object".into()));
    };
    let id = map.get("id").and_then(Value::as_str).map(str::to_owned);
    let Some(Value::String(stored)) = map.remove("hash") else {
        return Err((
            id,
            BreakKind::Malformed {
                error: "no `hash`".into(),
            },
            None,
        ));
    };
    let prev = map
        .get("prev_hash")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let computed = hash_hex(&canonical_json(&value));
    if computed != stored {
        return Err((
            id,
            BreakKind::Tampered {
                stored: stored.clone(),
                computed,
            },
            Some(stored),
        ));
    }
    if prev != expected_prev {
        return Err((
            id,
            BreakKind::Unlinked {
                expected: expected_prev.to_owned(),
                found: prev,
            },
            Some(stored),
        ));
    }
    Ok(stored)
}

/// Verifies JSONL audit records read from `reader`.
pub fn verify_reader(mut reader: impl BufRead) -> io::Result<VerifyReport> {
    let mut walker = Walker::default();
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.last() != Some(&b'\n') {
            walker.report.torn_tail = Some(TornTail { line, bytes: n });
            break;
        }
        buf.pop();
        walker.check(line, &buf);
    }
    Ok(walker.report)
}
