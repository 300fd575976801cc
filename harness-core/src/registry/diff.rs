//! What changed in the contracts between two exports (two releases of a program), for review.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::audit::{Difference, diff_json};

use super::export::{Export, FailureDoc};

/// One task (or policy) present in both exports whose contract differs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskChange {
    /// The task's (or policy's) name.
    pub name: String,
    /// Its version before (empty for policies).
    pub old_version: String,
    /// Its version after (empty for policies).
    pub new_version: String,
    /// Every difference, by path (`failures.timeout.chain`, `limits.timeout_ms`,
    /// `output.schema.properties.label`).
    pub differences: Vec<Difference>,
}

/// The differences between two exports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContractDiff {
    /// The old export's program and harness version.
    pub old: String,
    /// The new export's program and harness version.
    pub new: String,
    /// Tasks only in the new export.
    pub added: Vec<String>,
    /// Tasks only in the old export.
    pub removed: Vec<String>,
    /// Tasks in both, with a different contract.
    pub changed: Vec<TaskChange>,
    /// Policies only in the new export.
    pub added_policies: Vec<String>,
    /// Policies only in the old export.
    pub removed_policies: Vec<String>,
    /// Policies in both, with different chains.
    pub changed_policies: Vec<TaskChange>,
}

impl ContractDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.added_policies.is_empty()
            && self.removed_policies.is_empty()
            && self.changed_policies.is_empty()
    }
}

/// `failures` as an object keyed by class, so a changed chain reads `failures.timeout.chain`
/// (its `steps` left out: the chain says the same in one line).
fn keyed(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        if let Some(Value::Array(list)) = obj.remove("failures") {
            let by_class: serde_json::Map<String, Value> = list
                .into_iter()
                .map(|mut f| {
                    // `chain` says what `steps` says (a non-default backoff included), in one line.
                    if let Some(o) = f.as_object_mut() {
                        o.remove("steps");
                    }
                    let class = f
                        .get("class")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned();
                    (class, f)
                })
                .collect();
            obj.insert("failures".into(), Value::Object(by_class));
        }
    }
    v
}

fn value<T: Serialize>(t: &T) -> Value {
    keyed(serde_json::to_value(t).unwrap_or(Value::Null))
}

/// Names in `a` but not in `b`.
fn only<'a>(a: impl Iterator<Item = &'a str>, b: &[&str]) -> Vec<String> {
    a.filter(|n| !b.contains(n)).map(str::to_owned).collect()
}

#[derive(Serialize)]
struct PolicyView<'a> {
    failures: &'a [FailureDoc],
    module: &'a str,
}

impl Export {
    /// What changed from `self` (the old export) to `new`.
    pub fn diff(&self, new: &Export) -> ContractDiff {
        let old_names: Vec<&str> = self.tasks.iter().map(|t| t.name.as_str()).collect();
        let new_names: Vec<&str> = new.tasks.iter().map(|t| t.name.as_str()).collect();
        let changed = self
            .tasks
            .iter()
            .filter_map(|o| {
                let n = new.task(&o.name)?;
                let differences = diff_json(&value(o), &value(n));
                (!differences.is_empty()).then(|| TaskChange {
                    name: o.name.clone(),
                    old_version: o.version.clone(),
                    new_version: n.version.clone(),
                    differences,
                })
            })
            .collect();
        let old_pol: Vec<&str> = self.policies.iter().map(|p| p.name.as_str()).collect();
        let new_pol: Vec<&str> = new.policies.iter().map(|p| p.name.as_str()).collect();
        let changed_policies = self
            .policies
            .iter()
            .filter_map(|o| {
                let n = new.policies.iter().find(|p| p.name == o.name)?;
                let view = |p: &super::export::PolicyDoc| {
                    value(&PolicyView {
                        failures: &p.failures,
                        module: &p.module,
                    })
                };
                let differences = diff_json(&view(o), &view(n));
                (!differences.is_empty()).then(|| TaskChange {
                    name: o.name.clone(),
                    old_version: String::new(),
                    new_version: String::new(),
                    differences,
                })
            })
            .collect();
        ContractDiff {
            old: format!("{} (harness {})", self.program, self.harness_version),
            new: format!("{} (harness {})", new.program, new.harness_version),
            added: only(new_names.iter().copied(), &old_names),
            removed: only(old_names.iter().copied(), &new_names),
            changed,
            added_policies: only(new_pol.iter().copied(), &old_pol),
            removed_policies: only(old_pol.iter().copied(), &new_pol),
            changed_policies,
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        let cut: String = s.chars().take(117).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn differences(f: &mut fmt::Formatter<'_>, list: &[Difference]) -> fmt::Result {
    for d in list {
        match d {
            Difference::Changed { path, old, new } => {
                writeln!(f, "  - `{path}`: {} → {}", short(old), short(new))?
            }
            Difference::Added { path, new } => writeln!(f, "  - `{path}` added: {}", short(new))?,
            Difference::Removed { path, old } => {
                writeln!(f, "  - `{path}` removed (was {})", short(old))?
            }
        }
    }
    Ok(())
}

impl fmt::Display for ContractDiff {
    /// A review in Markdown: added, removed, then each changed contract path by path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# Contract changes: {} → {}\n", self.old, self.new)?;
        if self.is_empty() {
            return writeln!(f, "No contract changed.");
        }
        for (what, list) in [
            ("New task", &self.added),
            ("Removed task", &self.removed),
            ("New policy", &self.added_policies),
            ("Removed policy", &self.removed_policies),
        ] {
            for name in list {
                writeln!(f, "- {what} `{name}`")?;
            }
        }
        for c in &self.changed {
            writeln!(
                f,
                "- Task `{}` changed (version `{}` → `{}`):",
                c.name, c.old_version, c.new_version
            )?;
            differences(f, &c.differences)?;
        }
        for c in &self.changed_policies {
            writeln!(f, "- Policy `{}` changed:", c.name)?;
            differences(f, &c.differences)?;
        }
        Ok(())
    }
}
