//! The six questions, one function each: checks over the contract and the evidence, each check
//! adding what it found or what is missing.

use serde_json::Value;

use crate::audit::{AuditRecord, MessagePolicy};
use crate::contract::{Action, FailureClass, TaskContract};

use super::{Answer, Evidence};

fn no_trail(a: &mut Answer) {
    a.lack(
        "no audit trail given: pass the program's trail (`--audit FILE`) written by `JsonlSink` or `SqliteSink`".to_owned(),
    );
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// The trail's records of `c`, or a missing-evidence line in `a`. Only 01 counts "the trail has
/// calls of this task" as a check of its own; the others use the records as their evidence.
fn records<'e>(c: &TaskContract, ev: &'e Evidence, a: &mut Answer) -> Option<Vec<&'e AuditRecord>> {
    if !ev.has_trail() {
        no_trail(a);
        return None;
    }
    let (mine, modules) = ev.records_for(c);
    if mine.is_empty() {
        a.lack("the audit trail holds no call of this task: is an audit sink installed on the harness that runs it?");
        return None;
    }
    if a.number == "01" && !modules.is_empty() {
        a.note(format!(
            "(records of `{}` come from module(s) {} while it is declared in `{}`: the same task in another binary, or another program's task of this name)",
            c.name,
            modules.join(", "),
            c.module
        ));
    }
    if a.number == "01" {
        a.check(
            true,
            format!(
                "an audit sink is on: the trail holds {} call(s) of this task",
                mine.len()
            ),
            "",
        );
    }
    Some(mine)
}

/// 01's checks on the records: full messages and fingerprints.
fn recorded(a: &mut Answer, rs: &[&AuditRecord]) {
    let n = rs.len();
    let full = rs
        .iter()
        .filter(|r| r.request.message_policy == MessagePolicy::Full)
        .count();
    a.check(
        full == n,
        format!("{full} of {n} record(s) keep the full messages (replayable)"),
        format!("{} of {n} record(s) keep only hashed or redacted messages: those calls cannot be replayed (`MessagePolicy::Full`)", n - full),
    );
    let printed = rs
        .iter()
        .filter(|r| {
            !r.fingerprint.is_empty() && r.attempts.iter().all(|at| !at.fingerprint.is_empty())
        })
        .count();
    a.check(
        printed == n,
        format!("every call and attempt of the {n} record(s) carries its request fingerprint"),
        format!(
            "{} record(s) lack request fingerprints (written by an older harness)",
            n - printed
        ),
    );
}

/// 01's check on how the messages are made: a template, or a body that assembles them with a
/// context plan (its report is in each record's `context`).
fn context_assembly(a: &mut Answer, c: &TaskContract, rs: Option<&[&AuditRecord]>) {
    if c.prompt.is_some() {
        a.check(
            true,
            format!("the messages are rendered from a template (contract version `{}`): the same inputs give the same messages", c.version),
            "",
        );
        return;
    }
    let Some(rs) = rs else {
        a.lack("the body assembles the context in code; without an audit trail nothing shows whether a context plan (`context::ContextPlan`) built it");
        return;
    };
    let planned = rs.iter().filter(|r| r.context.is_some()).count();
    a.check(
        planned == rs.len(),
        format!("a context plan assembled the messages of all {planned} recorded call(s) (sections, budget and hashes in each record)"),
        format!(
            "the body assembles the context in code without a context plan in {} of {} recorded call(s): reproducing them needs their recorded messages (`context::ContextPlan` makes assembly deterministic and recorded)",
            rs.len() - planned,
            rs.len()
        ),
    );
}

/// 01: audit sink on, full messages kept, fingerprints, a deterministic context plan.
pub(super) fn reproducible(c: &TaskContract, ev: &Evidence) -> Answer {
    let mut a = Answer::new(1);
    let rs = records(c, ev, &mut a);
    if let Some(rs) = &rs {
        recorded(&mut a, rs);
    }
    context_assembly(&mut a, c, rs.as_deref());
    let pinned = c.params.temperature == Some(0.0) || c.params.seed.is_some();
    a.check(
        pinned,
        format!(
            "sampling is pinned ({})",
            match (c.params.temperature, c.params.seed) {
                (_, Some(s)) => format!("seed {s}"),
                (t, None) => format!("temperature {}", t.unwrap_or(0.0)),
            }
        ),
        "neither `temperature = 0.0` nor a `seed` in the contract: the same messages may get another answer",
    );
    a.scored()
}

