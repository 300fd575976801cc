//! Baseline comparison that is statistics, not a diff: cases paired by id, the exact McNemar
//! test for pass/fail, a paired bootstrap for scores, the cases that flipped, and a gate that
//! fails only when a drop is both significant and at least the minimum effect — plus a statement
//! of what the dataset can detect.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::results::{CaseResult, RunResults};
use super::stats::{
    Bootstrap, mcnemar_exact, mcnemar_power, min_detectable_drop, paired_bootstrap,
};

/// Exit code: no regression.
pub const EXIT_OK: u8 = 0;
/// Exit code: a regression.
pub const EXIT_REGRESSION: u8 = 1;
/// Exit code: the comparison cannot be made (bad files, another task or dataset, no pairs).
pub const EXIT_CANNOT_RUN: u8 = 2;

/// What the gate needs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateConfig {
    /// The significance level (default 0.05).
    pub alpha: f64,
    /// The smallest drop, in points (percentage points of pass rate, or score × 100), that
    /// fails the gate (default 5).
    pub min_effect_points: f64,
    /// The drop the power statement is about, in points (default 15).
    pub power_drop_points: f64,
    /// Bootstrap resamples (default 1000).
    pub resamples: u32,
    /// The bootstrap's seed (default 0): comparisons are reproducible.
    pub seed: u64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            alpha: 0.05,
            min_effect_points: 5.0,
            power_drop_points: 15.0,
            resamples: 1000,
            seed: 0,
        }
    }
}

/// One case whose outcome changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flip {
    /// The case's id.
    pub id: String,
    /// `true`: passed before and fails now (a regression); `false`: the other way.
    pub regressed: bool,
    /// The inputs.
    pub inputs: Value,
    /// The expected value.
    pub expected: Option<Value>,
    /// The baseline's answer.
    pub base_got: Option<Value>,
    /// The new answer.
    pub new_got: Option<Value>,
    /// Why the new run failed (the failing scores' details), for regressions.
    pub why: Option<String>,
}

/// The power of the comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Power {
    /// Paired cases.
    pub cases: u64,
    /// The drop considered, in points.
    pub drop_points: f64,
    /// The power to detect it at `alpha`.
    pub power: f64,
    /// The share of pairs assumed to change outcome (the observed share, at least the drop).
    pub discordant: f64,
    /// The smallest drop detectable with 80% power, in points.
    pub min_detectable_points: Option<u32>,
}

impl fmt::Display for Power {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cases detect a {:.0}-point drop with 80% power at α = 0.05: {} (power {:.2}, \
             assuming {:.0}% of cases change outcome)",
            self.cases,
            self.drop_points,
            if self.power >= 0.8 { "yes" } else { "no" },
            self.power,
            self.discordant * 100.0
        )?;
        match self.min_detectable_points {
            Some(p) => write!(
                f,
                "; the smallest drop this dataset detects so is {p} points"
            ),
            None => f.write_str("; no drop is detectable so with this few cases"),
        }
    }
}

/// The comparison of a new run against a baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The gate's settings.
    pub config: GateConfig,
    /// The task.
    pub task: String,
    /// The dataset.
    pub dataset: String,
    /// Whether the dataset's contents changed between the runs (cases are still paired by id).
    pub dataset_changed: bool,
    /// Cases present in both runs.
    pub paired: u64,
    /// Ids only in the baseline.
    pub only_base: Vec<String>,
    /// Ids only in the new run.
    pub only_new: Vec<String>,
    /// Pass rate of the baseline over the paired cases.
    pub base_pass_rate: f64,
    /// Pass rate of the new run over the paired cases.
    pub new_pass_rate: f64,
    /// New − base, in points.
    pub delta_points: f64,
    /// Pairs that passed before and fail now.
    pub regressions: u64,
    /// Pairs that failed before and pass now.
    pub improvements: u64,
    /// Exact McNemar two-sided p-value.
    pub mcnemar_p: f64,
    /// Paired bootstrap of the score difference (new − base, scores 0 to 1).
    pub score_bootstrap: Option<Bootstrap>,
    /// The cases that flipped, regressions first.
    pub flipped: Vec<Flip>,
    /// What the dataset can detect.
    pub power: Power,
    /// Whether the gate found a regression.
    pub regression: bool,
    /// Why the gate decided as it did, in words.
    pub verdict: String,
}

