//! The results of a run, as written to `RESULTS.json` (format `harness-eval-results`, version
//! [`RESULTS_VERSION`]; `docs/eval.md` documents every field), and the summary computed from
//! them: pass rate with a Wilson interval, per-field accuracy, confusion matrices for enum fields,
//! latency percentiles, tokens and cost, and the outcome mix — overall, by task and by tag.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::score::{Ending, Score};
use super::stats::{percentile, wilson};

/// The `format` every results file carries.
pub const RESULTS_FORMAT: &str = "harness-eval-results";
/// The layout version of results files. Readers refuse other versions.
pub const RESULTS_VERSION: u32 = 1;

/// What was run: the task, its contract, the dataset, the models.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The task's name.
    pub task: String,
    /// The task contract's version hash.
    pub contract_version: String,
    /// The dataset's name.
    pub dataset: String,
    /// SHA-256 of the dataset's source.
    pub dataset_sha256: String,
    /// Cases in the dataset.
    pub cases: usize,
    /// Runs per case.
    pub repeats: u32,
    /// The model the task asks for.
    pub model_requested: String,
    /// Enum fields of the output (confusion matrices are drawn for them) with their values.
    pub enum_fields: BTreeMap<String, Vec<String>>,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// A label for reports (`baseline`, a commit, a model name).
    #[serde(default)]
    pub label: String,
}

/// One field of the expected value, compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldResult {
    /// The expected value.
    pub expected: Value,
    /// The answer's value (absent when the call gave no answer or the field is missing).
    pub got: Option<Value>,
    /// Whether they are equal.
    pub ok: bool,
}

/// One run of one case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case's id.
    pub id: String,
    /// Which repeat (0-based).
    pub repeat: u32,
    /// The case's tags.
    pub tags: Vec<String>,
    /// The inputs.
    pub inputs: Value,
    /// The expected value.
    pub expected: Option<Value>,
    /// The model's accepted answer (answers only).
    pub got: Option<Value>,
    /// How the call ended.
    pub ending: Ending,
    /// The failure class or error kind behind a default, escalation or failure.
    pub class: Option<String>,
    /// Whether every scorer passed (false when unscored).
    pub passed: bool,
    /// The mean of the scores' values.
    pub score: f64,
    /// Every scorer's judgement.
    pub scores: Vec<Score>,
    /// Each expected field, compared.
    pub fields: BTreeMap<String, FieldResult>,
    /// Wall time of the call, in milliseconds.
    pub latency_ms: f64,
    /// Provider attempts made.
    pub attempts: u32,
    /// Input tokens over all attempts.
    pub input_tokens: u64,
    /// Output tokens over all attempts.
    pub output_tokens: u64,
    /// Cost over all attempts, when prices are known.
    pub cost_usd: Option<f64>,
    /// The model that answered, as the provider reported it.
    pub model_answered: Option<String>,
    /// Why the call did not end in an answer, or why the case could not be scored.
    pub error: Option<String>,
    /// A scorer (a judge) could not score: the case is left out of pass rates and counted.
    #[serde(default)]
    pub unscored: bool,
}

/// A complete results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// Always [`RESULTS_FORMAT`].
    pub format: String,
    /// Always [`RESULTS_VERSION`] when written by this release.
    pub version: u32,
    /// What was run.
    pub run: RunInfo,
    /// Every case run, in dataset order then repeat.
    pub cases: Vec<CaseResult>,
    /// The summary of `cases`.
    pub summary: Summary,
}

/// Why a results file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not JSON of the results layout.
    #[error("{path}: not a results file: {message}")]
    Format {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
}

impl RunResults {
    /// Builds results (and their summary) from a run's cases.
    pub fn new(run: RunInfo, cases: Vec<CaseResult>) -> RunResults {
        let summary = Summary::of(&run, &cases);
        RunResults {
            format: RESULTS_FORMAT.into(),
            version: RESULTS_VERSION,
            run,
            cases,
            summary,
        }
    }

