//! Test support (feature `testing`): the chaos server, an OpenAI- and Anthropic-compatible HTTP
//! server on 127.0.0.1 that serves scripted replies and injects faults byte-exact.

pub mod chaos;

pub use chaos::{ChaosBuilder, ChaosServer, Fault, RecordedRequest, Reply};
