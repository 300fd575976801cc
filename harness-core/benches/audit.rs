//! What auditing adds to a call: one whole harnessed call with an instant provider, without
//! observers and with each sink, plus the sink's own work (serialize, hash, write) on its own.
//!
//! `cargo bench -p harness-core --bench audit` (add `--features sqlite` for the SQLite sink).

use std::sync::Arc;

use harness_core::Harness;
use harness_core::audit::{AuditRecord, JsonlSink, MessagePolicy, SinkOptions};
use harness_core::observe::drift::{DriftAlarm, DriftConfig};
use harness_core::testing::fixtures::{FnProvider, temp_path, ticket_json, triage};

fn main() {
    divan::main();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn harness(observers: Vec<Arc<dyn harness_core::observe::Observer>>) -> Harness {
    let mut b = Harness::builder().provider(
        "fn",
        FnProvider::new(|_, _| Ok(ticket_json("billing", 2, 0.9))),
    );
    for o in observers {
        b = b.observer(o);
    }
    b.build().unwrap()
}

fn bench_calls(bencher: divan::Bencher, harness: Harness) {
    let rt = runtime();
    bencher.bench_local(|| rt.block_on(triage(&harness, "Arrived broken.")).unwrap());
}

/// The baseline: a call with no observer.
#[divan::bench]
fn call_without_observers(bencher: divan::Bencher) {
    bench_calls(bencher, harness(Vec::new()));
}

/// A call audited to `/dev/null` (the write syscall, without the file growing).
#[divan::bench(args = [MessagePolicy::Full, MessagePolicy::Hashed, MessagePolicy::Redacted])]
fn call_with_jsonl_devnull(bencher: divan::Bencher, policy: MessagePolicy) {
    let options = SinkOptions {
        messages: policy,
        ..SinkOptions::default()
    };
    let sink = JsonlSink::open_with("/dev/null", options).unwrap();
    bench_calls(bencher, harness(vec![Arc::new(sink)]));
}

/// A call audited to a real file (page cache, no fsync).
#[divan::bench(sample_count = 20, sample_size = 200)]
fn call_with_jsonl_file(bencher: divan::Bencher) {
    let sink = JsonlSink::open(temp_path("bench.jsonl")).unwrap();
    bench_calls(bencher, harness(vec![Arc::new(sink)]));
}

/// A call audited to a real file by the background writer (the caller only builds the record).
#[divan::bench(sample_count = 20, sample_size = 200)]
fn call_with_jsonl_file_background(bencher: divan::Bencher) {
    let options = SinkOptions {
        background: true,
        ..SinkOptions::default()
    };
    let sink = JsonlSink::open_with(temp_path("bench-bg.jsonl"), options).unwrap();
    bench_calls(bencher, harness(vec![Arc::new(sink)]));
}

/// A call watched by the drift alarm.
#[divan::bench]
fn call_with_drift_alarm(bencher: divan::Bencher) {
    let alarm = DriftAlarm::new(DriftConfig::default());
    bench_calls(bencher, harness(vec![Arc::new(alarm)]));
}

/// A call audited to SQLite (WAL, synchronous = NORMAL).
#[cfg(feature = "sqlite")]
#[divan::bench(sample_count = 20, sample_size = 200)]
fn call_with_sqlite(bencher: divan::Bencher) {
    let sink = harness_core::audit::SqliteSink::open(temp_path("bench.db")).unwrap();
    bench_calls(bencher, harness(vec![Arc::new(sink)]));
}

/// The sink's own work for one typical record: canonical JSON, SHA-256, one write.
#[divan::bench]
fn seal_and_write_one_record(bencher: divan::Bencher) {
    let path = temp_path("one.jsonl");
    let rt = runtime();
    let h = Harness::builder()
        .provider(
            "fn",
            FnProvider::new(|_, _| Ok(ticket_json("billing", 2, 0.9))),
        )
        .observer(JsonlSink::open(&path).unwrap())
        .build()
        .unwrap();
    rt.block_on(triage(&h, "Arrived broken.")).unwrap();
    let record: AuditRecord = harness_core::audit::read_jsonl(&path).unwrap().remove(0);
    println!(
        "record size: {} bytes",
        std::fs::metadata(&path).unwrap().len()
    );
    let sink = JsonlSink::open("/dev/null").unwrap();
    bencher.bench_local(|| sink.append(&record).unwrap());
}

/// The parts of sealing one record.
mod parts {
    use super::*;

    fn record() -> AuditRecord {
        let path = temp_path("parts.jsonl");
        let rt = runtime();
        let h = Harness::builder()
            .provider(
                "fn",
                FnProvider::new(|_, _| Ok(ticket_json("billing", 2, 0.9))),
            )
            .observer(JsonlSink::open(&path).unwrap())
            .build()
            .unwrap();
        rt.block_on(triage(&h, "Arrived broken.")).unwrap();
        harness_core::audit::read_jsonl(&path).unwrap().remove(0)
    }

    /// Serializing a record (straight to its canonical form).
    #[divan::bench]
    fn serialize(bencher: divan::Bencher) {
        let r = record();
        bencher.bench_local(|| serde_json::to_vec(&r).unwrap());
    }

    #[divan::bench]
    fn sha256(bencher: divan::Bencher) {
        let v = serde_json::to_vec(&record()).unwrap();
        bencher.bench_local(|| harness_core::audit::hash_hex(&v));
    }

    #[divan::bench]
    fn clone_record(bencher: divan::Bencher) {
        let r = record();
        bencher.bench_local(|| r.clone());
    }
}
