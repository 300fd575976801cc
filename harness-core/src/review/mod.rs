//! The review queue: every call that waits for a person (a tool marked `approval`) and every
//! escalation lands here, persisted, until someone decides.
//!
//! A [`ReviewItem`] holds the exact thing to decide: for an approval, the [`ToolCall`] as the
//! model asked for it and the hash of its arguments, plus the transcript of the run up to the
//! call so the run can resume. Deciding moves it `pending → approved | rejected` (or `expired`
//! once its deadline passed). Running an approved call goes through a **write-ahead journal**:
//! [`ReviewStore::claim`] moves `approved → executing` in one transaction *before* the tool runs,
//! and [`ReviewStore::complete`] records `executed | failed` with the result after. A second
//! claim of the same item — approved twice, two processes, or a restart after a crash between
//! the two writes — never gets [`Claim::Run`] again, so an approved call runs **at most once**.
//!
//! Stores: [`InMemoryReviews`] (tests, single-process programs), [`sqlite::SqliteReviews`]
//! (feature `sqlite`) and [`postgres::PostgresReviews`] (feature `postgres`); one test suite runs
//! against all three. A stored call's arguments hash is kept beside it and checked on every read:
//! an item whose payload was altered in the database is an error, never run.

mod rows;
mod store;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::provider::{BoxFuture, Message, ToolCall};

pub use store::InMemoryReviews;

/// Why the review queue refused an operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReviewError {
    /// No item has this id.
    #[error("no review item `{0}`")]
    NotFound(String),
    /// An id that is not `rv-` followed by 1 to 64 ASCII letters, digits, `_` or `-`.
    #[error("`{0}` is not a review id (expected `rv-` and 1 to 64 letters, digits, `_` or `-`)")]
    InvalidId(String),
    /// An item of this id is already stored.
    #[error("review item `{0}` already exists")]
    Duplicate(String),
    /// The item was already decided the other way (approve after reject, or reject after
    /// approve), or is past deciding (executing, executed, failed).
    #[error("review item `{id}` is {status} and can no longer be {wanted}")]
    AlreadyDecided {
        /// The item.
        id: String,
        /// Its status now.
        status: ReviewStatus,
        /// What was asked (`approved` or `rejected`).
        wanted: ReviewStatus,
    },
    /// The item's deadline passed before anyone decided; it is now `expired`.
    #[error("review item `{0}` expired before it was decided")]
    Expired(String),
    /// `complete` of an item that was not claimed (`executing`).
    #[error("review item `{id}` is {status}, not executing")]
    NotExecuting {
        /// The item.
        id: String,
        /// Its status now.
        status: ReviewStatus,
    },
    /// The store itself failed (I/O, SQL, a row that does not decode).
    #[error("review store: {0}")]
    Store(String),
}

/// A review item's id: `rv-` and 1 to 64 ASCII letters, digits, `_` or `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReviewId(String);

