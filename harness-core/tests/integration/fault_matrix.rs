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
//! It runs twice. With recovery off, the oracle is the chain walk alone. With the default recovery
//! (`Harness::builder()`'s: retry budget and circuit breaker on, `Retry-After` pauses the
//! provider), the oracle also knows the rules of `docs/contracts.md` § "Retry budget and circuit
//! breaker": an attempt refused by an open breaker or shed by a pause sends no request (checked
//! against the servers' records), an open breaker skips `retry` and `reask` and goes to the next
//! step, and a retry step may be skipped for a spent budget only when the withdrawals of every
//! call on that provider in the last 10 s can have spent it; the next step then decides. Two
//! extra phases make the budget run out (a storm of 429s) and a breaker open (an outage of 503s).
//!
//! Timing: per-attempt timeouts are 300 ms, stalls last 2 s (so they time out) and slow first
//! bytes 60 ms (so they answer late but in time). Retry backoffs are short and without jitter, so
//! the oracle knows every delay; a `Retry-After: 1` still costs a real second.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use FailureClass::{InvalidOutput, LowConfidence, ProviderError, RateLimited, Refusal, Timeout};
use harness_core::contract::{
    Action, ActionKind, Backoff, Chain, FailureClass, FallbackTarget, InputSpec, TaskContract,
};
use harness_core::outcome::{AttemptKind, CallReport};
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
/// Calls in each of the two phases that run only with the default recovery.
const STORM_CALLS: u64 = 300;
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

/// Which recovery configuration the harness under test has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `RecoveryConfig::off()`: the contract alone.
    Off,
    /// What `Harness::builder()` sets: breaker and retry budget on, `Retry-After` pauses.
    Defaults,
}

/// One phase: its own pair of servers and its own harness (fresh breakers and budgets).
struct Phase {
    name: &'static str,
    primary: (f64, Vec<Fault>),
    secondary: (f64, Vec<Fault>),
    calls: u64,
    concurrency: usize,
    seeds: (u64, u64),
}

