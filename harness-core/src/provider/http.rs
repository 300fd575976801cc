//! What the HTTP providers share: their options and client ([`options`]), a bounded body read,
//! status and transport error mapping, `Retry-After` ([`retry_after`]), and secrets that never
//! print.

mod options;
mod retry_after;

pub(crate) use options::{Dialect, HttpClient, HttpOptions, http_setters};
pub use retry_after::parse_retry_after;

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use super::ProviderError;
use crate::error::ConfigError;

/// The largest response body read by default (16 MiB). Anything longer is an `InvalidResponse`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The default time allowed to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("harness/", env!("CARGO_PKG_VERSION"));

/// How many characters of a body an error message quotes.
const EXCERPT_CHARS: usize = 200;

/// An API key. Its `Debug` and `Display` print `[redacted]`; only the request header sees it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    /// Wraps a key; `None` when it is empty.
    pub(crate) fn new(key: String) -> Option<Secret> {
        (!key.is_empty()).then_some(Secret(key))
    }

    /// A header value marked sensitive (hyper then keeps it out of its own debug output).
    pub(crate) fn header(&self, prefix: &str) -> Result<HeaderValue, ProviderError> {
        let mut v = HeaderValue::from_str(&format!("{prefix}{}", self.0)).map_err(|_| {
            ProviderError::Config(
                "the API key contains characters that are not allowed in an HTTP header".into(),
            )
        })?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// Checks that the key can go in a header, for a builder's `build()`.
    pub(crate) fn check(&self, what: &str) -> Result<(), ConfigError> {
        self.header("").map(drop).map_err(|_| {
            ConfigError(format!(
                "{what} contains characters that are not allowed in an HTTP header"
            ))
        })
    }

    /// `text` with every occurrence of the key replaced by `[redacted]` (servers sometimes echo it).
    pub(crate) fn scrub(&self, text: String) -> String {
        if self.0.len() >= 4 && text.contains(&self.0) {
            text.replace(&self.0, "[redacted]")
        } else {
            text
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Scrubs `text` of the key, if there is one.
fn scrub(key: Option<&Secret>, text: String) -> String {
    match key {
        Some(k) => k.scrub(text),
        None => text,
    }
}

/// Parses and checks a base URL: absolute, `http` or `https`, no user or password in it.
/// Messages never quote the URL (it could carry a credential).
pub(crate) fn parse_base_url(raw: &str, what: &str) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| ConfigError(format!("{what} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError(format!(
            "{what} must use http or https, not `{}`",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError(format!("{what} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError(format!(
            "{what} must not contain a user name or password; pass the API key separately"
        )));
    }
    Ok(url)
}

/// `base` with `suffix` appended to its path (keeping any query string).
fn endpoint(base: &reqwest::Url, suffix: &str) -> reqwest::Url {
    let mut url = base.clone();
    let path = format!("{}/{}", base.path().trim_end_matches('/'), suffix);
    url.set_path(&path);
    url
}

/// The time limits a provider was built with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    pub total: Option<Duration>,
}

/// The client every provider uses: rustls, a connect timeout, an optional overall timeout, and no
/// redirects (a redirect would resend the key to wherever the server points).
/// `headers` are sent with every request; their values are marked sensitive (they may carry
/// credentials) and errors name only the header.
fn client(
    timeouts: Timeouts,
    headers: &[(String, String)],
) -> Result<reqwest::Client, ConfigError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError(format!("`{name}` is not a valid HTTP header name")))?;
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            ConfigError(format!(
                "the value of header `{name}` contains characters that are not allowed"
            ))
        })?;
        v.set_sensitive(true);
        map.append(n, v);
    }
    let mut b = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .user_agent(USER_AGENT)
        .default_headers(map)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(t) = timeouts.total {
        b = b.timeout(t);
    }
    b.build().map_err(|e| {
        ConfigError(format!(
            "the HTTP client could not be built: {}",
            e.without_url()
        ))
    })
}

/// The names of extra headers, for `Debug` output (values may be credentials).
fn header_names(headers: &[(String, String)]) -> Vec<&str> {
    headers.iter().map(|(n, _)| n.as_str()).collect()
}

/// A successful-or-not HTTP exchange whose body was read in full.
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Sends `request` and reads the body, at most `max_body` bytes.
async fn send(
    request: reqwest::RequestBuilder,
    max_body: usize,
    timeouts: Timeouts,
) -> Result<RawResponse, ProviderError> {
    let timeout = timeouts.total;
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error(e, timeouts))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    if response
        .content_length()
        .is_some_and(|n| n > max_body as u64)
    {
        return Err(ProviderError::InvalidResponse(format!(
            "the body is {} bytes, more than the limit of {max_body}",
            response.content_length().unwrap_or_default()
        )));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_body {
                    return Err(ProviderError::InvalidResponse(format!(
                        "the body is longer than the limit of {max_body} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => {
                return Err(ProviderError::Timeout(timeout.unwrap_or_default()));
            }
            Err(e) => {
                return Err(ProviderError::InvalidResponse(format!(
                    "the body was cut off after {} bytes ({}): {}",
                    body.len(),
                    error_chain(&e.without_url()),
                    excerpt(&body)
                )));
            }
        }
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// Maps an error from sending (before any status line arrived).
fn transport_error(e: reqwest::Error, timeouts: Timeouts) -> ProviderError {
    let e = e.without_url();
    if e.is_timeout() && e.is_connect() {
        ProviderError::Timeout(timeouts.connect)
    } else if e.is_timeout() {
        ProviderError::Timeout(timeouts.total.unwrap_or(timeouts.connect))
    } else if e.is_builder() {
        ProviderError::Config(error_chain(&e))
    } else {
        ProviderError::Connection(error_chain(&e))
    }
}

/// An error and its sources, `a: b: c`, skipping repeats.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A short, printable excerpt of a body: lossy UTF-8, at most a few hundred characters.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_CHARS * 4)]);
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT_CHARS || body.len() > EXCERPT_CHARS * 4 {
        out.push('…');
    }
    if out.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        out
    }
}

/// An `InvalidResponse` saying `what` is wrong with `body`, quoting an excerpt of it.
pub(crate) fn invalid_body(what: &str, body: &[u8]) -> ProviderError {
    ProviderError::InvalidResponse(format!("{what}: {}", excerpt(body)))
}

/// `body` read as the JSON of a `T`; `what` names a `T` in the error ("a chat completion").
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, ProviderError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        invalid_body(&format!("the body is not valid UTF-8 (at byte {at})"), body)
    })?;
    serde_json::from_str(text)
        .map_err(|e| invalid_body(&format!("the body is not {what} ({e})"), body))
}