impl ReviewId {
    /// A new random id (`rv-` and 16 hex digits).
    pub fn random() -> Self {
        ReviewId(format!("rv-{:016x}", fastrand::u64(..)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ReviewId {
    type Err = ReviewError;

    fn from_str(s: &str) -> Result<Self, ReviewError> {
        let ok = s.strip_prefix("rv-").is_some_and(|rest| {
            (1..=64).contains(&rest.len())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if ok {
            Ok(ReviewId(s.to_owned()))
        } else {
            Err(ReviewError::InvalidId(s.chars().take(80).collect()))
        }
    }
}

impl TryFrom<String> for ReviewId {
    type Error = ReviewError;
    fn try_from(s: String) -> Result<Self, ReviewError> {
        s.parse()
    }
}

impl From<ReviewId> for String {
    fn from(id: ReviewId) -> String {
        id.0
    }
}

impl fmt::Display for ReviewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a person is asked to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewKind {
    /// A tool call marked `approval`: run it or not.
    Approval,
    /// A task or agent escalated: a person takes over.
    Escalation,
}

impl ReviewKind {
    /// `approval` or `escalation`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewKind::Approval => "approval",
            ReviewKind::Escalation => "escalation",
        }
    }
}

/// Where an item is in its life: `pending → approved → executing → executed | failed`, or
/// `pending → rejected`, or `pending → expired`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Waiting for a person.
    Pending,
    /// Approved, not yet run.
    Approved,
    /// Rejected: the call never runs; the model is told.
    Rejected,
    /// Nobody decided in time: treated as a rejection.
    Expired,
    /// Claimed for running (the journal's write-ahead mark). An item found here after a crash
    /// is *in doubt* and is never run again.
    Executing,
    /// Ran; the result is recorded.
    Executed,
    /// Ran and failed (or was in doubt and closed as failed); the error is recorded.
    Failed,
}

impl ReviewStatus {
    /// Every status, in life order.
    pub const ALL: [ReviewStatus; 7] = [
        ReviewStatus::Pending,
        ReviewStatus::Approved,
        ReviewStatus::Rejected,
        ReviewStatus::Expired,
        ReviewStatus::Executing,
        ReviewStatus::Executed,
        ReviewStatus::Failed,
    ];

    /// The status as stored and printed: `pending`, `approved`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Rejected => "rejected",
            ReviewStatus::Expired => "expired",
            ReviewStatus::Executing => "executing",
            ReviewStatus::Executed => "executed",
            ReviewStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for ReviewStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReviewStatus {
    type Err = ReviewError;

    fn from_str(s: &str) -> Result<Self, ReviewError> {
        ReviewStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ReviewError::Store(format!("`{s}` is not a review status")))
    }
}

/// One thing waiting for (or past) a person's decision. Fields in alphabetical order: items are
/// written into audit records, which hash their canonical JSON in declaration order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// For an approval, the exact call as the model asked for it; approving runs this payload.
    pub call: Option<ToolCall>,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When it was decided.
    pub decided_ms: Option<u64>,
    /// Who decided (a user name, `cli`, a service).
    pub decided_by: Option<String>,
    /// What the decider wrote.
    pub decision_note: Option<String>,
    /// After this, an undecided item is `expired`.
    pub expires_ms: Option<u64>,
    /// The id.
    pub id: ReviewId,
    /// Approval or escalation.
    pub kind: ReviewKind,
    /// The agent or task that raised it.
    pub owner: String,
    /// Why it is here (an escalation's failure; an approval's tool and scope, in words).
    pub reason: String,
    /// The tool's output (`executed`) or its error (`failed`), once run.
    pub result: Option<Value>,
    /// The run it belongs to, which resumes once it is decided.
    pub run_id: String,
    /// The scope the call needs.
    pub scope: Option<String>,
    /// Where it is in its life.
    pub status: ReviewStatus,
    /// The messages of the run up to and including the assistant message that asked for the
    /// call: what a resumed run continues from. Redacted like memory before it is stored.
    pub transcript: Vec<Message>,
}

impl ReviewItem {
    /// A pending approval of `call` (with the hash of its arguments taken now).
    pub fn approval(
        owner: impl Into<String>,
        run_id: impl Into<String>,
        call: ToolCall,
        scope: impl Into<String>,
        transcript: Vec<Message>,
        now_ms: u64,
    ) -> Self {
        let scope = scope.into();
        ReviewItem {
            reason: format!("`{}` needs approval (scope `{scope}`)", call.name),
            call: Some(call),
            created_ms: now_ms,
            decided_ms: None,
            decided_by: None,
            decision_note: None,
            expires_ms: None,
            id: ReviewId::random(),
            kind: ReviewKind::Approval,
            owner: owner.into(),
            result: None,
            run_id: run_id.into(),
            scope: Some(scope),
            status: ReviewStatus::Pending,
            transcript,
        }
    }

    /// A pending escalation.
    pub fn escalation(
        owner: impl Into<String>,
        run_id: impl Into<String>,
        reason: impl Into<String>,
        transcript: Vec<Message>,
        now_ms: u64,
    ) -> Self {
        ReviewItem {
            call: None,
            created_ms: now_ms,
            decided_ms: None,
            decided_by: None,
            decision_note: None,
            expires_ms: None,
            id: ReviewId::random(),
            kind: ReviewKind::Escalation,
            owner: owner.into(),
            reason: reason.into(),
            result: None,
            run_id: run_id.into(),
            scope: None,
            status: ReviewStatus::Pending,
            transcript,
        }
    }

    /// The same item, expiring at `expires_ms`.
    pub fn expiring_at(mut self, expires_ms: u64) -> Self {
        self.expires_ms = Some(expires_ms);
        self
    }

    /// The hash of the approved call's arguments, as stored.
    pub fn arguments_hash(&self) -> Option<String> {
        self.call.as_ref().map(ToolCall::arguments_hash)
    }
}

/// A person's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// `true` to approve, `false` to reject.
    pub approve: bool,
    /// Who decided.
    pub by: String,
    /// Why, optionally.
    pub note: Option<String>,
}

impl Decision {
    /// An approval by `by`.
    pub fn approve(by: impl Into<String>) -> Self {
        Decision {
            approve: true,
            by: by.into(),
            note: None,
        }
    }

