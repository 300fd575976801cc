//! The contracts linked into this program: every `#[llm_task]` and `#[llm_policy]` submits one
//! [`Linked`] entry (`inventory`: a static node per entry, linked into one list by a constructor
//! that the platform's loader runs before `main`, from `.init_array` on ELF). `crate::registry` is
//! the public view of it (generated code submits through `__private::register!`); the engine reads it only to refuse two tasks with one name when a
//! harness is built.
//!
//! Registration works on the platforms `inventory` supports ([`SUPPORTED`]); elsewhere the
//! constructors never run, and [`entries`] says so instead of returning an empty list.

use std::collections::BTreeMap;
use std::fmt;

use super::{PolicySet, TaskContract};

/// Whether registration works on the platform this was built for (the platforms whose loaders
/// run `inventory`'s constructors).
pub const SUPPORTED: bool = cfg!(any(
    target_family = "wasm",
    target_os = "linux",
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd",
    target_os = "haiku",
    target_os = "illumos",
    target_os = "netbsd",
    target_os = "nto",
    target_os = "openbsd",
    target_os = "redox",
    target_os = "vxworks",
    target_os = "none",
    target_os = "macos",
    target_os = "ios",
    windows,
));

/// One registered contract.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Linked {
    /// A `#[llm_task]`.
    Task(&'static TaskContract),
    /// A `#[llm_policy]`, with the module that declares it.
    Policy(&'static PolicySet, &'static str),
}

inventory::collect!(Linked);

/// Registration does not work on this platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "registration of contracts is not supported on this platform ({os}): the registry cannot list this program's tasks and policies; build one with `Registry::from_entries`"
)]
pub struct Unsupported {
    /// The target's operating system, as `cfg(target_os)` names it.
    pub os: &'static str,
}

/// Every registered entry, in no meaningful order (sort before showing).
pub fn entries() -> Result<Vec<Linked>, Unsupported> {
    if SUPPORTED {
        Ok(inventory::iter::<Linked>.into_iter().copied().collect())
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
