//! The runner: every case of a dataset through a task on any harness (a local model, an
//! endpoint, the replay provider), with a concurrency limit, repeats, a progress bar on a
//! terminal (feature `progress`), and results appended to `OUT.partial` as they come, so a killed
//! run started again with the same `out` resumes where it stopped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use serde_json::Value;

use crate::engine::Harness;
use crate::outcome::{ErrorKind, Resolution, TaskResult};
use crate::output::SchemaValidator;
use crate::output::parse::{ParseLimits, parse};

use crate::eval::EvalTask;
use crate::eval::dataset::{Case, Dataset};
use crate::eval::judge::AsyncScorer;
use crate::eval::results::{CaseResult, FieldResult, RunInfo, RunResults};
use crate::eval::score::{Ending, Observation, Scorer, at, json_eq};

mod sink;
use sink::{JoinAll, Sink, open_partial};

/// Why a run could not be completed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The harness cannot run the task (no provider for the model, a missing key): every case
    /// would fail the same way.
    #[error("the harness cannot run `{task}`: {message}")]
    Config {
        /// The task.
        task: String,
        /// The configuration error.
        message: String,
    },
    /// The results file or its partial file could not be written or read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A partial file from another run (task, contract, dataset or repeats differ) is in the way.
    #[error(
        "{path} holds a partial run of another evaluation ({what} differs): remove it to start over"
    )]
    Mismatch {
        /// The partial file.
        path: PathBuf,
        /// What differs.
        what: &'static str,
    },
}

