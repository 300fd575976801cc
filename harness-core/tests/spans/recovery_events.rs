//! Circuit breaker transitions are `tracing` events (target `harness::recovery`). In the `spans`
//! binary and under its turn: tracing caches callsite interest process-wide, so a thread-local
//! subscriber can miss events while other threads run without one.

use std::sync::Arc;
use std::time::Duration;

use harness_core::recovery::breaker::{Breaker, BreakerConfig, CallOutcome};
use harness_core::testing::fixtures::{Capture, LogLine, subscriber_turn};
use tokio::time::advance;

const FAST: Duration = Duration::from_millis(100);

#[tokio::test(start_paused = true)]
async fn every_transition_is_a_tracing_event() {
    let _turn = subscriber_turn().lock().await;
    let events = Capture::targets("harness::recovery");
    let _guard = tracing::subscriber::set_default(events.clone());
    tracing::callsite::rebuild_interest_cache();
    let config = BreakerConfig {
        min_calls: 4,
        open_for: Duration::from_secs(5),
        probes: 2,
        ..BreakerConfig::default()
    };
    let b = Arc::new(Breaker::new("openai/gpt-4o-mini", config));
    for _ in 0..4 {
        b.acquire().unwrap().record(CallOutcome::Failure(FAST));
    }
    advance(Duration::from_secs(5)).await;
    b.acquire().unwrap().record(CallOutcome::Failure(FAST));
    advance(Duration::from_secs(5)).await;
    b.acquire().unwrap().record(CallOutcome::Success(FAST));
    b.acquire().unwrap().record(CallOutcome::Success(FAST));

    let got = events.events();
    let field = |e: &LogLine, name: &str| e.field(name).unwrap_or_default().to_owned();
    let transitions: Vec<String> = got
        .iter()
        .map(|e| format!("{}->{}", field(e, "from"), field(e, "to")))
        .collect();
    assert_eq!(
        transitions,
        [
            "closed->open",
            "open->half_open",
            "half_open->open",
            "open->half_open",
            "half_open->closed"
        ]
    );
    assert!(
        got.iter()
            .all(|e| field(e, "breaker") == "openai/gpt-4o-mini")
    );
    assert_eq!(field(&got[0], "failure_rate"), "1.0");
}
