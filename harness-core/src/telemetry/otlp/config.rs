//! Where and how to export, from the builder and the standard `OTEL_*` variables.
//!
//! The rules are the OpenTelemetry specification's (OTLP exporter configuration):
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL: spans go to `{base}/v1/traces`, metrics to
//!   `{base}/v1/metrics` (default `http://localhost:4318`);
//! - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` are used as
//!   they are, and win over the base;
//! - `OTEL_EXPORTER_OTLP_HEADERS` (and `..._TRACES_HEADERS`, `..._METRICS_HEADERS`, which add to
//!   it and win on the same name) are `name=value` pairs separated by commas, values
//!   percent-decoded;
//! - `OTEL_EXPORTER_OTLP_TIMEOUT` (and per signal) in milliseconds, default 10 000;
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` (and per signal) must be `http/protobuf`, the only one harness
//!   speaks;
//! - `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` = `none` turn a signal off (`otlp`, the
//!   default, keeps it); `OTEL_SDK_DISABLED=true` turns both off;
//! - `OTEL_METRIC_EXPORT_INTERVAL` in milliseconds, default 60 000;
//! - `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` name the service (read by the SDK's
//!   resource detectors), `OTEL_BSP_*` tune the batch span processor (read by the SDK).
//!
//! What the code sets on the builder wins over every variable (an endpoint given in code wins over
//! the signal endpoints of the variables too). Errors name the variable and the problem, never a
//! header's value.

use std::time::Duration;

use super::OtlpError;

/// The base URL when neither the code nor `OTEL_EXPORTER_OTLP_ENDPOINT` gives one.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
/// The path of spans under a base URL.
pub const TRACES_PATH: &str = "/v1/traces";
/// The path of metrics under a base URL.
pub const METRICS_PATH: &str = "/v1/metrics";

/// The variables harness reads (the SDK reads `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`
/// and `OTEL_BSP_*` itself).
pub const VARIABLES: [&str; 16] = [
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_METRIC_EXPORT_INTERVAL",
];

/// One signal's settings, resolved.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct SignalConfig {
    /// `None`: the signal is off.
    pub(super) url: Option<reqwest::Url>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) timeout: Duration,
}

/// Both signals' settings and the metric interval.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Resolved {
    pub(super) traces: SignalConfig,
    pub(super) metrics: SignalConfig,
    pub(super) metrics_interval: Duration,
}

/// What the builder was told; `None` falls back to the variables.
#[derive(Clone, Debug, Default)]
pub(super) struct Explicit {
    pub(super) endpoint: Option<String>,
    pub(super) traces_endpoint: Option<String>,
    pub(super) metrics_endpoint: Option<String>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) timeout: Option<Duration>,
    pub(super) metrics_interval: Option<Duration>,
    pub(super) traces: Option<bool>,
    pub(super) metrics: Option<bool>,
}

/// Which signal, in the variables' spelling.
#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    const fn upper(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
        }
    }

    const fn path(self) -> &'static str {
        match self {
            Signal::Traces => TRACES_PATH,
            Signal::Metrics => METRICS_PATH,
        }
    }
}

/// Resolves the settings from what the code set and the variables `var` gives (empty values
/// count as unset).
pub(super) fn resolve(
    explicit: &Explicit,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, OtlpError> {
    let get = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    for name in [
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    ] {
        if let Some(p) = get(name).filter(|p| p != "http/protobuf") {
            return Err(OtlpError(format!(
                "{name}={p} is not supported: harness exports OTLP over HTTP with protobuf \
                 bodies (http/protobuf); use the receiver's HTTP port (4318 by convention)"
            )));
        }
    }
    let base = match &explicit.endpoint {
        Some(e) => base_url(e, "the OTLP endpoint")?,
        None => match get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(e) => base_url(&e, "OTEL_EXPORTER_OTLP_ENDPOINT")?,
            None => base_url(DEFAULT_ENDPOINT, "the default OTLP endpoint")?,
        },
    };
    let common_headers = match get("OTEL_EXPORTER_OTLP_HEADERS") {
        Some(h) => parse_headers(&h, "OTEL_EXPORTER_OTLP_HEADERS")?,
        None => Vec::new(),
    };
    let common_timeout = millis(&get, "OTEL_EXPORTER_OTLP_TIMEOUT")?;
    let disabled = get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let signal = |signal: Signal, explicit_url: &Option<String>, on: Option<bool>| {
        let upper = signal.upper();
        let exporter = get(&format!("OTEL_{upper}_EXPORTER"));
        let enabled = match on {
            Some(on) => on,
            None if disabled => false,
            None => match exporter.as_deref() {
                None | Some("otlp") => true,
                Some("none") => false,
                Some(other) => {
                    return Err(OtlpError(format!(
                        "OTEL_{upper}_EXPORTER={other} is not supported: harness exports \
                         `otlp`, or nothing with `none`"
                    )));
                }
            },
        };
        // The code's URLs first (its signal URL, then its base), then the variables' (the
        // signal's, then the base), as the specification orders the variables.
        let specific = format!("OTEL_EXPORTER_OTLP_{upper}_ENDPOINT");
        let url = match (explicit_url, &explicit.endpoint, get(&specific)) {
            (Some(u), _, _) => signal_url(u, "the OTLP endpoint")?,
            (None, Some(_), _) => join(&base, signal.path()),
            (None, None, Some(u)) => signal_url(&u, &specific)?,
            (None, None, None) => join(&base, signal.path()),
        };
        let specific = format!("OTEL_EXPORTER_OTLP_{upper}_HEADERS");
        let mut headers = common_headers.clone();
        if let Some(h) = get(&specific) {
            merge(&mut headers, parse_headers(&h, &specific)?);
        }
        merge(&mut headers, explicit.headers.clone());
        let timeout = explicit
            .timeout
            .or(millis(
                &get,
                &format!("OTEL_EXPORTER_OTLP_{upper}_TIMEOUT"),
            )?)
            .or(common_timeout)
            .unwrap_or(Duration::from_secs(10));
        Ok(SignalConfig {
            url: enabled.then_some(url),
            headers,
            timeout,
        })
    };
    Ok(Resolved {
        traces: signal(Signal::Traces, &explicit.traces_endpoint, explicit.traces)?,
        metrics: signal(
            Signal::Metrics,
            &explicit.metrics_endpoint,
            explicit.metrics,
        )?,
        metrics_interval: explicit
            .metrics_interval
            .or(millis(&get, "OTEL_METRIC_EXPORT_INTERVAL")?)
            .unwrap_or(Duration::from_secs(60)),
    })
}

fn parse_url(raw: &str, what: &str) -> Result<reqwest::Url, OtlpError> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| {
        OtlpError(format!(
            "{what} `{raw}` is not a URL ({e}); give one like {DEFAULT_ENDPOINT}"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OtlpError(format!(
            "{what} `{raw}` is not an http(s) URL; OTLP/HTTP needs one like {DEFAULT_ENDPOINT}"
        )));
    }
    Ok(url)
}

/// A base URL. One that already ends in `/v1/traces` or `/v1/metrics` (as some backends print
/// their endpoint) is taken for the full URL of that signal, and its base is what is left, so
/// both forms work and nothing is posted to `/v1/traces/v1/traces`.
fn base_url(raw: &str, what: &str) -> Result<reqwest::Url, OtlpError> {
    let mut url = parse_url(raw, what)?;
    let path = url.path().trim_end_matches('/').to_owned();
    let base = [TRACES_PATH, METRICS_PATH]
        .iter()
        .find_map(|suffix| path.strip_suffix(suffix))
        .unwrap_or(&path)
        .to_owned();
    url.set_path(&base);
    Ok(url)
}

/// A signal's full URL, used as it is.
fn signal_url(raw: &str, what: &str) -> Result<reqwest::Url, OtlpError> {
    parse_url(raw, what)
}

/// `{base}{path}`, with one slash between them whatever the base ends with.
fn join(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    let joined = format!("{}{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

fn millis(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<Duration>, OtlpError> {
    match get(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| {
                OtlpError(format!(
                    "{name}=`{v}` is not a whole number of milliseconds"
                ))
            }),
    }
}

/// `name=value,name2=value2`, values percent-decoded. Errors say which pair (by position and
/// name), never a value: header values are often keys.
fn parse_headers(raw: &str, var: &str) -> Result<Vec<(String, String)>, OtlpError> {
    let mut headers = Vec::new();
    for (i, pair) in raw.split(',').enumerate() {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let Some((name, value)) = pair.split_once('=') else {
            return Err(OtlpError(format!(
                "{var}: entry {} has no `=`; the form is name=value,name2=value2",
                i + 1
            )));
        };
        let name = percent_decode(name.trim());
        let value = percent_decode(value.trim());
        let valid = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
            && http::HeaderValue::from_str(&value).is_ok();
        if !valid {
            return Err(OtlpError(format!(
                "{var}: entry {} (`{name}`) is not a valid HTTP header",
                i + 1
            )));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

/// Adds `more` to `headers`, a header of the same name (case-insensitive) replacing the old one.
fn merge(headers: &mut Vec<(String, String)>, more: Vec<(String, String)>) {
    for (name, value) in more {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        headers.push((name, value));
    }
}

/// `%XX` escapes decoded; anything malformed is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve_with(explicit: Explicit, vars: &[(&str, &str)]) -> Result<Resolved, OtlpError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        resolve(&explicit, &|name| vars.get(name).cloned())
    }

    fn urls(r: &Resolved) -> (Option<&str>, Option<&str>) {
        (
            r.traces.url.as_ref().map(|u| u.as_str()),
            r.metrics.url.as_ref().map(|u| u.as_str()),
        )
    }

    #[test]
    fn the_base_endpoint_gets_each_signals_path() {
        let r = resolve_with(
            Explicit::default(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")],
        )
        .unwrap();
        assert_eq!(
            urls(&r),
            (
                Some("http://collector:4318/v1/traces"),
                Some("http://collector:4318/v1/metrics")
            )
        );
        // A base with a path keeps it, with one slash whatever it ends with.
        for base in ["http://h:4318/otlp", "http://h:4318/otlp/"] {
            let r = resolve_with(
                Explicit::default(),
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", base)],
            )
            .unwrap();
            assert_eq!(urls(&r).0, Some("http://h:4318/otlp/v1/traces"));
        }
    }

    #[test]
    fn signal_endpoints_are_used_as_they_are_and_win() {
        let r = resolve_with(
            Explicit::default(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://phoenix:6006/v1/traces",
                ),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    "http://m:9090/custom",
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            urls(&r),
            (
                Some("http://phoenix:6006/v1/traces"),
                Some("http://m:9090/custom")
            )
        );
    }

    #[test]
    fn a_base_given_with_the_traces_path_is_not_doubled() {
        for given in [
            "http://localhost:6006/v1/traces",
            "http://localhost:6006/v1/traces/",
            "http://localhost:6006/v1/metrics",
        ] {
            let explicit = Explicit {
                endpoint: Some(given.to_owned()),
                ..Explicit::default()
            };
            let r = resolve_with(explicit, &[]).unwrap();
            assert_eq!(
                urls(&r),
                (
                    Some("http://localhost:6006/v1/traces"),
                    Some("http://localhost:6006/v1/metrics")
                ),
                "{given}"
            );
        }
    }

    #[test]
    fn the_code_wins_over_the_variables_and_defaults_fill_the_rest() {
        let explicit = Explicit {
            endpoint: Some("http://code:4318".into()),
            timeout: Some(Duration::from_secs(2)),
            ..Explicit::default()
        };
        let r = resolve_with(
            explicit,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://env:4318/v1/traces",
                ),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ],
        )
        .unwrap();
        assert_eq!(
            urls(&r),
            (
                Some("http://code:4318/v1/traces"),
                Some("http://code:4318/v1/metrics")
            )
        );
        assert_eq!(r.traces.timeout, Duration::from_secs(2));
        let r = resolve_with(Explicit::default(), &[]).unwrap();
        assert_eq!(urls(&r).0, Some("http://localhost:4318/v1/traces"));
        assert_eq!(r.metrics.timeout, Duration::from_secs(10));
        assert_eq!(r.metrics_interval, Duration::from_secs(60));
    }

    #[test]
    fn headers_merge_per_signal_and_decode() {
        let explicit = Explicit {
            headers: vec![("x-code".into(), "1".into())],
            ..Explicit::default()
        };
        let r = resolve_with(
            explicit,
            &[
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "Authorization=Basic%20abc%3D%3D, x-team = core",
                ),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-team=traces"),
            ],
        )
        .unwrap();
        assert_eq!(
            r.traces.headers,
            vec![
                ("Authorization".to_owned(), "Basic abc==".to_owned()),
                ("x-team".to_owned(), "traces".to_owned()),
                ("x-code".to_owned(), "1".to_owned()),
            ]
        );
        assert!(
            r.metrics
                .headers
                .contains(&("x-team".into(), "core".into()))
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_never_a_header_value() {
        let cases = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", "http"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "milliseconds"),
            ("OTEL_TRACES_EXPORTER", "zipkin", "none"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key", "no `=`"),
        ];
        for (var, value, says) in cases {
            let e = resolve_with(Explicit::default(), &[(var, value)])
                .unwrap_err()
                .to_string();
            assert!(e.contains(var) && e.contains(says), "{var}: {e}");
        }
        let e = resolve_with(
            Explicit::default(),
            &[("OTEL_EXPORTER_OTLP_HEADERS", "bad name=sk-secret")],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("entry 1") && !e.contains("sk-secret"), "{e}");
    }

    #[test]
    fn none_turns_a_signal_off() {
        let r = resolve_with(Explicit::default(), &[("OTEL_METRICS_EXPORTER", "none")]).unwrap();
        assert!(r.traces.url.is_some());
        assert_eq!(r.metrics.url, None);
        let explicit = Explicit {
            metrics: Some(true),
            ..Explicit::default()
        };
        let r = resolve_with(explicit, &[("OTEL_METRICS_EXPORTER", "none")]).unwrap();
        assert!(r.metrics.url.is_some(), "the code wins");
        let r = resolve_with(Explicit::default(), &[("OTEL_SDK_DISABLED", "true")]).unwrap();
        assert_eq!((r.traces.url, r.metrics.url), (None, None));
    }
}
