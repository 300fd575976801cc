//! The contracts linked into this program: every `#[llm_task]` and `#[llm_policy]` adds one
//! [`Linked`] entry to a static slice at link time (`linkme`: the linker gathers the entries into
//! one section; nothing runs before `main`). `crate::registry` is the public view of it; the
//! engine reads it only to refuse two tasks with one name when a harness is built.
//!
//! Link-time registration works on the platforms `linkme` supports ([`SUPPORTED`]); elsewhere the
//! generated code registers nothing and [`entries`] says so instead of returning an empty list.

use std::collections::BTreeMap;
use std::fmt;

use super::{PolicySet, TaskContract};

/// The platforms `linkme` supports: `$yes` items are compiled there, `$no` items elsewhere.
macro_rules! by_platform {
    (supported { $($yes:item)* } unsupported { $($no:item)* }) => {
        $(
            #[cfg(any(
                target_os = "none",
                target_os = "linux",
                target_os = "macos",
                target_os = "ios",
                target_os = "tvos",
                target_os = "android",
                target_os = "fuchsia",
                target_os = "illumos",
                target_os = "freebsd",
                target_os = "openbsd",
                target_os = "psp",
                target_os = "windows",
                target_os = "uefi",
            ))]
            $yes
        )*
        $(
            #[cfg(not(any(
                target_os = "none",
                target_os = "linux",
                target_os = "macos",
                target_os = "ios",
                target_os = "tvos",
                target_os = "android",
                target_os = "fuchsia",
                target_os = "illumos",
                target_os = "freebsd",
                target_os = "openbsd",
                target_os = "psp",
                target_os = "windows",
                target_os = "uefi",
            )))]
            $no
        )*
    };
}

/// One registered contract.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Linked {
    /// A `#[llm_task]`.
    Task(&'static TaskContract),
    /// A `#[llm_policy]`, with the module that declares it.
    Policy(&'static PolicySet, &'static str),
}

by_platform! {
    supported {
        /// Whether link-time registration works on the platform this was built for.
        pub const SUPPORTED: bool = true;

        /// The entries, one per task and policy of every crate linked into the program.
        #[doc(hidden)]
        #[linkme::distributed_slice]
        pub static CONTRACTS: [Linked];

        /// What generated code names: the slice.
        #[doc(hidden)]
        pub mod registration {
            pub use super::CONTRACTS;
        }

        fn linked() -> &'static [Linked] {
            &CONTRACTS
        }
    }
    unsupported {
        /// Whether link-time registration works on the platform this was built for.
        pub const SUPPORTED: bool = false;

        /// What generated code names: nothing, it registers nothing here.
        #[doc(hidden)]
        pub mod registration {}

        fn linked() -> &'static [Linked] {
            &[]
        }
    }
}

/// Generated code's registration: a static in the slice, or nothing where registration is
/// unsupported (so a program still builds there, and [`entries`] says so). The platform list is
/// the one of `by_platform!`; it is written out here because a `#[macro_export]` macro cannot be
/// produced by another macro and still be named by path.
#[doc(hidden)]
#[macro_export]
macro_rules! __harness_register {
    ($entry:expr) => {
        #[cfg(any(
            target_os = "none",
            target_os = "linux",
            target_os = "macos",
            target_os = "ios",
            target_os = "tvos",
            target_os = "android",
            target_os = "fuchsia",
            target_os = "illumos",
            target_os = "freebsd",
            target_os = "openbsd",
            target_os = "psp",
            target_os = "windows",
            target_os = "uefi",
        ))]
        #[$crate::__private::linkme::distributed_slice($crate::__private::CONTRACTS)]
        #[linkme(crate = $crate::__private::linkme)]
        static __HARNESS_REGISTERED: $crate::__private::Linked = $entry;
    };
}

/// Link-time registration does not work on this platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "link-time registration of contracts is not supported on this platform ({os}): the registry cannot list this program's tasks and policies"
)]
pub struct Unsupported {
    /// The target's operating system, as `cfg(target_os)` names it.
    pub os: &'static str,
}

/// Every registered entry, in link order (not meaningful: sort before showing).
pub fn entries() -> Result<&'static [Linked], Unsupported> {
    if SUPPORTED {
        Ok(linked())
    } else {
        Err(Unsupported {
            os: std::env::consts::OS,
        })
    }
}

/// Two or more registered tasks share a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicates {
    /// `(name, every module declaring a task of that name)`, sorted.
    pub names: Vec<(&'static str, Vec<&'static str>)>,
}

impl fmt::Display for Duplicates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, modules)) in self.names.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let modules: Vec<String> = modules.iter().map(|m| format!("`{m}`")).collect();
            write!(
                f,
                "task name `{name}` is declared {} times, in {}: audit records, contract docs and \
                 readiness reports identify a task by its name, so rename all but one",
                modules.len(),
                modules.join(", ")
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Duplicates {}

/// The task names declared more than once among `entries`. (Policies are told apart by module:
/// two `Standard` policies in two modules are two policies.)
pub fn duplicates(entries: &[Linked]) -> Result<(), Duplicates> {
    let mut tasks: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for entry in entries {
        if let Linked::Task(t) = entry {
            tasks.entry(t.name).or_default().push(t.module);
        }
    }
    let names: Vec<_> = tasks
        .into_iter()
        .filter(|(_, modules)| modules.len() > 1)
        .map(|(name, mut modules)| {
            modules.sort_unstable();
            (name, modules)
        })
        .collect();
    if names.is_empty() {
        Ok(())
    } else {
        Err(Duplicates { names })
    }
}