/// The drill documents of `c` with the classes each scenario handled.
fn drilled(c: &TaskContract, ev: &Evidence, a: &mut Answer) -> Option<Vec<Value>> {
    let docs = ev.drills_for(c.name);
    if docs.is_empty() {
        a.lack("no drill results for this task: run `testing::drill::run` (example `drill`) and pass `DrillReport::to_json()` (`--drill FILE`)".to_owned());
        return None;
    }
    let current: Vec<&&Value> = docs
        .iter()
        .filter(|d| d.get("contract_version").and_then(Value::as_str) == Some(c.version))
        .collect();
    if current.is_empty() {
        let v = docs[0]
            .get("contract_version")
            .and_then(Value::as_str)
            .unwrap_or("?");
        a.lack(format!(
            "the drill results are for contract version `{v}`, not the current `{}`: drill again",
            c.version
        ));
        return None;
    }
    Some(
        current
            .iter()
            .flat_map(|d| {
                d.get("scenarios")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect(),
    )
}

fn handled(s: &Value, class: FailureClass) -> bool {
    s.get("classes_handled")
        .and_then(Value::as_array)
        .is_some_and(|l| {
            l.iter()
                .any(|c| c.as_str().map(|c| c.trim_matches('"')) == Some(class.as_str()))
        })
}

/// 02: the schema and the invalid-output contract, drilled, and enforced on real calls.
pub(super) fn schema(c: &TaskContract, ev: &Evidence) -> Answer {
    let mut a = Answer::new(2);
    let schema = c.output_schema();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .map_or(0, |p| p.len());
    a.check(
        !matches!(schema, Value::Bool(false) | Value::Null),
        format!(
            "output `{}` has a closed JSON schema ({props} top-level properties)",
            c.output.type_name
        ),
        format!("output `{}` has no usable JSON schema", c.output.type_name),
    );
    let chain = c.chain(FailureClass::InvalidOutput);
    a.check(
        chain.is_some(),
        format!(
            "invalid_output → `{}`",
            chain.map(ToString::to_string).unwrap_or_default()
        ),
        "no contract for invalid_output: a mismatch ends the call as an error",
    );
    if let Some(scenarios) = drilled(c, ev, &mut a) {
        let tested: Vec<String> = scenarios
            .iter()
            .filter(|s| handled(s, FailureClass::InvalidOutput))
            .map(|s| {
                format!(
                    "{} → {}",
                    s["name"].as_str().unwrap_or("?"),
                    s["outcome"].as_str().unwrap_or("?")
                )
            })
            .collect();
        a.check(
            !tested.is_empty(),
            format!(
                "drilled: {} scenario(s) made the harness act on invalid output ({})",
                tested.len(),
                tested.join("; ")
            ),
            "the drill results show no scenario where invalid output was handled",
        );
    }
    if let Some(rs) = records(c, ev, &mut a) {
        let caught: usize = rs
            .iter()
            .flat_map(|r| &r.attempts)
            .filter(|at| at.failure == Some(FailureClass::InvalidOutput))
            .count();
        let answers = rs.iter().filter(|r| r.outcome.status == "answer").count();
        a.check(
            true,
            format!("enforced on real calls: {answers} answer(s) in the trail passed schema and rules; {caught} invalid output(s) caught and handled by the contract"),
            "",
        );
    }
    a.scored()
}

fn metric_list(m: &serde_json::Map<String, Value>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// 03: an eval dataset, a metric and a baseline; an online scorer or drift alarm.
pub(super) fn quality(c: &TaskContract, ev: &Evidence) -> Answer {
    let mut a = Answer::new(3);
    match ev.eval_for(c.name) {
        None if !ev.has_eval() => {
            a.lack("no eval results given (`--eval FILE`: a `harness-eval-results` run of `harness_core::eval`, or a `harness.eval-results` summary)")
        }
        None => a.lack("the eval results have no entry for this task: add a dataset for it"),
        Some(e) => {
            a.check(
                !e.metrics.is_empty(),
                format!(
                    "eval: dataset `{}` ({} case(s), {}): {}",
                    e.dataset.as_deref().unwrap_or("unnamed"),
                    e.cases.map_or_else(|| "?".to_owned(), |n| n.to_string()),
                    e.source.as_deref().unwrap_or("source not said"),
                    metric_list(&e.metrics)
                ),
                "the eval entry has no metric",
            );
            a.check(
                !e.baseline.is_empty(),
                format!("baseline: {}", metric_list(&e.baseline)),
                "no baseline to compare the metric with",
            );
            let v = e.contract_version.as_deref();
            a.check(
                v == Some(c.version),
                format!("evaluated on the current contract version `{}`", c.version),
                format!(
                    "evaluated on contract version `{}`, not the current `{}`: evaluate again",
                    v.unwrap_or("?"),
                    c.version
                ),
            );
        }
    }
    let online = ev.declares("drift_alarm") || ev.declares("online_scorer");
    a.check(
        online,
        "the program declares an online scorer or drift alarm (declared, not verifiable from files)",
        "no online scorer or drift alarm declared (`observe::DriftAlarm` watches invalid-output and low-confidence rates)",
    );
    a.scored()
}

/// Whether a model name is pinned to a dated or numbered snapshot.
fn is_pinned(model: &str) -> bool {
    let b = model.as_bytes();
    let mut run = 0;
    let mut best = 0;
    for (i, ch) in b.iter().enumerate() {
        if ch.is_ascii_digit()
            && (run > 0 || i == 0 || matches!(b[i - 1], b'-' | b'@' | b':' | b'_' | b'.'))
        {
            run += 1;
            best = best.max(run);
        } else if *ch != b'-' || run == 0 {
            run = 0;
        }
    }
    best >= 6 || (best >= 4 && model.contains('-'))
}

/// 04: a pinned dated model, a model-change alarm, a regression suite from traffic.
pub(super) fn model_updates(c: &TaskContract, ev: &Evidence) -> Answer {
    let mut a = Answer::new(4);
    match c.model {
        Some(m) => a.check(
            is_pinned(m),
            format!("the model `{m}` is pinned to a dated snapshot"),
            format!("the model `{m}` is not a dated snapshot (`gpt-4o-2024-08-06`): the provider can change what it serves"),
        ),
        None => a.check(false, "", "no model in the contract: the harness's default model answers, and can change without a contract change"),
    };
    let fallbacks: Vec<&str> = c
        .applicable_classes()
        .flat_map(|cl| c.steps(cl))
        .filter_map(|s| match s {
            Action::Fallback(t) => Some(t.model),
            _ => None,
        })
        .collect();
    if !fallbacks.is_empty() {
        a.note(format!(
            "fallback model(s) {} (another model to switch to)",
            fallbacks.join(", ")
        ));
    }
    if let Some(rs) = records(c, ev, &mut a) {
        let mut answered: Vec<&str> = rs
            .iter()
            .filter_map(|r| r.model_answered.as_deref())
            .collect();
        answered.sort_unstable();
        answered.dedup();
        a.check(
            !answered.is_empty(),
            format!(
                "the trail records the model that answered each call: {}{}",
                answered.join(", "),
                if answered.len() > 1 {
                    " (more than one: a change is visible in the trail)"
                } else {
                    ""
                }
            ),
            "no record says which model answered: a model change would not be visible",
        );
        let replayable = rs
            .iter()
            .filter(|r| r.request.message_policy == MessagePolicy::Full)
            .count();
        let suite = ev
            .eval_for(c.name)
            .is_some_and(|e| e.source.as_deref() == Some("traffic"))
            || ev.declares("traffic_regression_suite");
        a.check(
            suite || replayable > 0,
            if suite {
                "a regression suite from traffic exists (eval source `traffic`)".to_owned()
            } else {
                format!("{replayable} recorded call(s) keep full messages: `harness replay` can re-run them on a new model (no suite built from them yet)")
            },
            "no regression suite from traffic, and no replayable record",
        );
    }
    a.check(
        ev.declares("model_change_alarm"),
        "the program declares a model-change alarm (declared, not verifiable from files)",
        "no model-change alarm declared: compare `model_answered` across calls and alert on a change",
    );
    a.scored()
}

/// 05: tools are not part of harness yet, so no task has one.
pub(super) fn tool_limits(_c: &TaskContract, _ev: &Evidence) -> Answer {
    let mut a = Answer::new(5);
    a.note("the task calls no tools (tools are not part of harness yet): nothing to limit; provider rate and concurrency limits are harness configuration, not in the contract".to_owned());
    a.score = None;
    a
}

/// 06: the failure share of time, tokens and cost, from the trail.
pub(super) fn failure_cost(c: &TaskContract, ev: &Evidence) -> Answer {
    let mut a = Answer::new(6);
    let Some(rs) = records(c, ev, &mut a) else {
        return a.scored();
    };
    let Some(s) = ev.task_stats(c, &rs) else {
        return a.scored();
    };
    let t = &s.totals;
    let classes: Vec<String> = s
        .by_class
        .iter()
        .map(|k| format!("{} {}", k.class, percent(k.time_share)))
        .collect();
    a.check(true, format!(
        "{} call(s), {} attempt(s), {} failed: {} of attempt time and {} of tokens went to failed attempts{}",
        t.calls,
        t.ok.attempts + t.failed.attempts,
        t.failed.attempts,
        percent(t.failed_share.time),
        percent(t.failed_share.tokens),
        if classes.is_empty() { String::new() } else { format!(" (by class: {})", classes.join(", ")) }
    ), "");
    a.check(
        t.ok.unpriced + t.failed.unpriced == 0,
        format!("cost in failed attempts ${:.6} of ${:.6}", t.failed.cost_usd, t.failed.cost_usd + t.ok.cost_usd),
        format!("{} attempt(s) ran on a model without a known price: the cost of failures is unknown (set a `PriceTable`)", t.ok.unpriced + t.failed.unpriced),
    );
    if s.versions.len() > 1 {
        a.note(format!(
            "(these numbers mix {} contract versions)",
            s.versions.len()
        ));
    }
    a.scored()
}

#[cfg(test)]
mod tests {
    use super::is_pinned;

    #[test]
    fn dated_models_are_pinned() {
        for m in [
            "gpt-4o-2024-08-06",
            "claude-3-5-sonnet-20241022",
            "gpt-4-0613",
            "model@20240620",
        ] {
            assert!(is_pinned(m), "{m}");
        }
        for m in [
            "gpt-4o-mini",
            "smollm2-135m",
            "gpt-4o",
            "llama3:8b",
            "claude-3-5-sonnet-latest",
        ] {
            assert!(!is_pinned(m), "{m}");
        }
    }
}
