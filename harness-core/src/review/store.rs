//! The state machine every store applies inside its transaction, and the in-memory store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{
    Claim, Completion, Decision, ReviewError, ReviewId, ReviewItem, ReviewStatus, ReviewStore,
};
use crate::provider::BoxFuture;

/// What a decision does to `item` at `now_ms`. `Ok(true)`: changed (write it back);
/// `Ok(false)`: the same decision again, nothing to write. An expiry changes the item *and* is
/// an error: write it back, then return [`ReviewError::Expired`].
fn apply_decision(
    item: &mut ReviewItem,
    decision: &Decision,
    now_ms: u64,
) -> Result<bool, ReviewError> {
    let wanted = if decision.approve {
        ReviewStatus::Approved
    } else {
        ReviewStatus::Rejected
    };
    match item.status {
        ReviewStatus::Pending if item.expires_ms.is_some_and(|e| now_ms >= e) => {
            item.status = ReviewStatus::Expired;
            item.decided_ms = Some(now_ms);
            Ok(true)
        }
        ReviewStatus::Pending => {
            item.status = wanted;
            item.decided_ms = Some(now_ms);
            item.decided_by = Some(decision.by.clone());
            item.decision_note = decision.note.clone();
            Ok(true)
        }
        ReviewStatus::Expired => Err(ReviewError::Expired(item.id.to_string())),
        status if status == wanted => Ok(false),
        // Approving again after the run started or ended changes nothing either.
        ReviewStatus::Executing | ReviewStatus::Executed | ReviewStatus::Failed
            if decision.approve =>
        {
            Ok(false)
        }
        status => Err(ReviewError::AlreadyDecided {
            id: item.id.to_string(),
            status,
            wanted,
        }),
    }
}

/// What a claim does to `item` at `now_ms`; the bool says whether to write the item back.
fn apply_claim(item: &mut ReviewItem, now_ms: u64) -> (Claim, bool) {
    match item.status {
        ReviewStatus::Approved => {
            item.status = ReviewStatus::Executing;
            (Claim::Run(item.clone()), true)
        }
        ReviewStatus::Executing => (Claim::InDoubt(item.clone()), false),
        ReviewStatus::Executed | ReviewStatus::Failed => (Claim::Done(item.clone()), false),
        ReviewStatus::Pending if item.expires_ms.is_some_and(|e| now_ms >= e) => {
            item.status = ReviewStatus::Expired;
            item.decided_ms = Some(now_ms);
            (Claim::NotApproved(item.clone()), true)
        }
        ReviewStatus::Pending | ReviewStatus::Rejected | ReviewStatus::Expired => {
            (Claim::NotApproved(item.clone()), false)
        }
    }
}

/// What a completion does to `item`: only an `executing` item completes.
fn apply_completion(item: &mut ReviewItem, completion: &Completion) -> Result<(), ReviewError> {
    if item.status != ReviewStatus::Executing {
        return Err(ReviewError::NotExecuting {
            id: item.id.to_string(),
            status: item.status,
        });
    }
    item.status = if completion.ok {
        ReviewStatus::Executed
    } else {
        ReviewStatus::Failed
    };
    item.result = Some(completion.result.clone());
    Ok(())
}

/// A decision as a store's read-modify-write step: whether to write the item back, and the
/// answer (an expiry is written back *and* answered [`ReviewError::Expired`]).
pub(crate) fn decide_step(
    item: &mut ReviewItem,
    decision: &Decision,
    now_ms: u64,
) -> (bool, Result<ReviewItem, ReviewError>) {
    match apply_decision(item, decision, now_ms) {
        Ok(_) if item.status == ReviewStatus::Expired => {
            (true, Err(ReviewError::Expired(item.id.to_string())))
        }
        Ok(changed) => (changed, Ok(item.clone())),
        Err(e) => (false, Err(e)),
    }
}

/// A claim as a store's read-modify-write step.
pub(crate) fn claim_step(item: &mut ReviewItem, now_ms: u64) -> (bool, Result<Claim, ReviewError>) {
    let (claim, changed) = apply_claim(item, now_ms);
    (changed, Ok(claim))
}

/// A completion as a store's read-modify-write step.
pub(crate) fn complete_step(
    item: &mut ReviewItem,
    completion: &Completion,
) -> (bool, Result<ReviewItem, ReviewError>) {
    match apply_completion(item, completion) {
        Ok(()) => (true, Ok(item.clone())),
        Err(e) => (false, Err(e)),
    }
}

/// A review queue in memory (one process; gone when it ends). For tests and for programs whose
/// approvals are decided while they run.
#[derive(Debug, Default)]
pub struct InMemoryReviews {
    items: Mutex<BTreeMap<ReviewId, ReviewItem>>,
}

impl InMemoryReviews {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<ReviewId, ReviewItem>) -> Result<T, ReviewError>,
    ) -> Result<T, ReviewError> {
        // A poisoned lock means a panic elsewhere mid-update; the map itself is still whole
        // (every update below is a single insert or field write).
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut items)
    }

    fn item<'m>(
        items: &'m mut BTreeMap<ReviewId, ReviewItem>,
        id: &ReviewId,
    ) -> Result<&'m mut ReviewItem, ReviewError> {
        items
            .get_mut(id)
            .ok_or_else(|| ReviewError::NotFound(id.to_string()))
    }
}

