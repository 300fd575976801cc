//! Memory against real stores: one suite, run on SQLite (a temp file) and on PostgreSQL (the server
//! `scripts/postgres.sh` starts; its address in `HARNESS_PG_URL`). Without that variable the
//! Postgres half is skipped with a message — except under CI (`CI` set), where it fails.
//!
//! Two processes appending to one session, and a process SIGKILLed mid-run, are real processes:
//! the test binary runs itself again as the child (`memory::child`, which does nothing unless
//! `CHILD_ENV` is set).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use harness_core::memory::sqlite::SqliteMemory;
use harness_core::memory::{
    Memory, MemoryError, Redactor, SessionId, SessionStore, state_schema_hash,
};
use harness_core::provider::Message;
use harness_core::testing::fixtures::temp_path;

const CHILD_ENV: &str = "HARNESS_MEMORY_TEST_CHILD";

#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Counter {
    n: u64,
    notes: Vec<String>,
}

/// The same struct after a release renamed a field: another schema hash.
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct CounterV2 {
    count: u64,
    notes: Vec<String>,
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn id(s: &str) -> SessionId {
    s.parse().unwrap()
}

/// A fresh, unique session id (tests share one Postgres database across runs).
fn fresh(name: &str) -> SessionId {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    id(&format!("{name}-{}-{n}-{nanos}", std::process::id()))
}

pub(crate) fn pg_url() -> Option<String> {
    match std::env::var("HARNESS_PG_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but HARNESS_PG_URL is not: .ci/run must start PostgreSQL")
        }
        Err(_) => {
            eprintln!(
                "memory: HARNESS_PG_URL not set, skipping the PostgreSQL half (see scripts/postgres.sh)"
            );
            None
        }
    }
}

/// Every store the suite runs on: what it is called, and how a child process reopens it.
async fn stores() -> Vec<(String, Arc<dyn SessionStore>)> {
    let path = temp_path("memory.db");
    let mut out: Vec<(String, Arc<dyn SessionStore>)> = vec![(
        format!("sqlite:{}", path.display()),
        Arc::new(SqliteMemory::open(&path).unwrap()),
    )];
    #[cfg(feature = "postgres")]
    if let Some(url) = pg_url() {
        let store = harness_core::memory::postgres::PostgresMemory::connect(&url)
            .await
            .unwrap();
        out.push((format!("postgres:{url}"), Arc::new(store)));
    }
    #[cfg(not(feature = "postgres"))]
    let _ = pg_url;
    out
}

async fn reopen(spec: &str) -> Arc<dyn SessionStore> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return Arc::new(SqliteMemory::open(path).unwrap());
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = spec.strip_prefix("postgres:") {
        return Arc::new(
            harness_core::memory::postgres::PostgresMemory::connect(url)
                .await
                .unwrap(),
        );
    }
    panic!("unknown store {spec}")
}

fn each_store(test: impl AsyncFn(&str, Memory)) {
    rt().block_on(async {
        for (spec, store) in stores().await {
            eprintln!("memory: on {}", store.name());
            test(&spec, Memory::new(store)).await;
        }
    });
}

