//! What a real collector receives: Rotel (PyPI `rotel`, an OpenTelemetry collector in one binary)
//! on a free 127.0.0.1 port prints every span and metric it gets (its debug exporter, detailed),
//! and this test reads that print-out.
//!
//! A child process (this test binary, running [`exporting_child`]) does what a user's program
//! does: `otlp::from_env().install()`, configured only by `OTEL_*` variables, then a retried call,
//! a failed call and an answered call against the chaos server over HTTP. It runs twice, once with
//! the base endpoint and no `RUST_LOG`, once with the signal endpoints and `RUST_LOG=warn`, and
//! a third time against a wrong path, where it must say so in one line.
//!
//! Rotel is found at `HARNESS_ROTEL` (the binary's path; `.ci/run` sets it) or in the `rotel`
//! Python package. Without it the test fails when `CI=true` or `HARNESS_ROTEL` is set, and is
//! skipped (saying so) otherwise.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness_core::contract::{Action, Backoff, TaskContract};
use harness_core::provider::OpenAiCompatible;
use harness_core::telemetry::{names, otlp};
use harness_core::testing::fixtures::{ContractBuilder, Label, chain, output, retry};
use harness_core::testing::{ChaosServer, Fault, Reply};
use harness_core::{FailureClass, Harness};

const FAST: Backoff = Backoff {
    initial: Duration::from_millis(1),
    max: Duration::from_millis(5),
    multiplier: 2.0,
    jitter: false,
};

static CLASSIFY: TaskContract = ContractBuilder::new("classify", output::<Label>())
    .module("tests::rotel")
    .description("Classifies a review.")
    .version("v1")
    .model(Some("smollm2-135m"))
    .system("You classify reviews.")
    .prompt("Review: {review}")
    .chains(&[
        chain(FailureClass::ProviderError, &[retry(1, FAST), Action::Fail]),
        chain(FailureClass::InvalidOutput, &[Action::Fail]),
    ])
    .params(Some(0.0), Some(64), None)
    .build();

/// Words of the prompt and of the invalid answer: they must not reach the collector.
const PROMPT_WORDS: &str = "kettle-whistles-loudly";
const INVALID_LABEL: &str = "greatish";

// ---------------------------------------------------------------------------------------------
// The child: a user's program, configured by the environment.