/// Why two runs cannot be compared.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    /// The runs are of different tasks.
    #[error("the baseline is of task `{base}`, the new run of task `{new}`")]
    OtherTask {
        /// The baseline's task.
        base: String,
        /// The new run's task.
        new: String,
    },
    /// The runs are of different datasets.
    #[error("the baseline ran dataset `{base}`, the new run dataset `{new}`")]
    OtherDataset {
        /// The baseline's dataset.
        base: String,
        /// The new run's.
        new: String,
    },
    /// No case is in both runs (or none is scored).
    #[error("no case id is in both runs: nothing to pair")]
    NoPairs,
}

/// A case's pass (majority of its repeats; a tie fails) and mean score, over scored repeats.
fn per_case(results: &RunResults) -> HashMap<&str, (bool, f64, &CaseResult)> {
    let mut acc: HashMap<&str, (u32, u32, f64, &CaseResult)> = HashMap::new();
    for c in results.cases.iter().filter(|c| !c.unscored) {
        let e = acc.entry(c.id.as_str()).or_insert((0, 0, 0.0, c));
        e.0 += 1;
        e.1 += c.passed as u32;
        e.2 += c.score;
    }
    acc.into_iter()
        .map(|(id, (n, p, s, c))| (id, (p * 2 > n, s / n as f64, c)))
        .collect()
}

/// Compares `new` against `base`.
pub fn compare(
    base: &RunResults,
    new: &RunResults,
    config: GateConfig,
) -> Result<Comparison, CompareError> {
    if base.run.task != new.run.task {
        return Err(CompareError::OtherTask {
            base: base.run.task.clone(),
            new: new.run.task.clone(),
        });
    }
    if base.run.dataset != new.run.dataset {
        return Err(CompareError::OtherDataset {
            base: base.run.dataset.clone(),
            new: new.run.dataset.clone(),
        });
    }
    let (b, n) = (per_case(base), per_case(new));
    let mut ids: Vec<&str> = b.keys().filter(|id| n.contains_key(*id)).copied().collect();
    ids.sort_unstable();
    if ids.is_empty() {
        return Err(CompareError::NoPairs);
    }
    let mut only_base: Vec<String> = b
        .keys()
        .filter(|id| !n.contains_key(*id))
        .map(|s| s.to_string())
        .collect();
    let mut only_new: Vec<String> = n
        .keys()
        .filter(|id| !b.contains_key(*id))
        .map(|s| s.to_string())
        .collect();
    only_base.sort();
    only_new.sort();
    let (mut bp, mut np, mut reg, mut imp) = (0u64, 0u64, 0u64, 0u64);
    let mut diffs = Vec::with_capacity(ids.len());
    let mut flipped = Vec::new();
    for id in &ids {
        let (bpass, bscore, bc) = b[id];
        let (npass, nscore, nc) = n[id];
        bp += bpass as u64;
        np += npass as u64;
        diffs.push(nscore - bscore);
        if bpass != npass {
            if bpass {
                reg += 1;
            } else {
                imp += 1;
            }
            flipped.push(flip(id, bpass, bc, nc));
        }
    }
    flipped.sort_by(|a, b| b.regressed.cmp(&a.regressed).then_with(|| a.id.cmp(&b.id)));
    let paired = ids.len() as u64;
    let total = paired as f64;
    let delta_points = (np as f64 - bp as f64) / total * 100.0;
    let mcnemar_p = mcnemar_exact(reg, imp);
    let score_bootstrap = paired_bootstrap(&diffs, config.resamples, config.seed);
    let power = power(paired, (reg + imp) as f64 / total, &config);
    let (regression, verdict) = gate(&config, delta_points, mcnemar_p, score_bootstrap.as_ref());
    Ok(Comparison {
        config,
        task: new.run.task.clone(),
        dataset: new.run.dataset.clone(),
        dataset_changed: base.run.dataset_sha256 != new.run.dataset_sha256,
        paired,
        only_base,
        only_new,
        base_pass_rate: bp as f64 / total,
        new_pass_rate: np as f64 / total,
        delta_points,
        regressions: reg,
        improvements: imp,
        mcnemar_p,
        score_bootstrap,
        flipped,
        power,
        regression,
        verdict,
    })
}

