//! The review queue against real stores: one suite over the in-memory queue, SQLite (a temp
//! file, opened twice as two handles) and PostgreSQL (`HARNESS_PG_URL`, as the memory suite).

use std::sync::Arc;

use harness_core::provider::{Message, ToolCall};
use harness_core::review::sqlite::SqliteReviews;
use harness_core::review::{
    Claim, Completion, Decision, InMemoryReviews, ReviewError, ReviewItem, ReviewStatus,
    ReviewStore,
};
use harness_core::testing::fixtures::temp_path;
use serde_json::json;

use super::memory::pg_url;

/// Two handles on one queue (the same object for the in-memory one): what two processes see.
type Pair = (String, Arc<dyn ReviewStore>, Arc<dyn ReviewStore>);

async fn stores() -> Vec<Pair> {
    let memory: Arc<dyn ReviewStore> = Arc::new(InMemoryReviews::new());
    let path = temp_path("reviews.db");
    let mut out: Vec<Pair> = vec![
        ("memory".into(), memory.clone(), memory),
        (
            format!("sqlite:{}", path.display()),
            Arc::new(SqliteReviews::open(&path).unwrap()),
            Arc::new(SqliteReviews::open(&path).unwrap()),
        ),
    ];
    #[cfg(feature = "postgres")]
    if let Some(url) = pg_url() {
        use harness_core::review::postgres::PostgresReviews;
        out.push((
            format!("postgres:{url}"),
            Arc::new(PostgresReviews::connect(&url).await.unwrap()),
            Arc::new(PostgresReviews::connect(&url).await.unwrap()),
        ));
    }
    #[cfg(not(feature = "postgres"))]
    let _ = pg_url;
    out
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn refund(now: u64) -> ReviewItem {
    let call = ToolCall::new("call-7", "refund", json!({"order": "A-17", "cents": 4_200}));
    let transcript = vec![
        Message::user("Refund order A-17, my key is sk-live0123456789abcdefXYZ"),
        Message::assistant("I will ask for a refund."),
    ];
    ReviewItem::approval("support", "run-1", call, "orders:write", transcript, now)
}

#[test]
fn an_approved_call_is_claimed_once_across_handles_and_restarts() {
    rt().block_on(async {
        for (name, a, b) in stores().await {
            let item = refund(1_000);
            a.put(&item).await.unwrap();
            assert_eq!(
                a.put(&item).await,
                Err(ReviewError::Duplicate(item.id.to_string())),
                "{name}"
            );
            let stored = b.get(&item.id).await.unwrap().expect("stored");
            assert_eq!(stored.status, ReviewStatus::Pending, "{name}");
            assert_eq!(stored.call, item.call, "{name}: the payload is stored as it is");
            assert_eq!(stored.arguments_hash(), item.arguments_hash(), "{name}");
            if name != "memory" {
                let text = &stored.transcript[0].content;
                assert!(!text.contains("sk-live0123"), "{name}: {text}");
            }
            let pending = b.list(Some(ReviewStatus::Pending)).await.unwrap();
            assert!(pending.iter().any(|i| i.id == item.id), "{name}");

            let yes = Decision::approve("ana");
            let first = a.decide(&item.id, &yes, 2_000).await.unwrap();
            let again = b.decide(&item.id, &yes, 3_000).await.unwrap();
            assert_eq!(first, again, "{name}: approving twice changes nothing");
            assert_eq!(first.decided_by.as_deref(), Some("ana"), "{name}");

            // Eight claims at once over two handles: exactly one may run the call.
            let claims = futures_join(
                (0..8)
                    .map(|i| {
                        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                        let id = item.id.clone();
                        tokio::spawn(async move { store.claim(&id, 4_000).await })
                    })
                    .collect(),
            )
            .await;
            let runs = claims
                .iter()
                .filter(|c| matches!(c, Ok(Claim::Run(_))))
                .count();
            assert_eq!(runs, 1, "{name}: {claims:?}");
            assert!(
                claims
                    .iter()
                    .all(|c| matches!(c, Ok(Claim::Run(_) | Claim::InDoubt(_)))),
                "{name}: {claims:?}"
            );
            let done = Completion {
                ok: true,
                result: json!({"refunded": 4_200}),
            };
            let completed = b.complete(&item.id, &done).await.unwrap();
            assert_eq!(completed.status, ReviewStatus::Executed, "{name}");
            assert!(
                matches!(a.claim(&item.id, 5_000).await.unwrap(), Claim::Done(d) if d.result == Some(json!({"refunded": 4_200}))),
                "{name}"
            );
            assert!(
                matches!(
                    a.complete(&item.id, &done).await,
                    Err(ReviewError::NotExecuting { .. })
                ),
                "{name}"
            );
            // A late approval of an executed call is not an error and runs nothing.
            assert_eq!(
                a.decide(&item.id, &yes, 6_000).await.unwrap().status,
                ReviewStatus::Executed,
                "{name}"
            );
        }
    });
}

#[test]
fn a_claim_without_a_completion_is_in_doubt_after_a_reopen() {
    rt().block_on(async {
        let path = temp_path("reviews-crash.db");
        let item = refund(1_000);
        {
            let q = SqliteReviews::open(&path).unwrap();
            q.put(&item).await.unwrap();
            q.decide(&item.id, &Decision::approve("ana"), 2_000)
                .await
                .unwrap();
            assert!(matches!(
                q.claim(&item.id, 3_000).await.unwrap(),
                Claim::Run(_)
            ));
            // The process dies here: the tool may or may not have run.
        }
        let q = SqliteReviews::open(&path).unwrap();
        let stored = q.get(&item.id).await.unwrap().unwrap();
        assert_eq!(stored.status, ReviewStatus::Executing);
        assert!(matches!(
            q.claim(&item.id, 4_000).await.unwrap(),
            Claim::InDoubt(_)
        ));
    });
}

#[test]
fn rejections_expiries_and_unknown_ids_are_typed() {
    rt().block_on(async {
        for (name, a, b) in stores().await {
            let item = refund(1_000);
            a.put(&item).await.unwrap();
            let no = Decision::reject("bo", "amount too high");
            let rejected = a.decide(&item.id, &no, 2_000).await.unwrap();
            assert_eq!(rejected.status, ReviewStatus::Rejected, "{name}");
            assert_eq!(rejected.decision_note.as_deref(), Some("amount too high"));
            assert!(
                matches!(
                    b.decide(&item.id, &Decision::approve("eve"), 3_000).await,
                    Err(ReviewError::AlreadyDecided {
                        status: ReviewStatus::Rejected,
                        ..
                    })
                ),
                "{name}"
            );
            assert!(
                matches!(
                    b.claim(&item.id, 3_000).await.unwrap(),
                    Claim::NotApproved(_)
                ),
                "{name}"
            );

            let late = refund(1_000).expiring_at(10_000);
            a.put(&late).await.unwrap();
            assert_eq!(
                b.decide(&late.id, &Decision::approve("ana"), 10_000).await,
                Err(ReviewError::Expired(late.id.to_string())),
                "{name}"
            );
            let stored = a.get(&late.id).await.unwrap().unwrap();
            assert_eq!(
                stored.status,
                ReviewStatus::Expired,
                "{name}: the expiry is stored"
            );
            let expired = a.list(Some(ReviewStatus::Expired)).await.unwrap();
            assert!(expired.iter().any(|i| i.id == late.id), "{name}");

            let unknown = harness_core::review::ReviewId::random();
            assert_eq!(
                a.claim(&unknown, 1).await,
                Err(ReviewError::NotFound(unknown.to_string())),
                "{name}"
            );
            assert_eq!(a.get(&unknown).await.unwrap(), None, "{name}");
        }
    });
}

#[test]
fn an_altered_row_is_an_error_never_a_payload_to_run() {
    rt().block_on(async {
        let path = temp_path("reviews-tamper.db");
        let q = SqliteReviews::open(&path).unwrap();
        let item = refund(1_000);
        q.put(&item).await.unwrap();
        q.decide(&item.id, &Decision::approve("ana"), 2_000)
            .await
            .unwrap();
        let raw = rusqlite::Connection::open(&path).unwrap();
        let json: String = raw
            .query_row(
                "SELECT item FROM harness_reviews WHERE id = ?1",
                [item.id.as_str()],
                |r| r.get(0),
            )
            .unwrap();
        let altered = json.replace("4200", "999999");
        assert_ne!(altered, json);
        raw.execute(
            "UPDATE harness_reviews SET item = ?1 WHERE id = ?2",
            [altered.as_str(), item.id.as_str()],
        )
        .unwrap();
        let err = q.claim(&item.id, 3_000).await.unwrap_err();
        assert!(
            matches!(&err, ReviewError::Store(m) if m.contains("altered")),
            "{err}"
        );
        raw.execute(
            "UPDATE harness_reviews SET item = 'not json' WHERE id = ?1",
            [item.id.as_str()],
        )
        .unwrap();
        let err = q.get(&item.id).await.unwrap_err();
        assert!(
            matches!(&err, ReviewError::Store(m) if m.contains("does not decode") && m.contains(item.id.as_str())),
            "{err}"
        );
    });
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("a claim task panicked"));
    }
    out
}
