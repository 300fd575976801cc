//! Every contract of a program: the tasks and policies its macros registered, their published
//! docs (versioned JSON and one Markdown page), a diff between two exports, the time and cost an
//! audit trail spent on failures, and the readiness audit.
//!
//! Each `#[llm_task]` and `#[llm_policy]` registers its contract when the program is loaded (a
//! static node linked into a list by a constructor the platform's loader runs; nothing is
//! allocated). [`program`] is the checked view of them:
//!
//! ```no_run
//! let registry = harness_core::registry::program().expect("a registry");
//! for task in registry.tasks() {
//!     println!("{} (version {})", task.name, task.version);
//! }
//! println!("{}", registry.export("my-service").to_json_pretty());
//! ```
//!
//! Where registration does not work (see [`SUPPORTED`]) [`program`] returns
//! [`RegistryError::Unsupported`] instead of an empty list; [`Registry::from_entries`] builds a
//! registry by hand there. Two tasks with one name are an error here and when a harness is built.
//!
//! Registration needs the code declaring a task to be linked in: a task in a library crate
//! that the program never names may be dropped by the linker with the rest of that crate.

mod diff;
mod export;
mod markdown;
pub mod readiness;
pub mod stats;

use std::fmt;

use crate::contract::linked;
use crate::contract::{PolicySet, TaskContract};

pub use crate::contract::linked::{Duplicates, Linked, SUPPORTED, Unsupported};
pub use diff::{ContractDiff, TaskChange};
pub use export::{
    EXPORT_FORMAT, EXPORT_VERSION, Export, ExportError, FailureDoc, InputDoc, LimitsDoc,
    NotPresent, OutputDoc, ParamsDoc, PolicyDoc, PromptDoc, SourceDoc, StepDoc, TaskDoc,
};

/// A policy with the module that declares it.
#[derive(Clone, Copy, Debug)]
pub struct PolicyEntry {
    /// The policy.
    pub policy: &'static PolicySet,
    /// `module::path` of its declaration.
    pub module: &'static str,
}

/// Why the registry cannot be listed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Registration is not supported on this platform.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// Two tasks share a name.
    #[error("{0}")]
    Duplicates(#[from] Duplicates),
}

/// The contracts of one program, sorted by name (tasks) and by module and name (policies).
#[derive(Clone, Debug)]
pub struct Registry {
    tasks: Vec<&'static TaskContract>,
    policies: Vec<PolicyEntry>,
}

impl Registry {
    /// A registry of these entries (the registered ones, or a list written by hand where
    /// registration is unsupported). Fails when two tasks share a name.
    pub fn from_entries(entries: &[Linked]) -> Result<Registry, Duplicates> {
        linked::duplicates(entries)?;
        let mut tasks = Vec::new();
        let mut policies = Vec::new();
        for entry in entries {
            match *entry {
                Linked::Task(t) => tasks.push(t),
                Linked::Policy(policy, module) => policies.push(PolicyEntry { policy, module }),
            }
        }
        tasks.sort_by_key(|t| (t.name, t.module));
        policies.sort_by_key(|p| (p.policy.name, p.module));
        Ok(Registry { tasks, policies })
    }

    /// The tasks, by name.
    pub fn tasks(&self) -> &[&'static TaskContract] {
        &self.tasks
    }

    /// The policies, by name.
    pub fn policies(&self) -> &[PolicyEntry] {
        &self.policies
    }

    /// The task called `name`.
    pub fn task(&self, name: &str) -> Option<&'static TaskContract> {
        self.tasks.iter().copied().find(|t| t.name == name)
    }

    /// The published form of these contracts, for `program` (a name for the export's title).
    pub fn export(&self, program: &str) -> Export {
        Export::of(self, program)
    }
}

impl fmt::Display for Registry {
    /// One line per task and policy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tasks {
            writeln!(f, "task   {} ({}, version {})", t.name, t.module, t.version)?;
        }
        for p in &self.policies {
            writeln!(f, "policy {} ({})", p.policy.name, p.module)?;
        }
        Ok(())
    }
}

/// The registry of this program: every task and policy linked into it. Fails where
/// registration is unsupported, and when two tasks share a name.
pub fn program() -> Result<Registry, RegistryError> {
    Ok(Registry::from_entries(&linked::entries()?)?)
}

/// Every task of this program, by name.
pub fn tasks() -> Result<Vec<&'static TaskContract>, RegistryError> {
    Ok(program()?.tasks)
}

/// Every policy of this program, by name.
pub fn policies() -> Result<Vec<PolicyEntry>, RegistryError> {
    Ok(program()?.policies)
}

/// The task of this program called `name`.
pub fn task(name: &str) -> Result<Option<&'static TaskContract>, RegistryError> {
    Ok(program()?.task(name))
}

/// Checks the registry at the start of a program: `Ok` when it can be listed and no two tasks
/// share a name. `HarnessBuilder::build` runs the duplicate check too.
pub fn check() -> Result<(), RegistryError> {
    program().map(|_| ())
}