/// The error for a non-success status. `rate_limited` lists the statuses that mean "slow down"
/// (429 everywhere; 529 for Anthropic). The message is the body's `error.message` if it has one,
/// else an excerpt of the body; never a header.
fn status_error(
    response: &RawResponse,
    rate_limited: &[u16],
    key: Option<&Secret>,
) -> ProviderError {
    if rate_limited.contains(&response.status) {
        return ProviderError::RateLimited {
            status: response.status,
            retry_after: response
                .headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
        };
    }
    ProviderError::Status {
        status: response.status,
        message: scrub(key, error_message(&response.body)),
    }
}

/// The `error.message` (or `message`) of an error body, else an excerpt.
fn error_message(body: &[u8]) -> String {
    let found = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let m = v
                .pointer("/error/message")
                .or_else(|| v.get("message"))
                .or_else(|| v.get("error"))?;
            m.as_str().map(str::to_owned)
        });
    match found {
        Some(m) => excerpt(m.as_bytes()),
        None => excerpt(body),
    }
}

/// A name a tool or schema may carry: `[A-Za-z0-9_-]{1,64}`.
pub(crate) fn schema_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if out.is_empty() {
        out.push_str("output");
    }
    out
}

/// `scheme://host:port/path` of a URL, without its query (which could carry a credential), for
/// `Debug` output.
fn display_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Host and port of a URL, for `server.address` / `server.port`.
fn address(url: &reqwest::Url) -> (Option<String>, Option<u16>) {
    let host = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned());
    (host, url.port_or_known_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-very-secret".into()).unwrap();
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(
            s.scrub("bad key sk-very-secret given".into()),
            "bad key [redacted] given"
        );
        assert!(Secret::new(String::new()).is_none());
        assert!(Secret::new("a\nb".into()).unwrap().check("KEY").is_err());
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(parse_base_url("http://127.0.0.1:8089/v1", "X").is_ok());
        let e = parse_base_url("not a url", "OPENAI_BASE_URL").unwrap_err();
        assert!(e.0.starts_with("OPENAI_BASE_URL is not a valid URL"), "{e}");
        let e = parse_base_url("ftp://host/", "X").unwrap_err();
        assert!(e.0.contains("http or https"), "{e}");
        let e = parse_base_url("https://user:hunter2@host/", "X").unwrap_err();
        assert!(!e.0.contains("hunter2"), "{e}");
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        let base = reqwest::Url::parse("http://h:1/v1/").unwrap();
        assert_eq!(
            endpoint(&base, "chat/completions").as_str(),
            "http://h:1/v1/chat/completions"
        );
        let base = reqwest::Url::parse("http://h:1/v1?x=1").unwrap();
        assert_eq!(
            endpoint(&base, "chat/completions").as_str(),
            "http://h:1/v1/chat/completions?x=1"
        );
    }

    #[test]
    fn displayed_urls_drop_the_query() {
        let url = reqwest::Url::parse("https://h/v1?api-key=sekrit#x").unwrap();
        assert_eq!(display_url(&url), "https://h/v1");
    }

    #[test]
    fn addresses_have_no_brackets() {
        let url = reqwest::Url::parse("http://[::1]:8089/v1").unwrap();
        assert_eq!(address(&url), (Some("::1".to_owned()), Some(8089)));
        let url = reqwest::Url::parse("https://api.example.com/v1").unwrap();
        assert_eq!(
            address(&url),
            (Some("api.example.com".to_owned()), Some(443))
        );
    }

    #[test]
    fn extra_headers_are_checked_without_quoting_values() {
        let t = Timeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            total: None,
        };
        assert!(client(t, &[("x-org".into(), "o-1".into())]).is_ok());
        let e = client(t, &[("bad name".into(), "v".into())]).unwrap_err();
        assert!(e.0.contains("`bad name`"), "{e}");
        let e = client(t, &[("x-key".into(), "sekrit\n".into())]).unwrap_err();
        assert!(e.0.contains("x-key") && !e.0.contains("sekrit"), "{e}");
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        let long = vec![b'a'; 10_000];
        assert!(excerpt(&long).chars().count() <= EXCERPT_CHARS + 1);
        assert_eq!(excerpt(b"\xff\xfeok"), "\u{fffd}\u{fffd}ok");
        assert_eq!(excerpt(b""), "(empty body)");
        assert_eq!(error_message(br#"{"error":{"message":"bad"}}"#), "bad");
    }

    #[test]
    fn schema_names_are_sanitised() {
        assert_eq!(schema_name("a b::C"), "a_b__C");
        assert_eq!(schema_name(""), "output");
        assert_eq!(schema_name(&"x".repeat(100)).len(), 64);
    }
}
