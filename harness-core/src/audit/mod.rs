//! The audit trail: one record per call, hash-chained sinks, a verifier, and replay.
