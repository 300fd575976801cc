//! The tests that install `tracing` subscribers (spans, OTLP export, recovery events), in a
//! binary of their own. Setting or dropping a subscriber rebuilds callsite interest for the whole
//! process, so a test that captures spans can miss them while another thread runs the engine
//! with no subscriber (seen in CI, about one run in ten, see `testing::fixtures::subscriber_turn`).
//! Here every test holds that turn; in the `integration` binary dozens of engine tests run
//! concurrently without it.

#[cfg(feature = "testing")]
mod recovery_events;
#[cfg(feature = "testing")]
mod telemetry;

#[cfg(all(feature = "otel", feature = "testing"))]
mod otlp;
#[cfg(all(feature = "otel", feature = "testing"))]
mod rotel;