    /// Reads a results file, refusing another format or version.
    pub fn read(path: impl AsRef<Path>) -> Result<RunResults, ResultsError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
            path: shown.clone(),
            source,
        })?;
        let format_err = |message: String| ResultsError::Format {
            path: shown.clone(),
            message,
        };
        let head: Value = serde_json::from_str(&text).map_err(|e| format_err(e.to_string()))?;
        let (format, version) = (head.get("format"), head.get("version"));
        if format.and_then(Value::as_str) != Some(RESULTS_FORMAT) {
            return Err(format_err(format!("`format` is not \"{RESULTS_FORMAT}\"")));
        }
        if version.and_then(Value::as_u64) != Some(RESULTS_VERSION as u64) {
            return Err(format_err(format!(
                "`version` is {}, this release reads version {RESULTS_VERSION}",
                version
                    .map(Value::to_string)
                    .unwrap_or_else(|| "missing".into())
            )));
        }
        serde_json::from_value(head).map_err(|e| format_err(e.to_string()))
    }

    /// Writes the results as pretty JSON, atomically (a temporary file renamed over `path`).
    pub fn write(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let path = path.as_ref();
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
    /// Slowest.
    pub max: f64,
}

/// Accuracy of one field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldAccuracy {
    /// Cases that expect the field.
    pub n: u64,
    /// Cases where the answer's value equals it.
    pub correct: u64,
    /// `correct / n`.
    pub accuracy: f64,
}

/// A confusion matrix of an enum field: `counts[expected][got]`, the last column for "no answer".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    /// The enum's values, in schema order (rows and the first columns).
    pub labels: Vec<String>,
    /// Row = expected label, column = answered label; column `labels.len()` counts cases with
    /// no answer (or a value outside the enum).
    pub counts: Vec<Vec<u64>>,
}

/// The statistics of a group of case runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Scored case runs.
    pub n: u64,
    /// Of which passed.
    pub passed: u64,
    /// `passed / n`.
    pub pass_rate: f64,
    /// Wilson 95% interval of the pass rate: `[low, high]`.
    pub ci95: [f64; 2],
    /// The mean score.
    pub mean_score: f64,
    /// Case runs that could not be scored (a judge failed); not in `n`.
    pub unscored: u64,
    /// Accuracy of each expected field.
    pub fields: BTreeMap<String, FieldAccuracy>,
    /// Confusion matrices of enum fields.
    pub confusion: BTreeMap<String, Confusion>,
    /// Latency of the calls.
    pub latency_ms: Latency,
    /// Input tokens, failed attempts included.
    pub input_tokens: u64,
    /// Output tokens, failed attempts included.
    pub output_tokens: u64,
    /// Cost of the calls whose cost is known, failed attempts included.
    pub cost_usd: f64,
    /// Case runs whose cost is unknown (no price for the model).
    pub cost_unknown: u64,
    /// How the calls ended: ending → count.
    pub outcomes: BTreeMap<String, u64>,
}

/// The summary of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// All case runs.
    pub overall: Stats,
    /// By task (one entry per task in the results).
    pub by_task: BTreeMap<String, Stats>,
    /// By tag.
    pub by_tag: BTreeMap<String, Stats>,
    /// Cases whose repeats disagree (some passed, some not).
    pub flaky: Vec<String>,
}

