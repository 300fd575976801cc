//! The fault matrix: thousands of seeded calls through real tasks against chaos servers over real
//! HTTP on 127.0.0.1, with more than 30% of the responses faulty and every fault class served.
//!
//! Each call is checked against an oracle of `docs/contracts.md` written here independently of the
//! engine: from the failure class of every recorded attempt (itself checked against the fault the
//! server says it served) and the contract, it works out which steps the contract allows next and
//! which end it prescribes, and compares that with what the engine did. Every call must also:
//! never panic, never return an invalid value as an answer (each value is re-validated here), never
//! make more than `contract.max_attempts()` attempts, and never run past
//! `contract.effective_deadline()` plus [`DEADLINE_SLACK`].
//!
//! Timing: per-attempt timeouts are 300 ms, stalls last 2 s (so they time out) and slow first
//! bytes 60 ms (so they answer late but in time). Retry backoffs are short and without jitter, so
//! the oracle knows every delay; a `Retry-After: 1` still costs a real second.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use FailureClass::{InvalidOutput, LowConfidence, ProviderError, RateLimited, Refusal, Timeout};
use harness_core::contract::{
    Action, ActionKind, Backoff, Chain, FailureClass, FallbackTarget, InputSpec, OutputSpec,
    Params, TaskContract,
};
use harness_core::outcome::{AttemptKind, CallReport};
use harness_core::output::{FieldPath, LlmOutput, ValidationErrors};
use harness_core::provider::OpenAiCompatible;
use harness_core::recovery::RecoveryConfig;
use harness_core::testing::{ChaosServer, Fault, RecordedRequest};
use harness_core::{ErrorKind, Harness, Resolution, TaskResult};
use serde_json::json;

mod oracle;
mod task;

use oracle::*;
use task::*;

/// Calls per contract; five contracts.
const CALLS_PER_CONTRACT: u64 = 500;
/// Calls made one at a time, with `huge_content` among the faults.
const SEQUENTIAL_CALLS: u64 = 250;
/// Calls in flight at once.
const CONCURRENCY: usize = 16;
/// Share of responses (after scripts) that are injected faults, on both servers.
const FAULT_RATE: f64 = 0.35;
/// Share of good answers whose confidence is below the threshold.
const LOW_CONFIDENCE_RATE: f64 = 0.08;
/// Per-attempt timeout of every contract.
const TIMEOUT: Duration = Duration::from_millis(300);
/// How long a stall holds the connection: longer than [`TIMEOUT`].
const STALL: Duration = Duration::from_secs(2);
/// The delay of `slow_first_byte`: shorter than [`TIMEOUT`].
const SLOW_FIRST_BYTE: Duration = Duration::from_millis(60);
/// How far past its effective deadline a call may end: the last attempt's answer is still judged
/// (parsed and validated) after the clock check, and the runtime has two cores for sixteen calls.
const DEADLINE_SLACK: Duration = Duration::from_millis(150);
/// How much later than its recorded end an attempt's decision may be taken (judging the answer,
/// scheduling): the oracle accepts either branch of a time-dependent step inside this window.
const DECISION_LAG: Duration = Duration::from_millis(100);
/// The confidence threshold of every contract.
const THRESHOLD: f64 = 0.7;

/// Runs every call on a two-worker client runtime; returns them in id order.
async fn run_calls(
    primary_url: String,
    secondary_url: String,
    ids: std::ops::Range<u64>,
    concurrency: usize,
) -> Vec<Call> {
    let harness = Harness::builder()
        .provider(
            "primary",
            OpenAiCompatible::builder(primary_url).build().unwrap(),
        )
        .provider(
            "secondary",
            OpenAiCompatible::builder(secondary_url).build().unwrap(),
        )
        .seed(7)
        // The oracle is docs/contracts.md alone: breakers and the retry budget, which change
        // outcomes with load across calls, are proven by their own tests (engine.rs, recovery/).
        .recovery(RecoveryConfig::off())
        .build();
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut handles = Vec::new();
    for id in ids {
        let contract = CONTRACTS[(id % CONTRACTS.len() as u64) as usize];
        let harness = harness.clone();
        let permits = permits.clone();
        handles.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let inputs = vec![
                ("id", id.to_string()),
                (
                    "body",
                    "I was charged twice for my subscription.".to_owned(),
                ),
            ];
            let t = Instant::now();
            let result = harness
                .run::<Triage>(contract, inputs, None, Some(&defaults))
                .await;
            Call {
                id,
                contract,
                result,
                elapsed: t.elapsed(),
            }
        }));
    }
    let mut calls = Vec::new();
    for h in handles {
        // A panic anywhere in a call surfaces here as a JoinError.
        calls.push(h.await.expect("a call panicked"));
    }
    calls
}

