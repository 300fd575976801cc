//! Error accumulation: every check reports into one [`Ctxt`], so the user sees all mistakes at once.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// Collects errors; [`Ctxt::check`] combines them.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Self::default()
    }

    /// An error under `tokens` (the narrowest offending tokens), with a `help:` line.
    pub fn error_spanned_by<T: ToTokens>(&self, tokens: T, msg: impl Display, help: impl Display) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new_spanned(tokens, with_help(msg, help)));
    }

    /// An error at `span`, with a `help:` line.
    pub fn error_at(&self, span: Span, msg: impl Display, help: impl Display) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new(span, with_help(msg, help)));
    }

    /// A parse error from syn, as is.
    pub fn syn_error(&self, err: syn::Error) {
        self.errors.borrow_mut().push(err);
    }

    /// All errors combined, or `Ok` when there are none.
    pub fn check(self) -> Result<(), syn::Error> {
        let mut errors = self.errors.into_inner().into_iter();
        let Some(mut first) = errors.next() else {
            return Ok(());
        };
        for e in errors {
            first.combine(e);
        }
        Err(first)
    }
}

/// The message format of every macro error: what is wrong, then how to fix it.
pub fn with_help(msg: impl Display, help: impl Display) -> String {
    let help = help.to_string();
    if help.is_empty() {
        msg.to_string()
    } else {
        format!("{msg}\n\nhelp: {help}")
    }
}
