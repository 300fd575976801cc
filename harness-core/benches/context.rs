//! Context assembly and memory: a 50-turn history and 20 documents assembled into an 8k-token
//! budget (targets: ≤ 50 µs with the estimator, ≤ 500 µs with tiktoken), against `serde_json`
//! encoding the same messages; and appending a turn to SQLite (WAL, fsync per commit and
//! OS-buffered; target ≤ 1 ms p99), reported as percentiles first.
//!
//! `cargo bench -p harness-core --features sqlite,tiktoken --bench context`

use std::time::{Duration, Instant};

use divan::{Bencher, black_box};
use harness_core::context::tokens::{CachedCounter, Tiktoken};
use harness_core::context::{
    ContextPlan, Document, Estimator, Fill, Section, SectionKind, TokenCounter, Truncate,
};
use harness_core::memory::sqlite::{Durability, SqliteMemory, SqliteOptions};
use harness_core::memory::{Memory, Turn};
use harness_core::provider::Message;

static PLAN: ContextPlan = ContextPlan::new(
    "bench",
    "1",
    &[
        Section::required("system", SectionKind::System),
        Section::optional(
            "history",
            SectionKind::History,
            1,
            Truncate::DropOldestTurns,
        )
        .with_budget(4_000),
        Section::optional(
            "docs",
            SectionKind::Documents,
            2,
            Truncate::DropLowestRanked,
        ),
        Section::required("question", SectionKind::UserInput),
    ],
    512,
);

const SENTENCE: &str = "The customer says the parcel arrived late and the box was damaged, and asks \
whether the refund for the missing item has been processed yet. ";

fn turns() -> Vec<Turn> {
    (1..=50)
        .map(|seq| Turn {
            seq,
            messages: vec![
                Message::user(format!("{seq}: {}", SENTENCE.repeat(2))),
                Message::assistant(format!("{seq}: {}", SENTENCE.repeat(3))),
            ],
            author: None,
            at_ms: 0,
        })
        .collect()
}

fn docs() -> Vec<Document> {
    (0..20)
        .map(|i| Document {
            id: format!("doc-{i:02}"),
            text: SENTENCE.repeat(4 + i % 5),
            score: f64::from((i * 7 % 20) as u32) / 20.0,
            source: "kb".into(),
        })
        .collect()
}

fn fill(turns: &[Turn], docs: &[Document]) -> Fill {
    Fill::new()
        .text(
            "system",
            "You are a support assistant. Answer from the documents.",
        )
        .text("question", "Where is my refund?")
        .history("history", turns, None)
        .documents("docs", docs.to_vec())
}

fn main() {
    append_percentiles();
    divan::main();
}

/// p50/p99 of one `Memory::commit` of a two-message turn, each durability, 1,000 commits.
fn append_percentiles() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (name, durability) in [("fsync", Durability::Fsync), ("os", Durability::Os)] {
        let dir = std::env::temp_dir().join(format!("harness-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteMemory::open_with(
            dir.join("memory.db"),
            SqliteOptions {
                durability,
                ..SqliteOptions::default()
            },
        )
        .expect("store");
        let memory = Memory::new(store);
        let mut times: Vec<Duration> = rt.block_on(async {
            let id = "bench".parse().expect("id");
            let mut session = memory.open::<()>(&id).await.expect("open");
            let mut times = Vec::with_capacity(1_000);
            for i in 0..1_000 {
                let turn = vec![
                    Message::user(format!("q{i} {SENTENCE}")),
                    Message::assistant(SENTENCE),
                ];
                let t = Instant::now();
                memory.commit(&mut session, turn).await.expect("commit");
                times.push(t.elapsed());
            }
            times
        });
        times.sort();
        let p = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
        println!(
            "sqlite append ({name:>5}): p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}   (target p99 <= 1 ms)",
            p(0.5),
            p(0.99),
            times[times.len() - 1]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The baseline: `serde_json` encoding the messages the assembly sends.
#[divan::bench(sample_count = 200)]
fn serde_json_encode_same_messages(bencher: Bencher) {
    let (turns, docs) = (turns(), docs());
    let sent = PLAN
        .assemble(fill(&turns, &docs), &Estimator::default(), 8_192)
        .expect("fits")
        .messages;
    bencher.bench(|| serde_json::to_vec(black_box(&sent)).expect("encodes"));
}

fn assemble_with(bencher: Bencher, counter: &dyn TokenCounter) {
    let (turns, docs) = (turns(), docs());
    bencher
        .with_inputs(|| fill(&turns, &docs))
        .bench_values(|f| PLAN.assemble(f, counter, 8_192).expect("fits"));
}

/// 50 turns + 20 documents into 8,192 − 512 tokens, counted by the estimator.
#[divan::bench(sample_count = 200)]
fn assemble_estimator(bencher: Bencher) {
    assemble_with(bencher, &Estimator::default());
}

/// The same, counted by tiktoken's `o200k_base`, every text counted afresh.
#[divan::bench(sample_count = 100)]
fn assemble_tiktoken(bencher: Bencher) {
    assemble_with(bencher, &Tiktoken::o200k());
}

/// The same through a `CachedCounter` that has seen these texts (the next turn of a session: its
/// history and the knowledge base were counted before).
#[divan::bench(sample_count = 200)]
fn assemble_tiktoken_cached(bencher: Bencher) {
    let counter = CachedCounter::new(Tiktoken::o200k());
    let (turns, docs) = (turns(), docs());
    PLAN.assemble(fill(&turns, &docs), &counter, 8_192)
        .expect("fits");
    assemble_with(bencher, &counter);
}
