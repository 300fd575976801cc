//! Failed exports, said once: what failed (spans or metrics), where (the URL, without
//! credentials or query), and why (the HTTP status, or the connection error), with a hint when
//! the cause is a common misconfiguration. The exporters retry every batch; a receiver that keeps
//! refusing would otherwise be reported per batch, or, as the SDK does, not at all.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::config::{METRICS_PATH, TRACES_PATH};

/// Which telemetry an export carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// Spans, to `/v1/traces`.
    Spans,
    /// Metrics, to `/v1/metrics`.
    Metrics,
}

impl Signal {
    /// `spans` or `metrics`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::Spans => "spans",
            Signal::Metrics => "metrics",
        }
    }

    const fn path(self) -> &'static str {
        match self {
            Signal::Spans => TRACES_PATH,
            Signal::Metrics => METRICS_PATH,
        }
    }
}

/// Why an export failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// The receiver answered with this non-success HTTP status.
    Status(u16),
    /// No HTTP answer: the connection failed or timed out (the error, without the URL).
    Transport(String),
}

/// One failed export, as the handler given to
/// [`OtlpBuilder::on_export_error`](super::OtlpBuilder::on_export_error) sees it. Its `Display`
/// is the line harness prints by default.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportFailure {
    /// Spans or metrics.
    pub signal: Signal,
    /// Where they were sent, without user info or query string.
    pub url: String,
    /// Why it failed.
    pub cause: Cause,
}

impl ExportFailure {
    /// The HTTP status, when the receiver answered.
    pub fn status(&self) -> Option<u16> {
        match self.cause {
            Cause::Status(s) => Some(s),
            Cause::Transport(_) => None,
        }
    }

    fn hint(&self) -> Option<String> {
        let path = self.signal.path();
        match &self.cause {
            Cause::Status(404 | 405) if !self.url.ends_with(path) || self.url.contains(&format!("{path}{path}")) => Some(format!(
                "the path looks wrong: OTEL_EXPORTER_OTLP_ENDPOINT takes the base URL (http://host:4318), \
                 OTEL_EXPORTER_OTLP_{}_ENDPOINT the full one (…{path})",
                match self.signal {
                    Signal::Spans => "TRACES",
                    Signal::Metrics => "METRICS",
                }
            )),
            Cause::Status(404 | 405) if self.signal == Signal::Metrics => Some(
                "this receiver may not take metrics: turn them off with OTEL_METRICS_EXPORTER=none"
                    .to_owned(),
            ),
            Cause::Status(401 | 403) => Some(
                "the receiver wants credentials: set them with OTEL_EXPORTER_OTLP_HEADERS (or the builder's header())"
                    .to_owned(),
            ),
            Cause::Status(415) => Some("the receiver does not take OTLP protobuf over HTTP".to_owned()),
            Cause::Transport(e) if e.contains("refused") => {
                Some("is a collector listening there?".to_owned())
            }
            _ => None,
        }
    }
}

impl ExportFailure {
    /// `spans to http://host:4318/v1/traces: HTTP 405 Method Not Allowed`.
    pub fn summary(&self) -> String {
        let cause = match &self.cause {
            Cause::Status(s) => match reqwest::StatusCode::from_u16(*s)
                .ok()
                .and_then(|c| c.canonical_reason())
            {
                Some(reason) => format!("HTTP {s} {reason}"),
                None => format!("HTTP {s}"),
            },
            Cause::Transport(e) => e.clone(),
        };
        format!("{} to {}: {cause}", self.signal.as_str(), self.url)
    }
}

impl fmt::Display for ExportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "harness: OTLP export failed: {}", self.summary())?;
        if let Some(hint) = self.hint() {
            write!(f, " ({hint})")?;
        }
        f.write_str("; later failures like this one are not printed")
    }
}

/// What is done with the first failure of each kind.
pub(super) type Handler = Arc<dyn Fn(&ExportFailure) + Send + Sync>;