    /// A rejection by `by`, saying why.
    pub fn reject(by: impl Into<String>, note: impl Into<String>) -> Self {
        Decision {
            approve: false,
            by: by.into(),
            note: Some(note.into()),
        }
    }
}

/// What [`ReviewStore::claim`] found.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Claim {
    /// The item was approved and is now `executing`: the caller runs its call, then calls
    /// [`ReviewStore::complete`].
    Run(ReviewItem),
    /// Already `executed` or `failed`: its recorded result; never run it again.
    Done(ReviewItem),
    /// Found `executing`: an earlier claim never completed (a crash, or a run in another
    /// process). In doubt, so never run again; the caller closes it as failed.
    InDoubt(ReviewItem),
    /// Not approved (pending, rejected or expired): nothing to run. A pending item past its
    /// deadline is marked `expired` by the claim.
    NotApproved(ReviewItem),
}

/// The end of a claimed run.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// `true`: `executed`; `false`: `failed`.
    pub ok: bool,
    /// The tool's output, or its error as JSON.
    pub result: Value,
}

/// A persisted review queue. Every method is one transaction; implementations: the in-memory
/// [`InMemoryReviews`], SQLite and PostgreSQL.
pub trait ReviewStore: Send + Sync {
    /// Stores a new item (usually `pending`). [`ReviewError::Duplicate`] if the id exists.
    fn put<'a>(&'a self, item: &'a ReviewItem) -> BoxFuture<'a, Result<(), ReviewError>>;

    /// The item of `id`, if any (as stored: an undecided item past its deadline still reads
    /// `pending` until something decides or claims it).
    fn get<'a>(
        &'a self,
        id: &'a ReviewId,
    ) -> BoxFuture<'a, Result<Option<ReviewItem>, ReviewError>>;

    /// Items, oldest first; only those of `status` when given.
    fn list(
        &self,
        status: Option<ReviewStatus>,
    ) -> BoxFuture<'_, Result<Vec<ReviewItem>, ReviewError>>;

    /// Records a decision on a `pending` item at `now_ms`. Deciding the same way twice returns
    /// the item unchanged (idempotent); the other way, or after `executing`, is
    /// [`ReviewError::AlreadyDecided`]; past its deadline the item becomes `expired` and the
    /// answer is [`ReviewError::Expired`].
    fn decide<'a>(
        &'a self,
        id: &'a ReviewId,
        decision: &'a Decision,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ReviewItem, ReviewError>>;

    /// The journal's write-ahead step: `approved → executing` in one transaction, answered
    /// [`Claim::Run`] only to the one caller that made that move.
    fn claim<'a>(
        &'a self,
        id: &'a ReviewId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Claim, ReviewError>>;

    /// `executing → executed | failed`, with the result.
    fn complete<'a>(
        &'a self,
        id: &'a ReviewId,
        completion: &'a Completion,
    ) -> BoxFuture<'a, Result<ReviewItem, ReviewError>>;
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
