//! Where a run's results go as they come: the partial file (opened, checked against the run,
//! cleaned of a torn tail, appended to), the progress bar, and the join of the workers.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use super::{RunError, io_error};
use crate::eval::results::{CaseResult, RunInfo};

pub(super) type Done = HashMap<(String, u32), CaseResult>;

/// Opens (or starts) the partial file: the rows of the run it holds, if it is this run's, and
/// the file ready for appending. A torn last line (a killed write) is dropped.
pub(super) fn open_partial(path: &Path, info: &RunInfo) -> Result<(Done, File), RunError> {
    let mut done = HashMap::new();
    if let Ok(f) = File::open(path) {
        let mut lines = BufReader::new(f).lines();
        let header: Option<RunInfo> = lines
            .next()
            .and_then(Result::ok)
            .and_then(|l| serde_json::from_str(&l).ok());
        if let Some(h) = header {
            let what = if h.task != info.task {
                Some("the task")
            } else if h.contract_version != info.contract_version {
                Some("the contract version")
            } else if h.dataset_sha256 != info.dataset_sha256 {
                Some("the dataset")
            } else if h.repeats != info.repeats {
                Some("the repeats")
            } else {
                None
            };
            if let Some(what) = what {
                return Err(RunError::Mismatch {
                    path: path.to_owned(),
                    what,
                });
            }
            for line in lines.map_while(Result::ok) {
                if let Ok(row) = serde_json::from_str::<CaseResult>(&line) {
                    done.insert((row.id.clone(), row.repeat), row);
                }
            }
        }
    }
    // Rewrite what is kept (without a torn tail), then append from there.
    let tmp = path.with_extension("partial.tmp");
    let mut text = serde_json::to_string(info).map_err(|e| io_error(path, e))?;
    text.push('\n');
    for row in done.values() {
        text.push_str(&serde_json::to_string(row).map_err(|e| io_error(path, e))?);
        text.push('\n');
    }
    std::fs::write(&tmp, text).map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))?;
    let file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    Ok((done, file))
}

/// Where results go as they come: memory, the partial file, the progress bar.
pub(super) struct Sink {
    state: Mutex<SinkState>,
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
}

struct SinkState {
    rows: Vec<CaseResult>,
    file: Option<File>,
    line: Vec<u8>,
    error: Option<String>,
    passed: usize,
}

impl Sink {
    pub(super) fn new(file: Option<File>, total: usize, progress: bool) -> Sink {
        #[cfg(not(feature = "progress"))]
        let _ = (progress, total);
        Sink {
            state: Mutex::new(SinkState {
                rows: Vec::with_capacity(total),
                file,
                line: Vec::with_capacity(1024),
                error: None,
                passed: 0,
            }),
            #[cfg(feature = "progress")]
            bar: (progress && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
                let bar = indicatif::ProgressBar::new(total as u64);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} cases, {msg} [{elapsed_precise}, eta {eta}]",
                ) {
                    bar.set_style(style);
                }
                bar
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn push(&self, row: CaseResult) {
        let mut s = self.lock();
        s.passed += row.passed as usize;
        if s.file.is_some() {
            let SinkState {
                line, file, error, ..
            } = &mut *s;
            line.clear();
            let written = serde_json::to_writer(&mut *line, &row)
                .map_err(std::io::Error::other)
                .and_then(|()| {
                    line.push(b'\n');
                    file.as_mut().map_or(Ok(()), |f| f.write_all(line))
                });
            if let Err(e) = written {
                *error = Some(format!("cannot append to the partial results: {e}"));
            }
        }
        s.rows.push(row);
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} passed", s.passed));
            bar.inc(1);
        }
    }

    pub(super) fn fail(&self, message: &str) {
        let mut s = self.lock();
        if s.error.is_none() {
            s.error = Some(message.to_owned());
        }
    }

    pub(super) fn failed(&self) -> bool {
        self.lock().error.is_some()
    }

    pub(super) fn finish(self) -> (Vec<CaseResult>, Option<String>) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let s = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        (s.rows, s.error)
    }
}

/// Polls a few futures to completion (the runner's workers; no `futures` dependency).
pub(super) struct JoinAll<F>(pub(super) Vec<Pin<Box<F>>>);

impl<F: Future<Output = ()>> Future for JoinAll<F> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if self.0.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
