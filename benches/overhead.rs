//! One harnessed call vs a bare reqwest + serde_json call of the same request, against the same
//! loopback server, in the same process. The bare call encodes the same request JSON (the body the
//! harness sent, captured once) and decodes the completion and its content into typed structs.
//!
//! First percentile runs (interleaved samples of both, p50/p99 and their ratios — the figures we
//! report) with a `tracing` registry installed, so the harness's spans are really recorded:
//! against the chaos server (two worker threads), then against a fast fixed-response server
//! (`support/fast.rs`) on a current-thread runtime, client and server on one core. Then divan's
//! own statistics.
//!
//! `cargo bench --bench overhead` (`HARNESS_BENCH_CALLS=N` for N calls of each per run, 3000 by
//! default).

use std::time::{Duration, Instant};

use harness_core::Harness;
use harness_core::provider::openai::OpenAiCompatible;
use harness_core::testing::chaos::{ChaosServer, Reply};

#[path = "../examples/support/tasks.rs"]
mod tasks;

#[path = "support/fast.rs"]
mod fast;

use tasks::{Sentiment, classify};

/// What the bare baseline deserializes: the completion envelope, then the content.
#[derive(serde::Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}
#[derive(serde::Deserialize)]
struct Choice {
    message: ChoiceMessage,
}
#[derive(serde::Deserialize)]
struct ChoiceMessage {
    content: String,
}
#[derive(serde::Deserialize)]
#[allow(dead_code)] // Fields are read by serde; the baseline only needs them parsed.
struct BareSentiment {
    label: String,
    confidence: f64,
    rationale: String,
}

const ANSWER: &str = r#"{"label": "Negative", "confidence": 0.92, "rationale": "The product arrived broken and support did not answer."}"#;
const REVIEW: &str = "Arrived broken, support never answered.";

struct Setup {
    rt: tokio::runtime::Runtime,
    _server: Option<ChaosServer>,
    harness: Harness,
    client: reqwest::Client,
    url: String,
    body: serde_json::Value,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(
            ChaosServer::builder()
                .default_reply(Reply::json_content(ANSWER))
                .start(),
        )
        .expect("loopback server");
    let provider = OpenAiCompatible::builder(server.base_url())
        .build()
        .expect("provider");
    let harness = Harness::builder()
        .provider("openai", provider)
        .build()
        .unwrap();
    // The exact body the harness sends, replayed by the baseline.
    rt.block_on(classify::with(&harness, REVIEW))
        .expect("warm-up call");
    let recorded = server.requests().pop().expect("one request");
    let body = recorded.body.expect("a JSON body");
    let url = format!(
        "{}/chat/completions",
        server.base_url().trim_end_matches('/')
    );
    Setup {
        rt,
        _server: Some(server),
        harness,
        client: reqwest::Client::new(),
        url,
        body,
    }
}

/// The fast server on a current-thread runtime: the client, the harness and the server on one
/// thread. The baseline replays the body the harness sends, captured once by a chaos server.
fn setup_fast() -> Setup {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = rt.block_on(async {
        let capture = ChaosServer::builder()
            .default_reply(Reply::json_content(ANSWER))
            .start()
            .await
            .expect("capture server");
        let provider = OpenAiCompatible::builder(capture.base_url())
            .build()
            .expect("provider");
        let h = Harness::builder()
            .provider("openai", provider)
            .build()
            .unwrap();
        classify::with(&h, REVIEW).await.expect("capture call");
        capture
            .requests()
            .pop()
            .and_then(|r| r.body)
            .expect("a JSON body")
    });
    let addr = rt.block_on(fast::start(ANSWER));
    let provider = OpenAiCompatible::builder(format!("http://{addr}/v1"))
        .build()
        .expect("provider");
    let harness = Harness::builder()
        .provider("openai", provider)
        .build()
        .unwrap();
    Setup {
        rt,
        _server: None,
        harness,
        client: reqwest::Client::new(),
        url: format!("http://{addr}/v1/chat/completions"),
        body,
    }
}

