//! The vocabulary of harness contracts, defined once for the two crates that need it.
//!
//! `harness-macros` checks contracts at compile time and `harness-core` runs them; both read the
//! failure classes, the actions, which actions a class allows, the lenient parser's repair kinds
//! and the default durations from here,
//! so the rule the macro enforces is the rule the engine documents. The Markdown contract sheet
//! ([`Sheet`]) is here too: the rustdoc "Contract" section the macro writes and
//! `TaskContract::doc()` are rendered by the same code.
//!
//! The crate has no dependencies (the optional `serde` feature adds the derives harness-core's
//! records need) and is not meant to be used directly: use the re-exports of `harness_core`
//! (`harness_core::FailureClass`, `harness_core::contract::ActionKind`, ...).
#![deny(missing_docs)]

mod action;
mod class;
pub mod defaults;
mod repair;
pub mod sheet;
pub mod tool;

pub use action::ActionKind;
pub use class::FailureClass;
pub use repair::RepairKind;
pub use sheet::Sheet;
