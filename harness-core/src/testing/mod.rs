//! Test support (feature `testing`): the chaos server, an OpenAI- and Anthropic-compatible HTTP
//! server on 127.0.0.1 that serves scripted replies and injects faults byte-exact, and the
//! [`drill`]s that run a task through every fault class against it.

pub mod chaos;
pub mod drill;

pub use chaos::{ChaosBuilder, ChaosServer, Fault, RecordedRequest, Reply};