fn flip(id: &str, base_passed: bool, bc: &CaseResult, nc: &CaseResult) -> Flip {
    let why = base_passed.then(|| {
        nc.scores
            .iter()
            .filter(|s| !s.passed)
            .map(|s| match &s.detail {
                Some(d) => format!("{}: {d}", s.name),
                None => s.name.clone(),
            })
            .chain(nc.error.clone())
            .collect::<Vec<_>>()
            .join("; ")
    });
    Flip {
        id: id.to_owned(),
        regressed: base_passed,
        inputs: nc.inputs.clone(),
        expected: nc.expected.clone(),
        base_got: bc.got.clone(),
        new_got: nc.got.clone(),
        why,
    }
}

fn power(paired: u64, observed_discordant: f64, config: &GateConfig) -> Power {
    let drop = config.power_drop_points / 100.0;
    let discordant = observed_discordant.max(drop).min(1.0);
    Power {
        cases: paired,
        drop_points: config.power_drop_points,
        power: mcnemar_power(paired, drop, discordant, config.alpha),
        discordant,
        min_detectable_points: min_detectable_drop(
            paired,
            observed_discordant.max(0.02),
            config.alpha,
            0.8,
        ),
    }
}

/// The gate: a regression only when a drop is significant and at least the minimum effect.
fn gate(
    config: &GateConfig,
    delta_points: f64,
    p: f64,
    boot: Option<&Bootstrap>,
) -> (bool, String) {
    let min = config.min_effect_points;
    let pass_drop = -delta_points;
    let pass_fails = pass_drop >= min && p < config.alpha;
    let score_drop = boot.map(|b| -b.mean * 100.0).unwrap_or(0.0);
    let score_fails =
        boot.is_some_and(|b| b.high < 0.0 && b.p_value < config.alpha) && score_drop >= min;
    let verdict = if pass_fails {
        format!(
            "regression: the pass rate dropped {pass_drop:.1} points (≥ {min} points) and the drop \
             is significant (McNemar p = {p:.4} < {})",
            config.alpha
        )
    } else if score_fails {
        format!(
            "regression: the mean score dropped {score_drop:.1} points (≥ {min} points), \
             significant by the paired bootstrap"
        )
    } else if pass_drop >= min {
        format!(
            "no regression: the pass rate dropped {pass_drop:.1} points, but not significantly (McNemar p = {p:.4})"
        )
    } else if pass_drop > 0.0 && p < config.alpha {
        format!(
            "no regression: a significant drop of {pass_drop:.1} points is below the minimum effect of {min} points"
        )
    } else if pass_drop > 0.0 {
        format!(
            "no regression: the pass rate dropped {pass_drop:.1} points, below the minimum effect and not significant (p = {p:.4})"
        )
    } else {
        format!(
            "no regression: the pass rate changed by {:+.1} points",
            -pass_drop
        )
    };
    (pass_fails || score_fails, verdict)
}

impl Comparison {
    /// The exit code for CI: [`EXIT_REGRESSION`] or [`EXIT_OK`].
    pub fn exit_code(&self) -> u8 {
        if self.regression {
            EXIT_REGRESSION
        } else {
            EXIT_OK
        }
    }
}