/// The default handler: one line on standard error.
pub(super) fn print_to_stderr() -> Handler {
    Arc::new(|failure: &ExportFailure| eprintln!("{failure}"))
}

/// Remembers which failures were reported, so each is said once, and the last one of each
/// signal, for the error `shutdown` returns.
pub(super) struct Reporter {
    handler: Handler,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// (host and port, cause): a closed port fails spans and metrics alike, and is said once.
    said: HashSet<(String, Cause)>,
    last: Vec<ExportFailure>,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

impl Reporter {
    pub(super) fn new(handler: Handler) -> Arc<Self> {
        Arc::new(Reporter {
            handler,
            state: Mutex::default(),
        })
    }

    /// Records a failure, and hands it to the handler if nothing like it was said before.
    pub(super) fn failed(&self, signal: Signal, url: &reqwest::Url, cause: Cause) {
        let failure = ExportFailure {
            signal,
            url: display_url(url),
            cause,
        };
        let origin = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        let first = {
            let mut state = self.lock();
            state.last.retain(|f| f.signal != signal);
            state.last.push(failure.clone());
            state.said.insert((origin, failure.cause.clone()))
        };
        if first {
            (self.handler)(&failure);
        }
    }

    /// The last failure of each signal since the start.
    pub(super) fn failures(&self) -> Vec<ExportFailure> {
        self.lock().last.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The URL without user info, query or fragment: those are where credentials hide.
pub(super) fn display_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// A transport error as one short phrase, without the URL (which the line says already): the
/// innermost cause is the useful part (`Connection refused (os error 111)`).
pub(super) fn transport_cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    let mut innermost: &dyn std::error::Error = e;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    let what = if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let detail = innermost.to_string();
    if detail.is_empty() || std::ptr::addr_eq(innermost, e) {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn each_failure_is_said_once_and_a_closed_port_once_for_both_signals() {
        let said = Arc::new(Mutex::new(Vec::new()));
        let sink = said.clone();
        let reporter = Reporter::new(Arc::new(move |f: &ExportFailure| {
            sink.lock().unwrap().push(f.to_string())
        }));
        let refused = Cause::Transport("could not connect: Connection refused".into());
        for _ in 0..5 {
            reporter.failed(
                Signal::Spans,
                &url("http://127.0.0.1:1/v1/traces"),
                refused.clone(),
            );
            reporter.failed(
                Signal::Metrics,
                &url("http://127.0.0.1:1/v1/metrics"),
                refused.clone(),
            );
        }
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("spans to http://127.0.0.1:1/v1/traces: could not connect"),
            "{}",
            said[0]
        );
        assert!(said[0].contains("Connection refused") && said[0].contains("listening"));
        assert_eq!(reporter.failures().len(), 2);
    }

    #[test]
    fn a_doubled_path_and_a_refused_signal_get_their_hints() {
        let doubled = ExportFailure {
            signal: Signal::Spans,
            url: "http://localhost:6006/v1/traces/v1/traces".into(),
            cause: Cause::Status(405),
        };
        let line = doubled.to_string();
        assert!(line.contains("HTTP 405 Method Not Allowed"), "{line}");
        assert!(
            line.contains("OTEL_EXPORTER_OTLP_ENDPOINT takes the base URL"),
            "{line}"
        );
        let metrics = ExportFailure {
            signal: Signal::Metrics,
            url: "http://localhost:6006/v1/metrics".into(),
            cause: Cause::Status(404),
        };
        assert!(metrics.to_string().contains("OTEL_METRICS_EXPORTER=none"));
        let auth = ExportFailure {
            signal: Signal::Spans,
            url: "https://cloud.example/api/public/otel/v1/traces".into(),
            cause: Cause::Status(401),
        };
        assert!(auth.to_string().contains("OTEL_EXPORTER_OTLP_HEADERS"));
    }

    #[test]
    fn credentials_in_the_url_are_not_shown() {
        let shown = display_url(&url("https://user:pw@host:4318/v1/traces?api_key=sk-1#x"));
        assert_eq!(shown, "https://host:4318/v1/traces");
    }
}