#[test]
fn every_call_ends_as_its_contract_prescribes() {
    // The servers get their own runtime (one worker), as a remote server would: their CPU work
    // (10 MiB bodies) must not hold up the clients' timers on the client runtime.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();

    // Phase 1: every fault class but `huge_content`, sixteen calls at a time.
    let crowd: Vec<Fault> = Fault::ALL
        .iter()
        .copied()
        .filter(|f| *f != Fault::HugeContent)
        .collect();
    let (p1, s1) =
        servers.block_on(async { (chaos(0x5eed, &crowd).await, chaos(0xbac_c0de, &crowd).await) });
    let crowd_calls = CALLS_PER_CONTRACT * CONTRACTS.len() as u64;
    let mut calls = clients.block_on(run_calls(
        p1.base_url(),
        s1.base_url(),
        0..crowd_calls,
        CONCURRENCY,
    ));

    // Phase 2: every fault class, `huge_content` four times as likely, one call at a time. A
    // 10 MiB answer is parsed, and echoed back in a reask, by synchronous code that no timer can
    // interrupt; on two cores that would stall the other calls in flight past their deadlines.
    let mut all_faults = Fault::ALL.to_vec();
    all_faults.extend([Fault::HugeContent; 3]);
    let (p2, s2) = servers.block_on(async {
        (
            chaos(0x0dd, &all_faults).await,
            chaos(0xfeed, &all_faults).await,
        )
    });
    calls.extend(clients.block_on(run_calls(
        p2.base_url(),
        s2.base_url(),
        crowd_calls..crowd_calls + SEQUENTIAL_CALLS,
        1,
    )));
    let run_time = started.elapsed();

    // Requests per ticket, per server role, in the order served (ticket ids are unique across
    // the phases).
    let primary_requests: Vec<RecordedRequest> =
        p1.requests().into_iter().chain(p2.requests()).collect();
    let secondary_requests: Vec<RecordedRequest> =
        s1.requests().into_iter().chain(s2.requests()).collect();
    let by_ticket = |reqs: &[RecordedRequest]| {
        let mut m: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, r) in reqs.iter().enumerate() {
            m.entry(ticket_id(r).expect("every request names its ticket"))
                .or_default()
                .push(i);
        }
        m
    };
    let p_idx = by_ticket(&primary_requests);
    let s_idx = by_ticket(&secondary_requests);

    let mut stats = Stats {
        latest_end: f64::NEG_INFINITY,
        ..Stats::default()
    };
    let mut problems = Vec::new();
    let mut table: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut per_contract: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for call in &calls {
        let p: Vec<&RecordedRequest> = p_idx
            .get(&call.id)
            .map(|v| v.iter().map(|&i| &primary_requests[i]).collect())
            .unwrap_or_default();
        let s: Vec<&RecordedRequest> = s_idx
            .get(&call.id)
            .map(|v| v.iter().map(|&i| &secondary_requests[i]).collect())
            .unwrap_or_default();
        problems.extend(
            check_call(call, &p, &s, &mut stats)
                .into_iter()
                .map(|m| format!("ticket {}: {m}", call.id)),
        );

        let col = column(&call.result);
        let mut rows: Vec<String> = p
            .iter()
            .chain(&s)
            .filter_map(|r| r.fault.map(|f| f.name().to_owned()))
            .collect();
        if p.iter()
            .chain(&s)
            .any(|r| low_confidence(r) && r.fault.is_none())
        {
            rows.push("(low confidence answer)".into());
        }
        if rows.is_empty() {
            rows.push("(no fault)".into());
        }
        rows.sort();
        rows.dedup();
        for row in rows {
            *table
                .entry(row)
                .or_default()
                .entry(col.clone())
                .or_default() += 1;
        }
        *table
            .entry("~ all calls".into())
            .or_default()
            .entry(col.clone())
            .or_default() += 1;
        *per_contract
            .entry(call.contract.name)
            .or_default()
            .entry(col)
            .or_default() += 1;
    }

    print_table(
        "fault met → how the call ended (a call counts once per distinct fault it met)",
        &table,
    );
    let per_contract: BTreeMap<String, _> = per_contract
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    print_table("contract → how the call ended", &per_contract);
    let served = primary_requests.len() + secondary_requests.len();
    let faulty = primary_requests
        .iter()
        .chain(&secondary_requests)
        .filter(|r| r.fault.is_some())
        .count();
    println!(
        "{} calls, {} attempts, {served} requests served, {faulty} faults ({:.1}%), \
         {} timeouts without a stall, {} calls not aligned with the server's record, \
         {} time-dependent forks, {} calls whose deadline ran out between a step and its attempt; the latest call ended {:+.0} ms from its deadline; in {run_time:?}",
        calls.len(),
        stats.attempts,
        100.0 * faulty as f64 / served as f64,
        stats.spurious_timeouts,
        stats.unaligned_calls,
        stats.deadline_forks,
        stats.spent_between_steps,
        stats.latest_end * 1000.0,
    );

    assert!(
        problems.is_empty(),
        "{} problems, the first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(if std::env::var_os("MATRIX_DEBUG").is_some() {
                1000
            } else {
                25
            })
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(calls.len() >= 2_000);
    assert!(
        faulty as f64 >= 0.30 * served as f64,
        "{faulty} faults in {served}"
    );
    for fault in Fault::ALL {
        assert!(table.contains_key(fault.name()), "no call met {fault}");
    }
    let all = &table["~ all calls"];
    for outcome in [
        "first try",
        "repaired",
        "after retry",
        "after reask",
        "fallback",
        "default",
        "escalated",
        "err:timeout",
        "err:invalid_output",
        "err:provider_error",
        "err:refusal",
        "err:low_confidence",
        "err:rate_limited",
    ] {
        assert!(
            all.get(outcome).copied().unwrap_or(0) > 0,
            "no call ended `{outcome}`"
        );
    }
    assert!(
        stats.spurious_timeouts * 100 <= stats.attempts,
        "{} of {} attempts timed out without a stall",
        stats.spurious_timeouts,
        stats.attempts
    );
}