impl ReviewStore for InMemoryReviews {
    fn put<'a>(&'a self, item: &'a ReviewItem) -> BoxFuture<'a, Result<(), ReviewError>> {
        let r = self.with(|items| {
            if items.contains_key(&item.id) {
                return Err(ReviewError::Duplicate(item.id.to_string()));
            }
            items.insert(item.id.clone(), item.clone());
            Ok(())
        });
        Box::pin(async move { r })
    }

    fn get<'a>(
        &'a self,
        id: &'a ReviewId,
    ) -> BoxFuture<'a, Result<Option<ReviewItem>, ReviewError>> {
        let r = self.with(|items| Ok(items.get(id).cloned()));
        Box::pin(async move { r })
    }

    fn list(
        &self,
        status: Option<ReviewStatus>,
    ) -> BoxFuture<'_, Result<Vec<ReviewItem>, ReviewError>> {
        let r = self.with(|items| {
            let mut out: Vec<ReviewItem> = items
                .values()
                .filter(|i| status.is_none_or(|s| i.status == s))
                .cloned()
                .collect();
            out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
            Ok(out)
        });
        Box::pin(async move { r })
    }

    fn decide<'a>(
        &'a self,
        id: &'a ReviewId,
        decision: &'a Decision,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ReviewItem, ReviewError>> {
        let r = self.with(|items| decide_step(Self::item(items, id)?, decision, now_ms).1);
        Box::pin(async move { r })
    }

    fn claim<'a>(
        &'a self,
        id: &'a ReviewId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Claim, ReviewError>> {
        let r = self.with(|items| claim_step(Self::item(items, id)?, now_ms).1);
        Box::pin(async move { r })
    }

    fn complete<'a>(
        &'a self,
        id: &'a ReviewId,
        completion: &'a Completion,
    ) -> BoxFuture<'a, Result<ReviewItem, ReviewError>> {
        let r = self.with(|items| complete_step(Self::item(items, id)?, completion).1);
        Box::pin(async move { r })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ToolCall;
    use serde_json::json;

    fn pending() -> ReviewItem {
        let call = ToolCall::new("call-1", "refund", json!({"order": "A-1", "cents": 500}));
        ReviewItem::approval("support", "run-1", call, "orders:write", vec![], 1_000)
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn approved_twice_claims_once() {
        block(async {
            let q = InMemoryReviews::new();
            let item = pending();
            q.put(&item).await.unwrap();
            let yes = Decision::approve("ana");
            let a = q.decide(&item.id, &yes, 2_000).await.unwrap();
            let b = q.decide(&item.id, &yes, 3_000).await.unwrap();
            assert_eq!(a, b, "the second approval changes nothing");
            assert!(matches!(
                q.claim(&item.id, 4_000).await.unwrap(),
                Claim::Run(_)
            ));
            assert!(matches!(
                q.claim(&item.id, 4_001).await.unwrap(),
                Claim::InDoubt(_)
            ));
            let done = Completion {
                ok: true,
                result: json!({"refunded": 500}),
            };
            q.complete(&item.id, &done).await.unwrap();
            assert!(matches!(
                q.claim(&item.id, 5_000).await.unwrap(),
                Claim::Done(_)
            ));
            assert!(matches!(
                q.complete(&item.id, &done).await,
                Err(ReviewError::NotExecuting { .. })
            ));
        });
    }

    #[test]
    fn reject_then_approve_is_refused_and_nothing_runs() {
        block(async {
            let q = InMemoryReviews::new();
            let item = pending();
            q.put(&item).await.unwrap();
            q.decide(&item.id, &Decision::reject("ana", "too much"), 2_000)
                .await
                .unwrap();
            let again = q.decide(&item.id, &Decision::approve("bo"), 3_000).await;
            assert!(matches!(again, Err(ReviewError::AlreadyDecided { .. })));
            assert!(matches!(
                q.claim(&item.id, 4_000).await.unwrap(),
                Claim::NotApproved(_)
            ));
        });
    }

    #[test]
    fn an_undecided_item_expires() {
        block(async {
            let q = InMemoryReviews::new();
            let item = pending().expiring_at(10_000);
            q.put(&item).await.unwrap();
            let late = q.decide(&item.id, &Decision::approve("ana"), 10_000).await;
            assert_eq!(late, Err(ReviewError::Expired(item.id.to_string())));
            let stored = q.get(&item.id).await.unwrap().unwrap();
            assert_eq!(stored.status, ReviewStatus::Expired);
            assert_eq!(q.list(Some(ReviewStatus::Pending)).await.unwrap(), vec![]);
        });
    }

    #[test]
    fn ids_are_checked() {
        assert!("rv-0123abcd".parse::<ReviewId>().is_ok());
        assert!("0123".parse::<ReviewId>().is_err());
        assert!("rv-".parse::<ReviewId>().is_err());
        assert!("rv-a b".parse::<ReviewId>().is_err());
        assert!(ReviewId::random().as_str().starts_with("rv-"));
    }
}
