//! harness-core's integration tests, in one binary: one link step instead of one per file.
//! Modules that need a feature are compiled only with it (`cargo test -p harness-core
//! --all-features` runs them all). The tests that install `tracing` subscribers are in the
//! `spans` binary, apart from these, which run the engine on many threads with none.

mod architecture;
mod context;
mod context_calls;
mod parse;
mod parse_classes;
mod parse_properties;
mod tools;

#[cfg(feature = "testing")]
mod anthropic;
#[cfg(feature = "testing")]
mod audit;
#[cfg(feature = "testing")]
mod chaos;
#[cfg(feature = "testing")]
mod cost;
#[cfg(feature = "testing")]
mod drift;
#[cfg(feature = "testing")]
mod drill;
#[cfg(feature = "testing")]
mod engine;
#[cfg(all(feature = "testing", feature = "macros"))]
mod eval;
#[cfg(feature = "testing")]
mod fault_matrix;
#[cfg(feature = "testing")]
mod kill;
#[cfg(all(feature = "testing", feature = "sqlite"))]
mod memory;
#[cfg(feature = "testing")]
mod openai;
#[cfg(feature = "testing")]
mod registry;
#[cfg(feature = "testing")]
mod reproduce;
#[cfg(all(feature = "testing", feature = "sqlite"))]
mod review;
#[cfg(feature = "testing")]
mod sources;
#[cfg(feature = "testing")]
mod tool_calls;
