//! Test support (feature `testing`): the chaos server, an OpenAI- and Anthropic-compatible HTTP
//! server on 127.0.0.1 that serves scripted replies and injects faults byte-exact, and the
//! [`drill`]s that run a task through every fault class against it, and the [`fixtures`] (outputs,
//! contracts, fake providers, span and log capture) tests share.

pub mod chaos;
pub mod drill;
pub mod fixtures;

pub use chaos::{ChaosBuilder, ChaosServer, Fault, RecordedRequest, Reply};
