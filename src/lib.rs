//! Examples, integration tests and benchmarks for harness live in this package; the library is `harness-core`.
