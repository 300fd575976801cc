//! Circuit breaker transitions are `tracing` events (target `harness::recovery`). In a binary of
//! its own: tracing caches callsite interest process-wide, so a thread-local subscriber in the
//! library's parallel unit tests can miss events that another test's thread registered first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness_core::recovery::breaker::{Breaker, BreakerConfig, CallOutcome};
use tokio::time::advance;

const FAST: Duration = Duration::from_millis(100);

/// One event's fields, as `(name, value)`.
type Fields = Vec<(String, String)>;

/// Collects the events of target `harness::recovery`.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Fields>>>);

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Visitor(Fields);
        impl tracing::field::Visit for Visitor {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push((field.name().to_owned(), format!("{value:?}")));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.push((field.name().to_owned(), value.to_owned()));
            }
        }
        if event.metadata().target() != "harness::recovery" {
            return;
        }
        let mut fields = Visitor(Vec::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(start_paused = true)]
async fn every_transition_is_a_tracing_event() {
    let events = Events::default();
    tracing::subscriber::set_global_default(events.clone()).expect("the only subscriber");
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

    let got = events.0.lock().unwrap().clone();
    let field = |e: &Fields, name: &str| {
        e.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
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
