//! Errors that belong to no single concern: configuration.

/// Why a harness (or one of its providers) could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("harness configuration: {0}")]
pub struct ConfigError(pub String);