async fn bare(s: &Setup) -> BareSentiment {
    let resp = s
        .client
        .post(&s.url)
        .header("content-type", "application/json")
        // A bare call encodes its request JSON each time, as the harness does.
        .body(serde_json::to_vec(&s.body).expect("encode"))
        .send()
        .await
        .expect("send");
    let bytes = resp.bytes().await.expect("body");
    let completion: Completion = serde_json::from_slice(&bytes).expect("completion");
    serde_json::from_str(&completion.choices[0].message.content).expect("content")
}

async fn harnessed(s: &Setup) -> Sentiment {
    classify::with(&s.harness, REVIEW)
        .await
        .expect("call")
        .into_value()
        .expect("answer")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn percentiles(label: &str, s: &Setup) {
    let n: usize = std::env::var("HARNESS_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let (mut h, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..200 {
        s.rt.block_on(bare(s));
        s.rt.block_on(harnessed(s));
    }
    for i in 0..n {
        // Interleave, alternating which goes first, so drift affects both alike.
        let order = i % 2 == 0;
        for first in [order, !order] {
            let t = Instant::now();
            if first {
                s.rt.block_on(harnessed(s));
                h.push(t.elapsed());
            } else {
                s.rt.block_on(bare(s));
                b.push(t.elapsed());
            }
        }
    }
    h.sort();
    b.sort();
    let (h50, h99, b50, b99) = (
        percentile(&h, 0.5),
        percentile(&h, 0.99),
        percentile(&b, 0.5),
        percentile(&b, 0.99),
    );
    println!("overhead, {label}: {n} interleaved calls each, spans recorded by a tracing registry");
    println!("  bare reqwest + serde_json  p50 {b50:>10.1?}  p99 {b99:>10.1?}");
    println!("  harnessed call             p50 {h50:>10.1?}  p99 {h99:>10.1?}");
    println!(
        "  ratio                      p50 {:>10.3}  p99 {:>10.3}   (targets: p50 <= 1.15, p99 <= 1.3)",
        h50.as_secs_f64() / b50.as_secs_f64(),
        h99.as_secs_f64() / b99.as_secs_f64()
    );
}

fn main() {
    use tracing_subscriber::util::SubscriberInitExt as _;
    // Spans on: the harness's task and attempt spans are recorded, as in a traced service.
    let _ = tracing_subscriber::registry().try_init();
    percentiles("chaos server, 2 worker threads", &setup());
    percentiles(
        "fast fixed-response server, client and server on one thread",
        &setup_fast(),
    );
    divan::main();
}

#[divan::bench]
fn harnessed_call_fast_server(bencher: divan::Bencher) {
    let s = setup_fast();
    bencher.bench_local(|| s.rt.block_on(harnessed(&s)));
}

#[divan::bench]
fn bare_reqwest_serde_fast_server(bencher: divan::Bencher) {
    let s = setup_fast();
    bencher.bench_local(|| s.rt.block_on(bare(&s)));
}

#[divan::bench]
fn bare_reqwest_serde(bencher: divan::Bencher) {
    let s = setup();
    bencher.bench_local(|| s.rt.block_on(bare(&s)));
}

/// The engine alone: the same task against an in-process scripted provider (no HTTP, no JSON
/// envelope), to see what the harness itself costs per call.
#[divan::bench]
fn engine_only(bencher: divan::Bencher) {
    use harness_core::provider::scripted::{Scripted, Step};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let script = Scripted::new().then_always(Step::Respond(Scripted::response(ANSWER)));
    let harness = Harness::builder()
        .provider("scripted", script)
        .build()
        .unwrap();
    bencher.bench_local(|| {
        rt.block_on(classify::with(&harness, REVIEW))
            .expect("call")
            .into_value()
            .expect("answer")
    });
}

#[divan::bench]
fn harnessed_call(bencher: divan::Bencher) {
    let s = setup();
    bencher.bench_local(|| s.rt.block_on(harnessed(&s)));
}