/// Runs only as the child of [`rotel_receives_what_backends_read`] (`HARNESS_ROTEL_CHILD=1`).
#[test]
#[ignore = "the child process of rotel_receives_what_backends_read"]
fn exporting_child() {
    if std::env::var_os("HARNESS_ROTEL_CHILD").is_none() {
        eprintln!("exporting_child runs as the child of rotel_receives_what_backends_read");
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let good = || Reply::json_content(r#"{"label":"positive"}"#).with_usage(100, 26);
        let server = ChaosServer::builder()
            .script([
                Reply::fault(Fault::Http503),
                good(),
                Reply::json_content(format!(r#"{{"label":"{INVALID_LABEL}"}}"#)).with_usage(90, 10),
                good(),
            ])
            .start()
            .await
            .unwrap();
        let guard = otlp::from_env().install().expect("the pipeline starts");
        let provider = OpenAiCompatible::builder(server.base_url())
            .build()
            .unwrap();
        let harness = Harness::builder()
            .provider("openai", provider)
            .observer(guard.metrics())
            .build()
            .unwrap();
        for _ in 0..3 {
            let inputs = vec![("review", PROMPT_WORDS.to_owned())];
            let ended = harness.run::<Label>(&CLASSIFY, inputs, None, None).await;
            println!(
                "call: {}",
                ended.map(|o| o.summary()).unwrap_or_else(|e| e.to_string())
            );
        }
        match guard.shutdown() {
            Ok(()) => println!("shutdown: ok"),
            Err(e) => println!("shutdown: {e}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Rotel.

fn rotel_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HARNESS_ROTEL") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let located = Command::new("python3")
        .args([
            "-c",
            "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&located.stdout).trim());
    (located.status.success() && path.is_file()).then_some(path)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Rotel process printing what it receives to `dump`; killed when dropped.
struct Rotel {
    child: Child,
    port: u16,
    dump: PathBuf,
}

impl Rotel {
    fn start(binary: &Path, dir: &Path, name: &str) -> Rotel {
        let (port, grpc) = (free_port(), free_port());
        let dump = dir.join(format!("{name}.txt"));
        let out = std::fs::File::create(&dump).unwrap();
        let child = Command::new(binary)
            .arg("start")
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{port}")])
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
            .args(["--exporter", "blackhole", "--disable-batching"])
            .args(["--debug-log", "traces", "--debug-log", "metrics"])
            .args(["--debug-log-verbosity", "detailed"])
            .arg("--pid-file")
            .arg(dir.join(format!("{name}.pid")))
            .arg("--log-file")
            .arg(dir.join(format!("{name}.log")))
            .env("NO_COLOR", "1")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("Rotel starts");
        let rotel = Rotel { child, port, dump };
        let until = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "Rotel did not listen on {port}: {}",
                rotel.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        rotel
    }

    fn text(&self) -> String {
        let raw = std::fs::read_to_string(&self.dump).unwrap_or_default();
        strip_ansi(&raw)
    }

    /// Waits until Rotel printed `spans` spans and the metrics, then parses its print-out.
    fn received(&self, spans: usize) -> Dump {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.text();
            let dump = Dump::parse(&text);
            if dump.spans.len() >= spans && !dump.metrics.is_empty() {
                return dump;
            }
            assert!(Instant::now() < until, "Rotel received too little:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rotel's detailed print-out, parsed: values keep Rotel's type tags (`Int(3)`, `Str(x)`,
// `Slice(Str(stop))`), so the test checks types as the collector saw them.

#[derive(Debug, Default)]
struct RSpan {
    fields: BTreeMap<String, String>,
    attributes: Vec<(String, String)>,
    events: Vec<REvent>,
}

#[derive(Debug, Default)]
struct REvent {
    name: String,
    attributes: Vec<(String, String)>,
}

impl RSpan {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn int(&self, key: &str) -> Option<i64> {
        self.attr(key)?
            .strip_prefix("Int(")?
            .strip_suffix(')')?
            .parse()
            .ok()
    }
}

#[derive(Debug, Default)]
struct Dump {
    schema_urls: Vec<String>,
    resource: Vec<(String, String)>,
    spans: Vec<RSpan>,
    /// Metric name → the lines of its data points.
    metrics: BTreeMap<String, Vec<String>>,
}

#[derive(PartialEq)]
enum Section {
    None,
    Resource,
    Span,
    Event,
    Metric,
}

impl Dump {
    fn parse(text: &str) -> Dump {
        let mut dump = Dump::default();
        let mut section = Section::None;
        let mut metric = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(url) = trimmed.strip_prefix("Resource SchemaURL:") {
                dump.schema_urls.push(url.trim().to_owned());
            } else if trimmed == "Resource attributes:" {
                section = Section::Resource;
            } else if trimmed.starts_with("ScopeSpans #")
                || trimmed.starts_with("ResourceMetrics #")
            {
                section = Section::None;
            } else if trimmed.starts_with("Span #") {
                dump.spans.push(RSpan::default());
                section = Section::Span;
            } else if trimmed.starts_with("SpanEvent #") {
                if let Some(s) = dump.spans.last_mut() {
                    s.events.push(REvent::default());
                }
                section = Section::Event;
            } else if trimmed == "Descriptor:" {
                section = Section::Metric;
                metric.clear();
            } else if let Some(kv) = trimmed.strip_prefix("-> ") {
                dump.attribute(&section, line, kv, &mut metric);
            } else if section == Section::Span {
                if let Some((k, v)) = trimmed.split_once(':') {
                    dump.spans
                        .last_mut()
                        .unwrap()
                        .fields
                        .insert(k.trim().to_owned(), v.trim().to_owned());
                }
            } else if section == Section::Metric && !metric.is_empty() {
                dump.metrics
                    .entry(metric.clone())
                    .or_default()
                    .push(trimmed.to_owned());
            }
        }
        dump
    }

    fn attribute(&mut self, section: &Section, line: &str, kv: &str, metric: &mut String) {
        let Some((k, v)) = kv.split_once(": ").or_else(|| kv.split_once(':')) else {
            return;
        };
        let pair = (k.trim().to_owned(), v.trim().to_owned());
        match section {
            Section::Resource => self.resource.push(pair),
            Section::Span => {
                if let Some(s) = self.spans.last_mut() {
                    s.attributes.push(pair);
                }
            }
            Section::Event => {
                let Some(event) = self.spans.last_mut().and_then(|s| s.events.last_mut()) else {
                    return;
                };
                // Event attributes are indented deeper than the event's own name and timestamp.
                if line.starts_with("          ") {
                    event.attributes.push(pair);
                } else if pair.0 == "Name" {
                    event.name = pair.1;
                }
            }
            Section::Metric if metric.is_empty() && pair.0 == "Name" => {
                *metric = pair.1.clone();
                self.metrics.entry(pair.1).or_default();
            }
            Section::Metric | Section::None => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The test.

fn child(envs: &[(&str, String)]) -> (String, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "rotel::exporting_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for name in otlp::config::VARIABLES.iter().chain(&[
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "RUST_LOG",
    ]) {
        command.env_remove(name);
    }
    command.env("HARNESS_ROTEL_CHILD", "1");
    for (k, v) in envs {
        command.env(k, v);
    }
    let out = command.output().expect("the child runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn rotel_receives_what_backends_read() {
    let Some(binary) = rotel_binary() else {
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var_os("HARNESS_ROTEL").is_some();
        assert!(
            !required,
            "Rotel is required here (CI=true or HARNESS_ROTEL set) but was not found: \
             `python3 -m pip install rotel` and set HARNESS_ROTEL to its rotel-agent binary"
        );
        eprintln!(
            "SKIPPED rotel_receives_what_backends_read: Rotel not installed \
             (`python3 -m pip install rotel`; CI installs it and this test then must pass)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("harness-rotel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // 1. The base endpoint, RUST_LOG unset.
    let rotel = Rotel::start(&binary, &dir, "base");
    let (stdout, _) = child(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", rotel.port),
        ),
        ("OTEL_SERVICE_NAME", "rotel-test".into()),
    ]);
    assert!(stdout.contains("shutdown: ok"), "{stdout}");
    check(&rotel.received(7), "base endpoint");
    drop(rotel);

    // 2. The signal endpoints, used as they are, and RUST_LOG=warn: spans still go.
    let rotel = Rotel::start(&binary, &dir, "warn");
    let base = format!("http://127.0.0.1:{}", rotel.port);
    let (stdout, _) = child(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{base}/v1/traces"),
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("{base}/v1/metrics"),
        ),
        ("OTEL_SERVICE_NAME", "rotel-test".into()),
        ("RUST_LOG", "warn".into()),
    ]);
    assert!(stdout.contains("shutdown: ok"), "{stdout}");
    check(&rotel.received(7), "RUST_LOG=warn");

    // 3. A wrong path: the receiver answers 404, and the program says so once, with the URL.
    let wrong = format!("{base}/v1/traces/v1/traces");
    let (stdout, stderr) = child(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", wrong.clone()),
        ("OTEL_METRICS_EXPORTER", "none".into()),
    ]);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("OTLP export failed"))
        .collect();
    assert_eq!(
        said.len(),
        1,
        "one line, not one per batch or span:\n{stderr}"
    );
    assert!(
        said[0].contains(&format!("spans to {wrong}: HTTP 404 Not Found")),
        "{}",
        said[0]
    );
    assert!(
        stdout.contains(&format!(
            "shutdown: OTLP telemetry: not exported: spans to {wrong}"
        )),
        "{stdout}"
    );
    drop(rotel);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What every backend needs from the three calls, as Rotel received them.
fn check(dump: &Dump, run: &str) {
    assert!(
        dump.schema_urls.iter().all(|u| u == names::SCHEMA_URL) && !dump.schema_urls.is_empty(),
        "{run}: resource schema URL {:?}",
        dump.schema_urls
    );
    assert!(
        dump.resource
            .contains(&("service.name".into(), "Str(rotel-test)".into())),
        "{run}: {:?}",
        dump.resource
    );
    let workflows: Vec<&RSpan> = dump
        .spans
        .iter()
        .filter(|s| s.field("Name") == "invoke_workflow classify")
        .collect();
    let chats: Vec<&RSpan> = dump
        .spans
        .iter()
        .filter(|s| s.field("Name") == "chat smollm2-135m")
        .collect();
    assert_eq!(
        (workflows.len(), chats.len()),
        (3, 4),
        "{run}: {:#?}",
        dump.spans
    );
    for w in &workflows {
        assert_eq!(w.field("Kind"), "SPAN_KIND_INTERNAL", "{run}");
        assert_eq!(
            w.attr(names::GEN_AI_OPERATION_NAME),
            Some("Str(invoke_workflow)")
        );
        assert_eq!(w.attr(names::GEN_AI_WORKFLOW_NAME), Some("Str(classify)"));
        for key in [
            names::GEN_AI_USAGE_INPUT_TOKENS,
            names::GEN_AI_USAGE_OUTPUT_TOKENS,
            names::GEN_AI_REQUEST_MODEL,
        ] {
            assert_eq!(w.attr(key), None, "{run}: {key} on the workflow span");
        }
        // No double counting: the workflow's totals are the sum of its CLIENT spans' usage.
        let mine: Vec<&&RSpan> = chats
            .iter()
            .filter(|c| c.field("Parent ID") == w.field("ID"))
            .collect();
        let sum = |key| mine.iter().filter_map(|c| c.int(key)).sum::<i64>();
        assert_eq!(
            w.int(names::HARNESS_USAGE_INPUT_TOKENS),
            Some(sum(names::GEN_AI_USAGE_INPUT_TOKENS)),
            "{run}"
        );
        assert_eq!(
            w.int(names::HARNESS_USAGE_OUTPUT_TOKENS),
            Some(sum(names::GEN_AI_USAGE_OUTPUT_TOKENS)),
            "{run}"
        );
        assert_eq!(
            w.int(names::HARNESS_ATTEMPTS),
            Some(mine.len() as i64),
            "{run}"
        );
        // The model has no price: the cost is unknown, so it is absent, never 0.
        assert_eq!(w.attr(names::HARNESS_COST_USD), None, "{run}");
    }
    let total: i64 = chats
        .iter()
        .filter_map(|c| c.int(names::GEN_AI_USAGE_INPUT_TOKENS))
        .sum();
    assert_eq!(total, 100 + 90 + 100, "{run}: each billed token once");
    for c in &chats {
        assert_eq!(c.field("Kind"), "SPAN_KIND_CLIENT", "{run}");
        assert_eq!(c.attr(names::GEN_AI_OPERATION_NAME), Some("Str(chat)"));
        assert_eq!(
            c.attr(names::SERVER_ADDRESS),
            Some("Str(127.0.0.1)"),
            "{run}"
        );
        if c.int(names::GEN_AI_USAGE_INPUT_TOKENS).is_some() {
            assert_eq!(
                c.attr(names::GEN_AI_RESPONSE_FINISH_REASONS),
                Some("Slice(Str(stop))"),
                "{run}: a string array"
            );
        }
    }

    let by_status = |status: &str| -> &RSpan {
        workflows
            .iter()
            .find(|w| w.attr(names::HARNESS_STATUS) == Some(status))
            .unwrap_or_else(|| panic!("{run}: no {status} call"))
    };
    // The retried call: the 503 attempt is an error with a short reason, then an answer.
    let retried = workflows
        .iter()
        .find(|w| w.int(names::HARNESS_RETRIES) == Some(1))
        .expect("the retried call");
    assert_eq!(retried.field("Status code"), "STATUS_CODE_UNSET", "{run}");
    let unavailable = chats
        .iter()
        .find(|c| c.int(names::HTTP_RESPONSE_STATUS_CODE) == Some(503))
        .expect("the 503 attempt");
    assert_eq!(unavailable.field("Parent ID"), retried.field("ID"));
    assert_eq!(unavailable.field("Status code"), "STATUS_CODE_ERROR");
    assert_eq!(
        unavailable.field("Status message"),
        "provider_error: HTTP 503 Service Unavailable"
    );
    assert_eq!(
        unavailable.attr(names::ERROR_TYPE),
        Some("Str(provider_error)")
    );
    assert_eq!(
        unavailable.attr(names::GEN_AI_USAGE_INPUT_TOKENS),
        None,
        "nothing billed"
    );
    let decision = retried
        .events
        .iter()
        .find(|e| e.name == "harness decision")
        .expect("the retry decision event");
    assert!(
        decision
            .attributes
            .contains(&("attempt".into(), "Int(1)".into())),
        "{run}: event attributes keep their types: {:?}",
        decision.attributes
    );
    // The failed call: error status with its reason on the workflow and the attempt.
    let failed = by_status("Str(failed)");
    assert_eq!(failed.field("Status code"), "STATUS_CODE_ERROR", "{run}");
    assert_eq!(
        failed.field("Status message"),
        "invalid_output after 1 attempt"
    );
    let invalid = chats
        .iter()
        .find(|c| c.field("Parent ID") == failed.field("ID"))
        .unwrap();
    assert_eq!(invalid.field("Status code"), "STATUS_CODE_ERROR");
    assert_eq!(
        invalid.field("Status message"),
        "invalid_output: 1 validation error (one_of)"
    );
    // The answered call.
    let answered = workflows
        .iter()
        .find(|w| {
            w.int(names::HARNESS_ATTEMPTS) == Some(1)
                && w.attr(names::HARNESS_STATUS) == Some("Str(answer)")
        })
        .expect("the answered call");
    assert_eq!(answered.field("Status code"), "STATUS_CODE_UNSET");

    for s in &dump.spans {
        let mut keys: Vec<&str> = s.attributes.iter().map(|(k, _)| k.as_str()).collect();
        let all = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(
            keys.len(),
            all,
            "{run}: a key twice on {}: {:?}",
            s.field("Name"),
            s.attributes
        );
        let text = format!("{s:?}");
        assert!(
            !text.contains(PROMPT_WORDS) && !text.contains(INVALID_LABEL),
            "{run}: content in {text}"
        );
    }

    // Metrics: the unknown cost is counted apart, and nothing pretends it is $0.
    assert!(
        dump.metrics.contains_key(names::HARNESS_TASK_CALLS),
        "{run}: {:?}",
        dump.metrics.keys()
    );
    assert!(
        !dump.metrics.contains_key(names::HARNESS_TASK_COST),
        "{run}: a cost for an unpriced model"
    );
    let unpriced = &dump.metrics[names::HARNESS_TASK_UNPRICED_CALLS];
    assert!(
        unpriced.iter().any(|l| l == "Value: 3"),
        "{run}: {unpriced:?}"
    );
}