fn print_table(title: &str, table: &BTreeMap<String, BTreeMap<String, usize>>) {
    let cols: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| table.values().any(|r| r.get(*c).is_some_and(|n| *n > 0)))
        .collect();
    let width = table
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(title.len().min(28));
    println!("\n{title}");
    print!("{:width$}", "");
    for c in &cols {
        print!(" | {c:>w$}", w = c.len().max(5));
    }
    println!();
    print!("{}", "-".repeat(width));
    for c in &cols {
        print!("-+-{}", "-".repeat(c.len().max(5)));
    }
    println!();
    for (row, counts) in table {
        print!("{row:width$}");
        for c in &cols {
            let n = counts.get(*c).copied().unwrap_or(0);
            let cell = if n == 0 {
                "·".to_owned()
            } else {
                n.to_string()
            };
            print!(" | {cell:>w$}", w = c.len().max(5));
        }
        println!();
    }
}

/// A reask after a 10 MiB answer still ends within the deadline: the engine echoes only the head of
/// a huge answer, so building the next request stays cheap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reask_after_a_huge_answer_keeps_the_deadline() {
    let server = ChaosServer::builder()
        .answer(good_answer)
        .script([harness_core::testing::Reply::fault(Fault::HugeContent)])
        .default_reply(harness_core::testing::Reply::fault(Fault::Stall))
        .stall_for(STALL)
        .start()
        .await
        .unwrap();
    let harness = Harness::builder()
        .provider(
            "primary",
            OpenAiCompatible::builder(server.base_url())
                .build()
                .unwrap(),
        )
        .build();
    let t = Instant::now();
    let inputs = vec![("id", "1".to_owned()), ("body", "charged twice".to_owned())];
    let result = harness
        .run::<Triage>(&WITH_DEFAULT, inputs, None, Some(&defaults))
        .await;
    let elapsed = t.elapsed();
    let report = match &result {
        Ok(o) => &o.report,
        Err(e) => e.report(),
    };
    let latencies: Vec<_> = report
        .attempts
        .iter()
        .map(|a| (a.kind, a.latency))
        .collect();
    assert!(
        elapsed <= WITH_DEFAULT.effective_deadline() + DEADLINE_SLACK,
        "{elapsed:?} for a deadline of {:?}: {latencies:?}",
        WITH_DEFAULT.effective_deadline()
    );
}
