//! Rows as both SQL stores read them, turned into a [`Snapshot`] with typed errors for bad data.

#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use super::types::{SessionId, Snapshot, StoredState, Summary, Turn};
use super::{FORMAT, MemoryError};

/// The session row, as raw columns.
pub(crate) struct SessionRow {
    pub version: i64,
    pub owner: Option<String>,
    pub state: Option<String>,
    pub state_schema: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub expires_ms: Option<i64>,
}

/// A turn row, as raw columns.
pub(crate) struct TurnRow {
    pub seq: i64,
    pub author: Option<String>,
    pub at_ms: i64,
    pub messages: String,
}

/// A summary row, as raw columns.
pub(crate) struct SummaryRow {
    pub through: i64,
    pub text: String,
    pub at_ms: i64,
}

/// Reads raw rows back, naming the store and session in every error.
pub(crate) struct Reader<'a> {
    pub store: &'a str,
    pub id: &'a SessionId,
}

impl Reader<'_> {
    fn corrupt(&self, reason: String) -> MemoryError {
        MemoryError::Corrupt {
            store: self.store.to_owned(),
            session: self.id.to_string(),
            reason,
        }
    }

    fn unsigned(&self, what: &str, v: i64) -> Result<u64, MemoryError> {
        u64::try_from(v).map_err(|_| self.corrupt(format!("{what} is negative ({v})")))
    }

    /// The snapshot of one session from its rows, checking every column.
    pub fn snapshot(
        &self,
        row: SessionRow,
        turns: Vec<TurnRow>,
        summaries: Vec<SummaryRow>,
    ) -> Result<Snapshot, MemoryError> {
        let state = match (row.state, row.state_schema) {
            (Some(json), Some(schema_hash)) => Some(StoredState {
                schema_hash,
                json: serde_json::from_str(&json)
                    .map_err(|e| self.corrupt(format!("state is not JSON: {e}")))?,
            }),
            (None, _) => None,
            (Some(_), None) => return Err(self.corrupt("state without its schema hash".into())),
        };
        let mut out = Vec::with_capacity(turns.len());
        for (i, t) in turns.into_iter().enumerate() {
            let seq = self.unsigned("a turn's seq", t.seq)?;
            if seq != i as u64 + 1 {
                return Err(self.corrupt(format!("turn {} follows turn {i}", seq)));
            }
            out.push(Turn {
                seq,
                messages: serde_json::from_str(&t.messages)
                    .map_err(|e| self.corrupt(format!("turn {seq}'s messages: {e}")))?,
                author: t.author,
                at_ms: self.unsigned("a turn's time", t.at_ms)?,
            });
        }
        let summaries = summaries
            .into_iter()
            .map(|s| {
                Ok(Summary {
                    through: self.unsigned("a summary's turn", s.through)?,
                    text: s.text,
                    at_ms: self.unsigned("a summary's time", s.at_ms)?,
                })
            })
            .collect::<Result<Vec<_>, MemoryError>>()?;
        Ok(Snapshot {
            id: self.id.clone(),
            version: self.unsigned("version", row.version)?,
            owner: row.owner,
            state,
            turns: out,
            summaries,
            created_ms: self.unsigned("created_ms", row.created_ms)?,
            updated_ms: self.unsigned("updated_ms", row.updated_ms)?,
            expires_ms: row
                .expires_ms
                .map(|v| self.unsigned("expires_ms", v))
                .transpose()?,
        })
    }
}

/// Checks the format recorded in a store's tables: `None` (a new database) or at most [`FORMAT`].
pub(crate) fn check_format(store: &str, found: Option<i64>) -> Result<(), MemoryError> {
    match found {
        Some(f) if f > i64::from(FORMAT) => Err(MemoryError::NewerFormat {
            store: store.to_owned(),
            found: u32::try_from(f).unwrap_or(u32::MAX),
            supported: FORMAT,
        }),
        _ => Ok(()),
    }
}

/// `version` as stored (the stores keep it as a signed 64-bit integer).
pub(crate) fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// When a session committed at `now` with `retain_for` expires.
pub(crate) fn expiry(now: u64, retain_for: Option<std::time::Duration>) -> Option<i64> {
    retain_for.map(|ttl| signed(now.saturating_add(ttl.as_millis() as u64)))
}

/// The JSON text of a turn's messages (serialising `Message`s cannot fail).
pub(crate) fn messages_json(messages: &[crate::provider::Message]) -> String {
    serde_json::to_string(messages).unwrap_or_else(|_| "[]".to_owned())
}