/// Runs every call of a phase on a two-worker client runtime; returns them in id order.
async fn run_calls(
    mode: Mode,
    phase: usize,
    primary_url: String,
    secondary_url: String,
    ids: std::ops::Range<u64>,
    concurrency: usize,
) -> Vec<Call> {
    let builder = Harness::builder()
        .provider(
            "primary",
            OpenAiCompatible::builder(primary_url).build().unwrap(),
        )
        .provider(
            "secondary",
            OpenAiCompatible::builder(secondary_url).build().unwrap(),
        )
        .seed(7);
    let harness = match mode {
        // The oracle is the chain walk of docs/contracts.md alone.
        Mode::Off => builder.recovery(RecoveryConfig::off()).build(),
        Mode::Defaults => builder.build(),
    }
    .unwrap();
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
                phase,
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

fn phases(mode: Mode) -> Vec<Phase> {
    // Phase 1: every fault class but `huge_content`, sixteen calls at a time.
    let crowd: Vec<Fault> = Fault::ALL
        .iter()
        .copied()
        .filter(|f| *f != Fault::HugeContent)
        .collect();
    // Phase 2: every fault class, `huge_content` four times as likely, one call at a time. A
    // 10 MiB answer is parsed, and echoed back in a reask, by synchronous code that no timer can
    // interrupt; on two cores that would stall the other calls in flight past their deadlines.
    let mut all_faults = Fault::ALL.to_vec();
    all_faults.extend([Fault::HugeContent; 3]);
    let mut phases = vec![
        Phase {
            name: "crowd",
            primary: (FAULT_RATE, crowd.clone()),
            secondary: (FAULT_RATE, crowd.clone()),
            calls: CALLS_PER_CONTRACT * CONTRACTS.len() as u64,
            concurrency: CONCURRENCY,
            seeds: (0x5eed, 0xbac_c0de),
        },
        Phase {
            name: "one at a time",
            primary: (FAULT_RATE, all_faults.clone()),
            secondary: (FAULT_RATE, all_faults),
            calls: SEQUENTIAL_CALLS,
            concurrency: 1,
            seeds: (0x0dd, 0xfeed),
        },
    ];
    if mode == Mode::Defaults {
        // A storm of 429s (no `Retry-After`) on the primary: breakers ignore them, every retry
        // withdraws from the primary's budget, and the budget runs out.
        phases.push(Phase {
            name: "429 storm",
            primary: (0.85, vec![Fault::RateLimited]),
            secondary: (FAULT_RATE, crowd.clone()),
            calls: STORM_CALLS,
            concurrency: CONCURRENCY,
            seeds: (0x429, 0x4290),
        });
        // An outage of the primary: 503s open its breaker; calls then fall back, degrade or end
        // without sending a request there.
        phases.push(Phase {
            name: "503 outage",
            primary: (0.9, vec![Fault::Http503, Fault::ConnectionReset]),
            secondary: (FAULT_RATE, crowd),
            calls: STORM_CALLS,
            concurrency: CONCURRENCY,
            seeds: (0x503, 0x5030),
        });
    }
    phases
}

/// Runs the matrix under `mode`: every phase, then the oracle over every call.
fn run_matrix(mode: Mode) {
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

    let phases = phases(mode);
    let mut calls = Vec::new();
    let mut primary_requests: Vec<RecordedRequest> = Vec::new();
    let mut secondary_requests: Vec<RecordedRequest> = Vec::new();
    let mut next_id = 0;
    for (n, phase) in phases.iter().enumerate() {
        let (p, s) = servers.block_on(async {
            (
                chaos(phase.seeds.0, phase.primary.0, &phase.primary.1).await,
                chaos(phase.seeds.1, phase.secondary.0, &phase.secondary.1).await,
            )
        });
        calls.extend(clients.block_on(run_calls(
            mode,
            n,
            p.base_url(),
            s.base_url(),
            next_id..next_id + phase.calls,
            phase.concurrency,
        )));
        next_id += phase.calls;
        // Ticket ids are unique across the phases.
        primary_requests.extend(p.requests());
        secondary_requests.extend(s.requests());
    }
    let run_time = started.elapsed();

    // Requests per ticket, per server role, in the order served.
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

    let world = World::new(mode, &calls);
    let mut stats = Stats {
        latest_end: f64::NEG_INFINITY,
        ..Stats::default()
    };
    let mut problems = Vec::new();
    let mut table: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut per_contract: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    let mut per_phase: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
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
            check_call(call, &p, &s, &world, &mut stats)
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
        let report = match &call.result {
            Ok(o) => &o.report,
            Err(e) => e.report(),
        };
        for a in &report.attempts {
            match not_sent(a) {
                Some(NotSent::CircuitOpen) => rows.push("(circuit open)".into()),
                Some(NotSent::Shed(_)) => rows.push("(shed: provider paused)".into()),
                None => {}
            }
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
        *per_phase
            .entry(format!("{} {}", call.phase + 1, phases[call.phase].name))
            .or_default()
            .entry(col.clone())
            .or_default() += 1;
        *per_contract
            .entry(call.contract.name)
            .or_default()
            .entry(col)
            .or_default() += 1;
    }

    println!("\n=== recovery {mode:?} ===");
    print_table(
        "fault met → how the call ended (a call counts once per distinct fault it met)",
        &table,
    );
    let per_contract: BTreeMap<String, _> = per_contract
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    print_table("contract → how the call ended", &per_contract);
    print_table("phase → how the call ended", &per_phase);
    let served = primary_requests.len() + secondary_requests.len();
    let faulty = primary_requests
        .iter()
        .chain(&secondary_requests)
        .filter(|r| r.fault.is_some())
        .count();
    println!(
        "{} calls, {} attempts, {served} requests served, {faulty} faults ({:.1}%), \
         {} timeouts without a stall, {} calls not aligned with the server's record, \
         {} time-dependent forks, {} calls whose deadline ran out between a step and its attempt; \
         {} attempts refused by an open breaker, {} shed while the provider was paused, \
         {} calls explained only by a retry step skipped for a spent budget; the latest call ended {:+.0} ms from its deadline; in {run_time:?}",
        calls.len(),
        stats.attempts,
        100.0 * faulty as f64 / served as f64,
        stats.spurious_timeouts,
        stats.unaligned_calls,
        stats.deadline_forks,
        stats.spent_between_steps,
        stats.circuit_open,
        stats.shed,
        stats.budget_skips,
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
    // The contracts are tuned so that, with recovery off, every end is common. With the defaults
    // the breaker and budget turn some ends into others by timing (a run under load saw no
    // `err:invalid_output`), so there the oracle's per-call checks carry the weight.
    let all = &table["~ all calls"];
    for outcome in COLUMNS {
        assert!(
            mode == Mode::Defaults || all.get(outcome).copied().unwrap_or(0) > 0,
            "no call ended `{outcome}`"
        );
    }
    assert!(
        stats.spurious_timeouts * 100 <= stats.attempts,
        "{} of {} attempts timed out without a stall",
        stats.spurious_timeouts,
        stats.attempts
    );
    match mode {
        Mode::Off => assert_eq!(
            (stats.circuit_open, stats.shed, stats.budget_skips),
            (0, 0, 0),
            "recovery is off"
        ),
        Mode::Defaults => {
            // The rules were exercised, not only allowed.
            assert!(stats.circuit_open > 0, "no breaker opened");
            assert!(stats.budget_skips > 0, "no retry budget ran out");
            assert!(stats.shed > 0, "no attempt waited out a paused provider");
        }
    }
}

#[test]
fn every_call_ends_as_its_contract_prescribes() {
    run_matrix(Mode::Off);
}

#[test]
fn every_call_ends_as_its_contract_and_the_default_recovery_prescribe() {
    run_matrix(Mode::Defaults);
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
        .build()
        .unwrap();
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
