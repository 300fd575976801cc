//! The checks behind `#[llm(range(..))]`, `length`, `pattern`, `one_of` and `custom`, called by the
//! code `#[derive(LlmOutput)]` generates. Each pushes a [`ValidationError`](super::ValidationError)
//! worded for a model to act on.