/// Runs datasets through tasks. Configure it, then [`Runner::run`].
#[derive(Clone)]
pub struct Runner {
    concurrency: usize,
    repeats: u32,
    progress: bool,
    out: Option<PathBuf>,
    label: String,
    scorers: Vec<Arc<dyn Scorer>>,
    judges: Vec<Arc<dyn AsyncScorer>>,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("concurrency", &self.concurrency)
            .field("repeats", &self.repeats)
            .field("out", &self.out)
            .field(
                "scorers",
                &self.scorers.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Four cases at a time, one run each, a progress bar when stderr is a terminal, no file,
    /// and no scorer (add some: a case with no scorer and no assertion fails).
    pub fn new() -> Self {
        Runner {
            concurrency: 4,
            repeats: 1,
            progress: true,
            out: None,
            label: String::new(),
            scorers: Vec::new(),
            judges: Vec::new(),
        }
    }

    /// At most `n` calls at a time (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Runs each case `n` times (at least 1).
    pub fn repeats(mut self, n: u32) -> Self {
        self.repeats = n.max(1);
        self
    }

    /// Whether to draw a progress bar when stderr is a terminal (on by default).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Writes the results to `path` at the end, and each case's result to `path.partial` as it
    /// comes; a run started again with the same `path` skips the cases already there.
    pub fn out(mut self, path: impl Into<PathBuf>) -> Self {
        self.out = Some(path.into());
        self
    }

    /// A label for reports.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Adds a scorer; a case passes when every scorer and assertion passes.
    pub fn scorer(mut self, scorer: Arc<dyn Scorer>) -> Self {
        self.scorers.push(scorer);
        self
    }

    /// Adds an asynchronous scorer (an LLM judge).
    pub fn judge(mut self, judge: Arc<dyn AsyncScorer>) -> Self {
        self.judges.push(judge);
        self
    }

    /// The partial file next to `out`.
    pub fn partial_path(out: &Path) -> PathBuf {
        let mut p = out.as_os_str().to_owned();
        p.push(".partial");
        PathBuf::from(p)
    }

    /// Runs every case of `dataset` through `task` on `harness`.
    pub async fn run<T: EvalTask>(
        &self,
        harness: &Harness,
        task: &T,
        dataset: &Dataset<T::Input>,
    ) -> Result<RunResults, RunError> {
        let info = self.info::<T>(dataset);
        let (done, file) = match &self.out {
            Some(out) => {
                let (done, file) = open_partial(&Self::partial_path(out), &info)?;
                (done, Some(file))
            }
            None => (HashMap::new(), None),
        };
        let work: Vec<(usize, u32)> = (0..dataset.cases.len())
            .flat_map(|i| (0..self.repeats).map(move |r| (i, r)))
            .filter(|(i, r)| !done.contains_key(&(dataset.cases[*i].id.clone(), *r)))
            .collect();
        let sink = Sink::new(file, work.len(), self.progress);
        let next = AtomicUsize::new(0);
        let schema = SchemaValidator::for_type::<T::Output>();
        let worker = || async {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(i, r)) = work.get(k) else { break };
                let case = &dataset.cases[i];
                let result = task.call(harness, &case.input).await;
                if let Err(e) = &result
                    && e.kind() == ErrorKind::Config
                {
                    sink.fail(e.message());
                    break;
                }
                let mut row = self.case_result(case, r, result, &schema, &info);
                self.judge_case(&mut row).await;
                sink.push(row);
                if sink.failed() {
                    break;
                }
            }
        };
        let workers: Vec<_> = (0..self.concurrency.min(work.len().max(1)))
            .map(|_| Box::pin(worker()))
            .collect();
        JoinAll(workers).await;
        let (mut rows, error) = sink.finish();
        if let Some(message) = error {
            return Err(RunError::Config {
                task: info.task,
                message,
            });
        }
        rows.extend(done.into_values());
        let order: HashMap<&str, usize> = dataset
            .cases
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.as_str(), i))
            .collect();
        rows.sort_by_key(|c| (order.get(c.id.as_str()).copied(), c.repeat));
        let results = RunResults::new(info, rows);
        if let Some(out) = &self.out {
            results.write(out).map_err(|e| io_error(out, e))?;
            let _ = std::fs::remove_file(Self::partial_path(out));
        }
        Ok(results)
    }

    fn info<T: EvalTask>(&self, dataset: &Dataset<T::Input>) -> RunInfo {
        let contract = T::contract();
        let schema = <T::Output as crate::output::LlmOutput>::output_schema();
        RunInfo {
            task: contract.name.to_owned(),
            contract_version: contract.version.to_owned(),
            dataset: dataset.name.clone(),
            dataset_sha256: dataset.sha256.clone(),
            cases: dataset.cases.len(),
            repeats: self.repeats,
            model_requested: contract.model.unwrap_or_default().to_owned(),
            enum_fields: enum_fields(&schema),
            started_at: crate::audit::rfc3339(SystemTime::now()),
            label: self.label.clone(),
        }
    }

    /// One result row: the call's ending and answer, the fields, the synchronous scores.
    fn case_result<I, O>(
        &self,
        case: &Case<I>,
        repeat: u32,
        result: TaskResult<O>,
        schema: &SchemaValidator,
        info: &RunInfo,
    ) -> CaseResult {
        let _ = info;
        let (report, ending, class, error) = match &result {
            Ok(o) => {
                let (ending, class, error) = match &o.resolution {
                    Resolution::Answer(_) => (answer_ending(&o.provenance), None, None),
                    Resolution::Default { class, .. } => {
                        (Ending::Default, Some(class.as_str().to_owned()), None)
                    }
                    Resolution::Escalated(e) => (
                        Ending::Escalated,
                        Some(e.class.as_str().to_owned()),
                        Some(e.reason.clone()),
                    ),
                };
                (&o.report, ending, class, error)
            }
            Err(e) => (
                e.report(),
                Ending::Failed,
                Some(e.kind().as_str().to_owned()),
                Some(e.message().to_owned()),
            ),
        };
        let got = if ending.is_answer() {
            report
                .attempts
                .iter()
                .rev()
                .find(|a| a.failure.is_none())
                .and_then(|a| a.raw.as_deref())
                .and_then(|raw| parse(raw, schema, &ParseLimits::default()).ok())
                .map(|p| p.value)
        } else {
            None
        };
        let obs = Observation {
            id: &case.id,
            inputs: &case.inputs_json,
            expected: case.expected.as_ref(),
            got: got.as_ref(),
            ending,
            latency: report.elapsed,
            usage: report.usage,
            cost_usd: report.cost_usd,
        };
        let mut scores: Vec<_> = self.scorers.iter().map(|s| s.score(&obs)).collect();
        scores.extend(case.assertions.iter().map(|a| a.score(&obs)));
        let fields = compare_fields(case.expected.as_ref(), got.as_ref());
        CaseResult {
            id: case.id.clone(),
            repeat,
            tags: case.tags.clone(),
            inputs: case.inputs_json.clone(),
            expected: case.expected.clone(),
            got,
            ending,
            class,
            passed: false,
            score: 0.0,
            scores,
            fields,
            latency_ms: report.elapsed.as_secs_f64() * 1000.0,
            attempts: report.attempts.len() as u32,
            input_tokens: report.usage.input_tokens,
            output_tokens: report.usage.output_tokens,
            cost_usd: report.cost_usd,
            model_answered: report
                .attempts
                .iter()
                .rev()
                .find_map(|a| a.response_model.clone()),
            error,
            unscored: false,
        }
    }

    /// Runs the judges, then settles `passed`, `score` and `unscored`.
    async fn judge_case(&self, row: &mut CaseResult) {
        for judge in &self.judges {
            let obs = Observation {
                id: &row.id,
                inputs: &row.inputs,
                expected: row.expected.as_ref(),
                got: row.got.as_ref(),
                ending: row.ending,
                latency: std::time::Duration::from_secs_f64(row.latency_ms / 1000.0),
                usage: crate::provider::Usage::new(row.input_tokens, row.output_tokens),
                cost_usd: row.cost_usd,
            };
            let score = judge.score(&obs).await;
            row.scores.push(score);
        }
        settle(row);
    }
}

