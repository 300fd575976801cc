//! The validated model of what a macro was applied to: a [`Task`] (the function and its resolved
//! contract), a [`Policy`], an [`Output`] type. Built from the attribute grammar (`attr`) and the
//! user's item, with every default filled in; `check` judges it and `expand` only turns it into
//! tokens. Anchor: serde_derive `internals/ast.rs`.

pub mod output;
pub mod policy;
pub mod task;
pub mod tool;

pub use output::Output;
pub use policy::Policy;
pub use task::{Task, TaskFn};

use syn::Attribute;

/// Doc attributes and the rest, separately.
pub fn split_docs(attrs: &[Attribute]) -> (Vec<&Attribute>, Vec<&Attribute>) {
    attrs.iter().partition(|a| a.path().is_ident("doc"))
}

/// `#[cfg(..)]` attributes, repeated on every item generated next to the user's.
pub fn cfg_attrs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("cfg")).collect()
}
