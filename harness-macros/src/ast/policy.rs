//! The model of `#[llm_policy(...)] struct Name;`: its name, `crate` path and contracts.

use proc_macro2::TokenStream;
use syn::{DeriveInput, Path};

use crate::attr::{self, Site};
use crate::contract::Contracts;
use crate::ctxt::Ctxt;

pub struct Policy<'a> {
    pub item: &'a DeriveInput,
    pub krate: Option<Path>,
    pub contracts: Contracts,
}

impl<'a> Policy<'a> {
    /// Reads the struct and the attribute's arguments, reporting problems into `cx`.
    pub fn from_ast(cx: &Ctxt, item: &'a DeriveInput, args: TokenStream) -> Policy<'a> {
        if !item.generics.params.is_empty() {
            cx.error_spanned_by(
                &item.generics,
                "a policy cannot be generic",
                "declare it as a plain unit struct: `pub struct Standard;`",
            );
        }
        let args = attr::parse_task_args(cx, args, Site::Policy);
        Policy {
            item,
            krate: args.krate.map(|k| k.value),
            contracts: args.contracts,
        }
    }
}
