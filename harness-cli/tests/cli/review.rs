//! `harness review list | show | approve | reject` on a real SQLite queue written by the
//! program's own store.

use std::process::Command;

use harness_core::provider::{Message, ToolCall};
use harness_core::review::sqlite::SqliteReviews;
use harness_core::review::{Claim, ReviewItem, ReviewStatus, ReviewStore, now_ms};
use harness_core::testing::fixtures::temp_path;

fn review(db: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("review")
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("HARNESS_REVIEW_DB")
        .output()
        .expect("the harness binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_person_lists_approves_and_rejects_and_the_program_sees_it() {
    let db = temp_path("cli-reviews/queue.db");
    let (refund, wipe) = rt().block_on(async {
        let q = SqliteReviews::open(&db).unwrap();
        let now = now_ms();
        let refund = ReviewItem::approval(
            "support",
            "run-1",
            ToolCall::new(
                "call-1",
                "refund",
                serde_json::json!({"order": "A-17", "cents": 4200}),
            ),
            "orders:write",
            vec![Message::user("refund A-17")],
            now,
        );
        let wipe = ReviewItem::approval(
            "support",
            "run-2",
            ToolCall::new(
                "call-2",
                "close_account",
                serde_json::json!({"account": "c-9"}),
            ),
            "accounts:write",
            vec![],
            now + 1,
        );
        q.put(&refund).await.unwrap();
        q.put(&wipe).await.unwrap();
        (refund, wipe)
    });

    let (code, out, err) = review(&db, &["list"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("ID  "), "{out}");
    assert!(
        lines[1].contains(refund.id.as_str()) && lines[1].contains("refund"),
        "{out}"
    );
    assert!(
        lines[1].contains("orders:write") && lines[1].contains("\"cents\":4200"),
        "{out}"
    );
    assert!(
        lines[2].contains(wipe.id.as_str()) && lines[2].contains("pending"),
        "{out}"
    );

    let (code, out, err) = review(&db, &["approve", refund.id.as_str(), "--by", "ana"]);
    assert_eq!(
        (code, out.trim()),
        (0, format!("{}: approved", refund.id).as_str()),
        "{err}"
    );
    // Approving twice is not an error and changes nothing.
    let (code, _, err) = review(&db, &["approve", refund.id.as_str()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = review(
        &db,
        &["reject", wipe.id.as_str(), "--note", "not without a ticket"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = review(&db, &["approve", wipe.id.as_str()]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("rejected") && err.contains("can no longer be approved"),
        "{err}"
    );

    let (code, out, err) = review(&db, &["list", "--status", "all", "--json"]);
    assert_eq!(code, 0, "{err}");
    let items: Vec<ReviewItem> = serde_json::from_str(&out).unwrap();
    let status: Vec<(String, ReviewStatus)> =
        items.iter().map(|i| (i.id.to_string(), i.status)).collect();
    assert_eq!(
        status,
        [
            (refund.id.to_string(), ReviewStatus::Approved),
            (wipe.id.to_string(), ReviewStatus::Rejected)
        ]
    );
    assert_eq!(items[0].decided_by.as_deref(), Some("ana"));
    assert_eq!(
        items[1].decision_note.as_deref(),
        Some("not without a ticket")
    );

    // The program resuming the run claims the approved call once.
    rt().block_on(async {
        let q = SqliteReviews::open(&db).unwrap();
        assert!(matches!(
            q.claim(&refund.id, now_ms()).await.unwrap(),
            Claim::Run(_)
        ));
        assert!(matches!(
            q.claim(&wipe.id, now_ms()).await.unwrap(),
            Claim::NotApproved(_)
        ));
    });

    let (code, out, err) = review(&db, &["show", refund.id.as_str()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"status\": \"executing\"") && out.contains("A-17"),
        "{out}"
    );
    let (code, _, err) = review(&db, &["show", "rv-doesnotexist"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no review item `rv-doesnotexist`"), "{err}");
    let (code, _, err) = review(&db, &["approve", "42"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not a review id"), "{err}");
    let (code, _, err) = review(&db, &["list", "--status", "maybe"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown status `maybe`"), "{err}");
}

#[test]
fn a_file_that_is_not_a_queue_is_an_error() {
    let path = temp_path("cli-reviews/not-a-db.txt");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "hello, this is not SQLite\n".repeat(100)).unwrap();
    let (code, _, err) = review(&path, &["list"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("harness review: review store: sqlite:"),
        "{err}"
    );
}