#[test]
fn turns_and_state_persist_across_reopen() {
    each_store(async |spec, memory| {
        let sid = fresh("persist");
        let mut s = memory.open::<Counter>(&sid).await.unwrap();
        assert_eq!(s.version(), 0);
        for i in 1..=3 {
            s.state.n += 1;
            let v = memory
                .commit(
                    &mut s,
                    vec![
                        Message::user(format!("q{i}")),
                        Message::assistant(format!("a{i}")),
                    ],
                )
                .await
                .unwrap();
            assert_eq!(v, i);
        }
        let memory2 = Memory::new(reopen(spec).await);
        let again = memory2.open::<Counter>(&sid).await.unwrap();
        assert_eq!(again.version(), 3);
        assert_eq!(again.state.n, 3);
        let seqs: Vec<u64> = again.turns.iter().map(|t| t.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(again.turns[1].messages[1].content, "a2");
        let local: Vec<_> = s.turns.iter().map(|t| (&t.messages, t.seq)).collect();
        let stored: Vec<_> = again.turns.iter().map(|t| (&t.messages, t.seq)).collect();
        assert_eq!(
            local, stored,
            "the local copy after commits is what a reader loads"
        );
    });
}

#[test]
fn a_stale_writer_gets_a_conflict_and_changes_nothing() {
    each_store(async |_, memory| {
        let sid = fresh("conflict");
        let mut a = memory.open::<Counter>(&sid).await.unwrap();
        let mut b = memory.open::<Counter>(&sid).await.unwrap();
        memory
            .commit(&mut a, vec![Message::user("from a")])
            .await
            .unwrap();
        let err = memory
            .commit(&mut b, vec![Message::user("from b")])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                MemoryError::Conflict {
                    expected: 0,
                    found: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            b.version(),
            0,
            "a failed commit leaves the local copy as it was"
        );
        let now = memory.open::<Counter>(&sid).await.unwrap();
        assert_eq!(now.turns.len(), 1);
        assert_eq!(now.turns[0].messages[0].content, "from a");
    });
}

#[test]
fn append_retries_through_conflicts_and_loses_no_update() {
    each_store(async |_, memory| {
        let sid = fresh("append");
        // Four writers in lockstep: give them room; the point is that no update is lost.
        let memory = Arc::new(memory.with_max_attempts(100));
        let mut tasks = tokio::task::JoinSet::new();
        (0..4).for_each(|w| {
            let memory = memory.clone();
            let sid = sid.clone();
            tasks.spawn(async move {
                for i in 0..5 {
                    memory
                        .append::<Counter>(&sid, Some("w"), |s| {
                            s.n += 1;
                            vec![Message::user(format!("{w}-{i}"))]
                        })
                        .await
                        .unwrap();
                }
            });
        });
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let s = memory.open::<Counter>(&sid).await.unwrap();
        assert_eq!(s.state.n, 20);
        assert_eq!(s.turns.len(), 20);
        let distinct: HashSet<_> = s
            .turns
            .iter()
            .map(|t| t.messages[0].content.clone())
            .collect();
        assert_eq!(distinct.len(), 20);
    });
}

#[test]
fn a_state_of_another_schema_is_an_error_unless_migrated() {
    each_store(async |_, memory| {
        let sid = fresh("schema");
        let mut s = memory.open::<Counter>(&sid).await.unwrap();
        s.state.n = 7;
        memory.commit_state(&mut s).await.unwrap();
        let err = memory.open::<CounterV2>(&sid).await.unwrap_err();
        match &err {
            MemoryError::StateSchemaMismatch {
                stored, expected, ..
            } => {
                assert_eq!(stored, &state_schema_hash::<Counter>());
                assert_eq!(expected, &state_schema_hash::<CounterV2>());
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("open_migrating"), "{err}");
        let migrated = memory
            .open_migrating::<CounterV2>(&sid, |from, json| {
                assert_eq!(from, state_schema_hash::<Counter>());
                Ok(CounterV2 {
                    count: json["n"].as_u64().ok_or("no n")?,
                    notes: vec![],
                })
            })
            .await
            .unwrap();
        assert_eq!(migrated.state.count, 7);
        let failed = memory
            .open_migrating::<CounterV2>(&sid, |_, _| Err("cannot".into()))
            .await
            .unwrap_err();
        assert!(matches!(failed, MemoryError::BadState { .. }), "{failed}");
    });
}

#[test]
fn secrets_never_reach_the_store() {
    each_store(async |spec, memory| {
        let memory = memory.with_redactor(Redactor::new().secret("program-secret-123"));
        let sid = fresh("secrets");
        let mut s = memory.open::<Counter>(&sid).await.unwrap();
        s.state
            .notes
            .push("token sk-live-abcdefghijklmnopqrstuv".into());
        memory
            .commit(
                &mut s,
                vec![Message::user(
                    "my key is program-secret-123, Bearer abcdefghijklmnopqrstuvwx",
                )],
            )
            .await
            .unwrap();
        let stored = Memory::new(reopen(spec).await)
            .store()
            .load(&sid)
            .await
            .unwrap()
            .unwrap();
        let text = serde_json::to_string(&stored).unwrap();
        for secret in [
            "program-secret-123",
            "sk-live-abcdefghijklmnopqrstuv",
            "abcdefghijklmnopqrstuvwx",
        ] {
            assert!(!text.contains(secret), "{secret} stored: {text}");
        }
        assert_eq!(
            stored.turns[0].messages[0].content,
            "my key is [redacted], [redacted]"
        );
        assert_eq!(
            s.state.notes,
            ["token [redacted]"],
            "the local copy is what was stored"
        );
    });
}

#[test]
fn retention_expires_and_purges_and_delete_removes_everything() {
    each_store(async |_, memory| {
        let short = memory.clone().with_retention(Duration::from_millis(1));
        let gone = fresh("ttl");
        let mut s = short.open::<Counter>(&gone).await.unwrap();
        short
            .commit(&mut s, vec![Message::user("x")])
            .await
            .unwrap();
        assert!(s.expires_ms.is_some());
        let kept = fresh("kept");
        let mut k = memory.open::<Counter>(&kept).await.unwrap();
        memory
            .commit(&mut k, vec![Message::user("y")])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            memory.store().load(&gone).await.unwrap().is_none(),
            "expired reads as absent"
        );
        assert!(memory.purge_expired().await.unwrap() >= 1);
        assert!(memory.store().load(&kept).await.unwrap().is_some());
        // A new writer of an expired id starts a new session at version 0.
        let mut fresh_again = memory.open::<Counter>(&gone).await.unwrap();
        assert_eq!(fresh_again.version(), 0);
        memory
            .commit(&mut fresh_again, vec![Message::user("z")])
            .await
            .unwrap();
        assert!(memory.delete(&kept).await.unwrap());
        assert!(!memory.delete(&kept).await.unwrap());
        assert!(memory.store().load(&kept).await.unwrap().is_none());
        let reopened = memory.open::<Counter>(&kept).await.unwrap();
        assert!(reopened.turns.is_empty() && reopened.version() == 0);
    });
}

#[test]
fn hand_off_and_summaries_keep_the_originals() {
    each_store(async |_, memory| {
        let sid = fresh("handoff");
        let mut s = memory.open::<Counter>(&sid).await.unwrap();
        for i in 0..4 {
            memory
                .commit(&mut s, vec![Message::user(format!("t{i}"))])
                .await
                .unwrap();
        }
        memory
            .summarise(&mut s, 3, "the first three turns")
            .await
            .unwrap();
        assert_eq!(s.unsummarised().len(), 1);
        memory.hand_off(&mut s, "billing-agent").await.unwrap();
        let next = memory.open::<Counter>(&sid).await.unwrap();
        assert_eq!(next.owner.as_deref(), Some("billing-agent"));
        assert_eq!(next.turns.len(), 4, "summarised turns are kept");
        assert_eq!(next.summary().unwrap().text, "the first three turns");
        assert_eq!(next.unsummarised()[0].seq, 4);
        let mut next = next;
        memory
            .commit(&mut next, vec![Message::user("after")])
            .await
            .unwrap();
        let last = memory.open::<Counter>(&sid).await.unwrap();
        assert_eq!(last.turns[4].author.as_deref(), Some("billing-agent"));
    });
}

#[test]
fn bad_ids_and_bad_files_are_typed_errors() {
    for bad in ["", "a b", "../etc", &"x".repeat(129), "é"] {
        assert!(
            matches!(bad.parse::<SessionId>(), Err(MemoryError::InvalidId(_))),
            "{bad:?}"
        );
    }
    let not_db = temp_path("not-a-db.db");
    std::fs::write(
        &not_db,
        b"this is not a sqlite file, just text, long enough to be read",
    )
    .unwrap();
    let err = SqliteMemory::open(&not_db).err().expect("not a database");
    assert!(matches!(err, MemoryError::Store { .. }), "{err}");
    assert!(err.to_string().contains("not-a-db.db"), "{err}");
}

#[test]
fn corrupt_rows_and_newer_formats_are_typed_errors() {
    let path = temp_path("corrupt.db");
    rt().block_on(async {
        let memory = Memory::new(SqliteMemory::open(&path).unwrap());
        let sid = id("corrupt-1");
        let mut s = memory.open::<Counter>(&sid).await.unwrap();
        memory
            .commit(&mut s, vec![Message::user("ok")])
            .await
            .unwrap();
        let conn = rusqlite_connection(&path);
        conn.execute(
            "UPDATE harness_turns SET messages = '{not json' WHERE session_id = 'corrupt-1'",
            [],
        )
        .unwrap();
        let err = memory.open::<Counter>(&sid).await.unwrap_err();
        assert!(matches!(err, MemoryError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("turn 1"), "{err}");
        conn.execute("INSERT INTO harness_memory_format (format) VALUES (99)", [])
            .unwrap();
        drop(conn);
        let err = SqliteMemory::open(&path).err().expect("newer format");
        assert!(
            matches!(
                err,
                MemoryError::NewerFormat {
                    found: 99,
                    supported: 1,
                    ..
                }
            ),
            "{err}"
        );
    });
}

/// A second connection to a store's file, to damage it the way a bug or a disk would.
fn rusqlite_connection(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let sid = id(&std::env::var("HARNESS_MEMORY_TEST_SESSION").unwrap());
    let writer = std::env::var("HARNESS_MEMORY_TEST_WRITER").unwrap();
    let count: u64 = std::env::var("HARNESS_MEMORY_TEST_COUNT")
        .unwrap()
        .parse()
        .unwrap();
    rt().block_on(async {
        let memory = Memory::new(reopen(&spec).await).with_max_attempts(1_000);
        let mut out = std::io::stdout();
        for i in 0..count {
            memory
                .append::<Counter>(&sid, Some(&writer), |s| {
                    s.n += 1;
                    vec![Message::user(format!("{writer} {i}"))]
                })
                .await
                .unwrap();
            writeln!(out, "COMMITTED {writer} {i}").unwrap();
            out.flush().unwrap();
        }
    });
}

fn spawn_child(spec: &str, sid: &SessionId, writer: &str, count: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "memory::child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec)
        .env("HARNESS_MEMORY_TEST_SESSION", sid.as_str())
        .env("HARNESS_MEMORY_TEST_WRITER", writer)
        .env("HARNESS_MEMORY_TEST_COUNT", count.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn committed(child: &mut std::process::Child, stop_after: Option<usize>) -> Vec<String> {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    for line in lines.by_ref() {
        // libtest prints `test memory::child ... ` before the child's first line.
        if let Some((_, rest)) = line.unwrap().split_once("COMMITTED ") {
            out.push(rest.to_owned());
            if Some(out.len()) == stop_after {
                child.kill().unwrap(); // SIGKILL on Unix
                break;
            }
        }
    }
    // Lines printed before the kill are still in the pipe.
    for line in lines {
        if let Some((_, rest)) = line.unwrap().split_once("COMMITTED ") {
            out.push(rest.to_owned());
        }
    }
    out
}

#[test]
fn two_processes_appending_to_one_session_never_lose_or_fork_a_turn() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    each_store(async |spec, memory| {
        let sid = fresh("two-procs");
        let mut a = spawn_child(spec, &sid, "a", 30);
        let mut b = spawn_child(spec, &sid, "b", 30);
        let (ca, cb) = (committed(&mut a, None), committed(&mut b, None));
        assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
        assert_eq!((ca.len(), cb.len()), (30, 30));
        let s = memory.open::<Counter>(&sid).await.unwrap();
        assert_eq!(s.turns.len(), 60, "every committed turn is there");
        assert_eq!(s.state.n, 60, "no state update was lost");
        let seqs: Vec<u64> = s.turns.iter().map(|t| t.seq).collect();
        assert_eq!(seqs, (1..=60).collect::<Vec<_>>(), "no gap, no fork");
        let texts: HashSet<String> = s
            .turns
            .iter()
            .map(|t| t.messages[0].content.clone())
            .collect();
        let want: HashSet<String> = ca.iter().chain(&cb).cloned().collect();
        assert_eq!(texts, want);
        for t in &s.turns {
            let author = t.author.as_deref().unwrap();
            assert!(t.messages[0].content.starts_with(author));
        }
    });
}

#[cfg(unix)]
#[test]
fn sigkill_mid_run_loses_no_committed_turn() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    each_store(async |spec, memory| {
        let sid = fresh("killed");
        let mut reported = Vec::new();
        for (round, kill_after) in [40usize, 25].into_iter().enumerate() {
            let mut child = spawn_child(spec, &sid, &format!("r{round}"), 100_000);
            reported.extend(committed(&mut child, Some(kill_after)));
            let status = child.wait().unwrap();
            assert!(!status.success(), "the child was killed, not finished");
        }
        let s = memory.open::<Counter>(&sid).await.unwrap();
        let stored: HashSet<String> = s
            .turns
            .iter()
            .map(|t| t.messages[0].content.clone())
            .collect();
        for r in &reported {
            assert!(stored.contains(r), "committed turn `{r}` lost");
        }
        // A commit may land after its process printed nothing (killed between commit and print).
        assert!(s.turns.len() >= reported.len() && s.turns.len() <= reported.len() + 2);
        let seqs: Vec<u64> = s.turns.iter().map(|t| t.seq).collect();
        assert_eq!(seqs, (1..=s.turns.len() as u64).collect::<Vec<_>>());
        assert_eq!(
            s.state.n,
            s.turns.len() as u64,
            "state and turns were committed together"
        );
    });
}