impl Summary {
    /// Computes the summary of `cases`.
    pub fn of(run: &RunInfo, cases: &[CaseResult]) -> Summary {
        let all: Vec<&CaseResult> = cases.iter().collect();
        let overall = Stats::of(&all, &run.enum_fields);
        let mut by_tag: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
        for c in cases {
            for t in &c.tags {
                by_tag.entry(t.as_str()).or_default().push(c);
            }
        }
        let by_tag = by_tag
            .into_iter()
            .map(|(t, cs)| (t.to_owned(), Stats::of(&cs, &run.enum_fields)))
            .collect();
        let mut repeats: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        for c in cases.iter().filter(|c| !c.unscored) {
            let e = repeats.entry(c.id.as_str()).or_default();
            e.0 += 1;
            e.1 += c.passed as u32;
        }
        let flaky = repeats
            .into_iter()
            .filter(|(_, (n, p))| *p > 0 && p < n)
            .map(|(id, _)| id.to_owned())
            .collect();
        Summary {
            by_task: BTreeMap::from([(run.task.clone(), overall.clone())]),
            overall,
            by_tag,
            flaky,
        }
    }
}

impl Stats {
    /// The statistics of `cases`; `enums` names the enum fields and their values.
    pub fn of(cases: &[&CaseResult], enums: &BTreeMap<String, Vec<String>>) -> Stats {
        let mut s = Stats::default();
        let mut latencies = Vec::with_capacity(cases.len());
        let mut score_sum = 0.0;
        let mut endings = [0u64; Ending::ALL.len()];
        for c in cases {
            latencies.push(c.latency_ms);
            s.input_tokens += c.input_tokens;
            s.output_tokens += c.output_tokens;
            match c.cost_usd {
                Some(x) => s.cost_usd += x,
                None => s.cost_unknown += 1,
            }
            if let Some(k) = Ending::ALL.iter().position(|e| *e == c.ending) {
                endings[k] += 1;
            }
            if c.unscored {
                s.unscored += 1;
                continue;
            }
            s.n += 1;
            s.passed += c.passed as u64;
            score_sum += c.score;
            for (name, f) in &c.fields {
                let a = match s.fields.get_mut(name) {
                    Some(a) => a,
                    None => s.fields.entry(name.clone()).or_default(),
                };
                a.n += 1;
                a.correct += f.ok as u64;
            }
        }
        s.outcomes = Ending::ALL
            .iter()
            .zip(endings)
            .filter(|(_, n)| *n > 0)
            .map(|(e, n)| (e.as_str().to_owned(), n))
            .collect();
        for a in s.fields.values_mut() {
            a.accuracy = a.correct as f64 / a.n.max(1) as f64;
        }
        if s.n > 0 {
            s.pass_rate = s.passed as f64 / s.n as f64;
            s.mean_score = score_sum / s.n as f64;
        }
        let (lo, hi) = wilson(s.passed, s.n);
        s.ci95 = [lo, hi];
        s.latency_ms = latency(latencies);
        s.confusion = confusion(cases, enums);
        s
    }
}

fn latency(mut v: Vec<f64>) -> Latency {
    if v.is_empty() {
        return Latency::default();
    }
    v.sort_by(f64::total_cmp);
    let q = |p| percentile(&v, p).unwrap_or(0.0);
    Latency {
        p50: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
        mean: v.iter().sum::<f64>() / v.len() as f64,
        max: v[v.len() - 1],
    }
}

fn confusion(
    cases: &[&CaseResult],
    enums: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, Confusion> {
    let mut out = BTreeMap::new();
    for (field, labels) in enums {
        let k = labels.len();
        let mut counts = vec![vec![0u64; k + 1]; k];
        let mut any = false;
        for c in cases.iter().filter(|c| !c.unscored) {
            let Some(f) = c.fields.get(field) else {
                continue;
            };
            let Some(row) = f
                .expected
                .as_str()
                .and_then(|e| labels.iter().position(|l| l == e))
            else {
                continue;
            };
            let col = f
                .got
                .as_ref()
                .and_then(Value::as_str)
                .and_then(|g| labels.iter().position(|l| l == g))
                .unwrap_or(k);
            counts[row][col] += 1;
            any = true;
        }
        if any {
            out.insert(
                field.clone(),
                Confusion {
                    labels: labels.clone(),
                    counts,
                },
            );
        }
    }
    out
}
