use std::sync::Arc;
use std::time::Duration;

use tokio::time::advance;

use super::*;

const FAST: Duration = Duration::from_millis(100);
const SLOW: Duration = Duration::from_secs(20);

fn config() -> BreakerConfig {
    BreakerConfig {
        window: Duration::from_secs(10),
        min_calls: 4,
        failure_rate: 0.5,
        slow_call_duration: Duration::from_secs(10),
        slow_call_rate: 0.75,
        open_for: Duration::from_secs(5),
        probes: 2,
    }
}

fn breaker() -> Arc<Breaker> {
    Arc::new(Breaker::new("openai/gpt-4o-mini", config()))
}

fn call(b: &Arc<Breaker>, outcome: CallOutcome) {
    b.acquire().expect("admitted").record(outcome);
}

fn trip(b: &Arc<Breaker>) {
    for _ in 0..4 {
        call(b, CallOutcome::Failure(FAST));
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn trips_when_the_failure_rate_reaches_the_threshold() {
    let b = breaker();
    call(&b, CallOutcome::Success(FAST));
    call(&b, CallOutcome::Success(FAST));
    call(&b, CallOutcome::Failure(FAST));
    assert_eq!(b.state(), BreakerState::Closed, "3 calls: below min_calls");
    call(&b, CallOutcome::Failure(FAST));
    assert_eq!(b.state(), BreakerState::Open, "2 of 4 failed: 50%");
    let refused = b.acquire().unwrap_err();
    assert_eq!(refused.state, BreakerState::Open);
    assert_eq!(refused.retry_after, Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn stays_closed_below_the_failure_rate() {
    let b = breaker();
    for _ in 0..10 {
        call(&b, CallOutcome::Success(FAST));
        call(&b, CallOutcome::Success(FAST));
        call(&b, CallOutcome::Failure(FAST));
    }
    assert_eq!(b.state(), BreakerState::Closed, "33% < 50%");
}

#[tokio::test(start_paused = true)]
async fn needs_min_calls_before_tripping() {
    let b = breaker();
    for _ in 0..3 {
        call(&b, CallOutcome::Failure(FAST));
    }
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "100% failures, but only 3 calls"
    );
    call(&b, CallOutcome::Failure(FAST));
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn trips_when_a_success_brings_the_window_to_min_calls() {
    let b = breaker();
    call(&b, CallOutcome::Failure(FAST));
    call(&b, CallOutcome::Failure(FAST));
    call(&b, CallOutcome::Success(FAST));
    assert_eq!(b.state(), BreakerState::Closed);
    call(&b, CallOutcome::Success(FAST));
    assert_eq!(
        b.state(),
        BreakerState::Open,
        "4 calls, half of them failed"
    );
}

#[tokio::test(start_paused = true)]
async fn trips_on_slow_calls_even_when_they_succeed() {
    let b = breaker();
    call(&b, CallOutcome::Success(FAST));
    for _ in 0..2 {
        call(&b, CallOutcome::Success(SLOW));
    }
    call(&b, CallOutcome::Success(FAST));
    assert_eq!(b.state(), BreakerState::Closed, "2 of 4 slow: 50% < 75%");
    for _ in 0..4 {
        call(&b, CallOutcome::Success(SLOW));
    }
    assert_eq!(b.state(), BreakerState::Open, "6 of 8 slow: 75%");
}

#[tokio::test(start_paused = true)]
async fn rate_limited_calls_never_trip_it_nor_count_as_calls() {
    let b = breaker();
    for _ in 0..100 {
        call(&b, CallOutcome::Ignored);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    // Had the 429s counted as successful calls, 3 failures in 104 calls would not trip it.
    call(&b, CallOutcome::Success(FAST));
    for _ in 0..3 {
        call(&b, CallOutcome::Failure(FAST));
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn old_failures_leave_the_window() {
    let b = breaker();
    for _ in 0..3 {
        call(&b, CallOutcome::Failure(FAST));
    }
    advance(Duration::from_secs(11)).await;
    call(&b, CallOutcome::Failure(FAST));
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "only one failure is recent"
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_probes_that_succeed_close_it() {
    let b = breaker();
    trip(&b);
    advance(Duration::from_secs(4)).await;
    assert!(b.acquire().is_err(), "still open");
    advance(Duration::from_secs(1)).await;
    let p1 = b.acquire().expect("first probe");
    let p2 = b.acquire().expect("second probe");
    assert!(p1.is_probe() && p2.is_probe());
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let refused = b.acquire().unwrap_err();
    assert_eq!(refused.state, BreakerState::HalfOpen, "only two probes");
    p1.record(CallOutcome::Success(FAST));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    p2.record(CallOutcome::Success(FAST));
    assert_eq!(b.state(), BreakerState::Closed);
    // The window starts empty: the failures that opened it are forgotten.
    for _ in 0..3 {
        call(&b, CallOutcome::Failure(FAST));
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_it_for_another_full_period() {
    let b = breaker();
    trip(&b);
    advance(Duration::from_secs(5)).await;
    let probe = b.acquire().expect("probe");
    probe.record(CallOutcome::Failure(FAST));
    assert_eq!(b.state(), BreakerState::Open);
    let refused = b.acquire().unwrap_err();
    assert_eq!(refused.retry_after, Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn a_slow_probe_reopens_it() {
    let b = breaker();
    trip(&b);
    advance(Duration::from_secs(5)).await;
    b.acquire().unwrap().record(CallOutcome::Success(SLOW));
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_or_rate_limited_probe_gives_its_slot_back() {
    let b = breaker();
    trip(&b);
    advance(Duration::from_secs(5)).await;
    let p1 = b.acquire().unwrap();
    let p2 = b.acquire().unwrap();
    assert!(b.acquire().is_err());
    drop(p1);
    let p3 = b.acquire().expect("the dropped probe's slot");
    p2.record(CallOutcome::Ignored);
    let p4 = b.acquire().expect("the rate-limited probe's slot");
    p3.record(CallOutcome::Success(FAST));
    p4.record(CallOutcome::Success(FAST));
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn results_of_calls_admitted_before_a_transition_are_ignored() {
    let b = breaker();
    let stale: Vec<_> = (0..4).map(|_| b.acquire().unwrap()).collect();
    trip(&b);
    advance(Duration::from_secs(5)).await;
    let probe = b.acquire().unwrap();
    for t in stale {
        t.record(CallOutcome::Success(FAST));
    }
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen,
        "old successes are not probes"
    );
    probe.record(CallOutcome::Failure(FAST));
    assert_eq!(b.state(), BreakerState::Open);
}

/// Trips `b`, waits out the open period and closes it again with two good probes.
async fn trip_and_close(b: &Arc<Breaker>) {
    trip(b);
    advance(Duration::from_secs(5)).await;
    let (p1, p2) = (b.acquire().unwrap(), b.acquire().unwrap());
    p1.record(CallOutcome::Success(FAST));
    p2.record(CallOutcome::Success(FAST));
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_closed_again_counts_calls_and_trips_again() {
    let b = breaker();
    trip_and_close(&b).await;
    let ticket = b.acquire().unwrap();
    assert!(
        !ticket.is_probe(),
        "a closed breaker's calls are not probes"
    );
    ticket.record(CallOutcome::Failure(FAST));
    for _ in 0..3 {
        call(&b, CallOutcome::Failure(FAST));
    }
    assert_eq!(
        b.state(),
        BreakerState::Open,
        "4 of 4 failed after reclosing"
    );
    trip_and_close_again(&b).await;
}

async fn trip_and_close_again(b: &Arc<Breaker>) {
    advance(Duration::from_secs(5)).await;
    let (p1, p2) = (b.acquire().unwrap(), b.acquire().unwrap());
    p1.record(CallOutcome::Success(FAST));
    p2.record(CallOutcome::Success(FAST));
    for _ in 0..4 {
        call(b, CallOutcome::Failure(FAST));
    }
    assert_eq!(
        b.state(),
        BreakerState::Open,
        "and again, at a later generation"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_admitted_before_it_opened_does_not_count_after_it_closes() {
    let b = breaker();
    let old = b.acquire().unwrap();
    trip_and_close(&b).await;
    old.record(CallOutcome::Failure(FAST));
    for _ in 0..3 {
        call(&b, CallOutcome::Failure(FAST));
    }
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "3 fresh failures: the old one belongs to a past window"
    );
}

#[tokio::test(start_paused = true)]
async fn a_probe_from_an_earlier_half_open_period_gives_back_no_slot() {
    let b = breaker();
    trip(&b);
    advance(Duration::from_secs(5)).await;
    let old = b.acquire().unwrap();
    b.acquire().unwrap().record(CallOutcome::Failure(FAST));
    advance(Duration::from_secs(5)).await;
    let (_q1, _q2) = (b.acquire().unwrap(), b.acquire().unwrap());
    drop(old);
    assert!(
        b.acquire().is_err(),
        "the old probe's slot was in a period that has ended"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reports_the_rates_of_the_probes_so_far() {
    let b = breaker();
    trip(&b);
    assert_eq!(b.opened_by(), (1.0, 0.0), "4 of 4 failed, none slow");
    advance(Duration::from_secs(5)).await;
    let (p1, p2) = (b.acquire().unwrap(), b.acquire().unwrap());
    p1.record(CallOutcome::Success(FAST));
    p2.record(CallOutcome::Failure(FAST));
    assert_eq!(b.opened_by(), (0.5, 0.0), "one of two probes failed");
    advance(Duration::from_secs(5)).await;
    let (p1, p2) = (b.acquire().unwrap(), b.acquire().unwrap());
    p1.record(CallOutcome::Success(FAST));
    p2.record(CallOutcome::Success(SLOW));
    assert_eq!(b.opened_by(), (0.0, 0.5), "one of two probes was slow");
    advance(Duration::from_secs(5)).await;
    b.acquire().unwrap().record(CallOutcome::Failure(FAST));
    assert_eq!(b.opened_by(), (1.0, 0.0), "the first probe failed");
}

#[test]
fn states_and_keys_read_as_they_are_recorded() {
    assert_eq!(BreakerState::Closed.as_str(), "closed");
    assert_eq!(BreakerState::Open.as_str(), "open");
    assert_eq!(BreakerState::HalfOpen.as_str(), "half_open");
    assert_eq!(breaker().key(), "openai/gpt-4o-mini");
}
