//! Items as both SQL stores write and read them: the item as JSON beside the columns that index
//! it, and the hash of the call's arguments taken when it was stored, checked on every read.

#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use super::{ReviewError, ReviewItem};
use crate::memory::Redactor;

/// The format of the review tables this build writes; a newer one is refused on open.
pub(crate) const FORMAT: i64 = 1;

/// An item ready to write: its JSON (the transcript redacted) and its arguments hash.
pub(crate) struct Row {
    pub json: String,
    pub arguments_hash: Option<String>,
}

/// Encodes `item` for storage. The transcript passes through the redactor (never a key in the
/// store); the call's arguments are the payload a person approves and are stored as they are.
pub(crate) fn encode(item: &ReviewItem, redactor: &Redactor) -> Result<Row, ReviewError> {
    let mut item = item.clone();
    redactor.messages(&mut item.transcript);
    let json = serde_json::to_string(&item)
        .map_err(|e| ReviewError::Store(format!("encoding review item {}: {e}", item.id)))?;
    Ok(Row {
        json,
        arguments_hash: item.arguments_hash(),
    })
}

/// Decodes a stored item: JSON that does not decode, an id that differs from its key, or a call
/// whose arguments no longer hash to the hash stored beside it (an altered payload) is a typed
/// error naming the item, never a panic.
pub(crate) fn decode(
    store: &str,
    id: &str,
    json: &str,
    arguments_hash: Option<&str>,
) -> Result<ReviewItem, ReviewError> {
    let item: ReviewItem = serde_json::from_str(json).map_err(|e| {
        ReviewError::Store(format!("{store}: review item {id} does not decode: {e}"))
    })?;
    if item.id.as_str() != id {
        return Err(ReviewError::Store(format!(
            "{store}: the row of {id} holds item {}",
            item.id
        )));
    }
    if item.arguments_hash().as_deref() != arguments_hash {
        return Err(ReviewError::Store(format!(
            "{store}: the stored call of {id} was altered: its arguments no longer hash to the hash stored with it"
        )));
    }
    Ok(item)
}

/// Refuses tables written by a newer harness.
pub(crate) fn check_format(store: &str, found: Option<i64>) -> Result<(), ReviewError> {
    match found {
        Some(f) if f > FORMAT => Err(ReviewError::Store(format!(
            "{store}: the review tables are format {f}, newer than this build's {FORMAT}; upgrade harness"
        ))),
        _ => Ok(()),
    }
}

/// A millisecond count as SQL's signed integer.
pub(crate) fn signed(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}