/// Sets `passed`, `score` and `unscored` from the scores.
pub(crate) fn settle(row: &mut CaseResult) {
    if let Some(e) = row.scores.iter().find_map(|s| s.error.as_ref()) {
        row.unscored = true;
        row.error = Some(format!("could not be scored: {e}"));
    }
    row.passed = !row.unscored && !row.scores.is_empty() && row.scores.iter().all(|s| s.passed);
    let n = row.scores.len().max(1) as f64;
    row.score = row.scores.iter().map(|s| s.value).sum::<f64>() / n;
}

fn answer_ending(p: &crate::outcome::Provenance) -> Ending {
    if p.fallback {
        Ending::Fallback
    } else if p.reasks > 0 {
        Ending::Reasked
    } else if p.retries > 0 {
        Ending::Retried
    } else if p.repaired {
        Ending::Repaired
    } else {
        Ending::Answer
    }
}

fn compare_fields(expected: Option<&Value>, got: Option<&Value>) -> BTreeMap<String, FieldResult> {
    let Some(Value::Object(m)) = expected else {
        return BTreeMap::new();
    };
    m.iter()
        .map(|(k, e)| {
            let g = got.and_then(|g| at(g, k)).cloned();
            let ok = g.as_ref().is_some_and(|g| json_eq(e, g));
            (
                k.clone(),
                FieldResult {
                    expected: e.clone(),
                    got: g,
                    ok,
                },
            )
        })
        .collect()
}

/// The top-level fields of `schema` whose values are a string enum, with the values.
pub fn enum_fields(schema: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    for (name, prop) in props {
        let resolved = resolve(schema, prop);
        let values = resolved
            .get("enum")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .or_else(|| {
                let one_of = resolved.get("oneOf").and_then(Value::as_array)?;
                one_of
                    .iter()
                    .map(|v| {
                        let v = resolve(schema, v);
                        v.get("const")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .or_else(|| {
                                let e = v.get("enum")?.as_array()?;
                                (e.len() == 1).then(|| e[0].as_str().map(str::to_owned))?
                            })
                    })
                    .collect::<Option<Vec<_>>>()
            });
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            out.insert(name.clone(), values);
        }
    }
    out
}

/// Follows a local `$ref` (`#/$defs/Label`), and an `allOf` of one.
fn resolve<'s>(root: &'s Value, node: &'s Value) -> &'s Value {
    let mut node = node;
    for _ in 0..8 {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(target) => node = target,
                None => return node,
            }
        } else if let Some([one]) = node
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            node = one;
        } else {
            return node;
        }
    }
    node
}

pub(super) fn io_error(path: &Path, e: impl std::fmt::Display) -> RunError {
    RunError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    }
}
