//! Just enough HTTP/1.1 for the chaos server: read one request (request line, headers,
//! `Content-Length` body) and write byte-exact responses.

use std::io;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::Fault;

/// The most header bytes read before giving up on a request.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Header names whose values are never recorded.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
];

/// A request the chaos server received, as tests see it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The request target, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers in order, names lowercased. Credential headers (`authorization`, `x-api-key`, ...)
    /// are recorded as `[redacted]` (keeping a scheme: `Bearer [redacted]`).
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, when it is JSON.
    pub body: Option<Value>,
    /// The body's length in bytes.
    pub body_len: usize,
    /// The SHA-256 of the body's exact bytes (hex), to compare with what an attempt recorded
    /// ([`WireDigest`](crate::provider::WireDigest)).
    pub body_sha256: String,
    /// The fault the server answered with, if any.
    pub fault: Option<Fault>,
}

impl RecordedRequest {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `body.model`.
    pub fn model(&self) -> Option<&str> {
        self.body.as_ref()?.get("model")?.as_str()
    }

    /// The `content` of every message in `body.messages` (and Anthropic's `system`), in order.
    pub fn message_texts(&self) -> Vec<&str> {
        let Some(body) = &self.body else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(s) = body.get("system").and_then(Value::as_str) {
            out.push(s);
        }
        if let Some(msgs) = body.get("messages").and_then(Value::as_array) {
            out.extend(
                msgs.iter()
                    .filter_map(|m| m.get("content").and_then(Value::as_str)),
            );
        }
        out
    }

    /// Whether any message contains `needle` (e.g. a validation error carried by a reask).
    pub fn mentions(&self, needle: &str) -> bool {
        self.message_texts().iter().any(|t| t.contains(needle))
    }

    /// The JSON schema the request asks for: OpenAI's `response_format.json_schema.schema`, or the
    /// forced Anthropic tool's `input_schema`.
    pub fn schema(&self) -> Option<&Value> {
        let body = self.body.as_ref()?;
        body.pointer("/response_format/json_schema/schema")
            .or_else(|| body.pointer("/tools/0/input_schema"))
    }

    /// Whether this is an Anthropic Messages API request (the path ends in `/messages`).
    pub fn is_anthropic(&self) -> bool {
        self.path
            .split('?')
            .next()
            .is_some_and(|p| p.ends_with("/messages"))
    }
}

/// A parsed request, before it is recorded.
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Whether the request carries `key` as `Authorization: Bearer <key>` or `x-api-key: <key>`.
    pub(crate) fn has_key(&self, key: &str) -> bool {
        self.headers.iter().any(|(n, v)| {
            (n == "authorization" && v.strip_prefix("Bearer ") == Some(key))
                || (n == "x-api-key" && v == key)
        })
    }

    pub(crate) fn record(&self) -> RecordedRequest {
        RecordedRequest {
            method: self.method.clone(),
            path: self.path.clone(),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| {
                    let v = if SECRET_HEADERS.contains(&n.as_str()) {
                        // Keep an auth scheme such as `Bearer`, never the credential.
                        match v.split_once(' ') {
                            Some((scheme, _)) => format!("{scheme} [redacted]"),
                            None => "[redacted]".to_owned(),
                        }
                    } else {
                        v.clone()
                    };
                    (n.clone(), v)
                })
                .collect(),
            body: serde_json::from_slice(&self.body).ok(),
            body_len: self.body.len(),
            body_sha256: crate::digest::hash_hex(&self.body),
            fault: None,
        }
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads one request. `Ok(None)` when the peer closed before sending anything.
pub(crate) async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Request>> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("request head too large"));
        }
        let mut chunk = [0u8; 4096];
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(bad("connection closed mid-request"))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("request head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    if method.is_empty() || path.is_empty() {
        return Err(bad("malformed request line"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("malformed header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let rest = buf.split_off(head_end + 4);
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(r, rest).await?
    } else {
        let len = match headers.iter().find(|(n, _)| n == "content-length") {
            Some((_, v)) => v.parse::<usize>().map_err(|_| bad("bad content-length"))?,
            None => 0,
        };
        if len > MAX_BODY {
            return Err(bad("request body too large"));
        }
        let mut body = rest;
        if body.len() < len {
            let have = body.len();
            body.resize(len, 0);
            r.read_exact(&mut body[have..]).await?;
        }
        body.truncate(len);
        body
    };
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

/// Decodes a chunked body; `buf` holds what was already read past the head.
async fn read_chunked<R: AsyncRead + Unpin>(r: &mut R, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = loop {
            if let Some(i) = find(&buf[pos..], b"\r\n") {
                break pos + i;
            }
            if buf.len() - pos > 1024 {
                return Err(bad("chunk size line too long"));
            }
            fill(r, &mut buf).await?;
        };
        let size_text =
            std::str::from_utf8(&buf[pos..line_end]).map_err(|_| bad("bad chunk size"))?;
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| bad("bad chunk size"))?;
        pos = line_end + 2;
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(bad("request body too large"));
        }
        while buf.len() < pos + size + 2 {
            fill(r, &mut buf).await?;
        }
        if size == 0 {
            // No trailers expected: the terminating CRLF follows the last chunk.
            return Ok(body);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(bad("chunk not followed by CRLF"));
        }
        pos += size + 2;
    }
}

/// Reads more bytes into `buf`; an error at end of stream.
async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = r.read(&mut chunk).await?;
    if n == 0 {
        return Err(bad("connection closed mid-body"));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status line and headers of a response with a `Content-Length` of `len`.
pub(crate) fn head(status: u16, headers: &[(String, String)], len: usize) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("content-type") {
        out.push_str("content-type: application/json\r\n");
    }
    for (n, v) in headers {
        out.push_str(n);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-length: {len}\r\nconnection: close\r\n\r\n"
    ));
    out.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_request_and_redacts_credentials() {
        let raw = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-1\r\nContent-Length: 13\r\n\r\n{\"model\":\"m\"}";
        let req = read_request(&mut &raw[..]).await.unwrap().unwrap();
        assert_eq!(req.body, b"{\"model\":\"m\"}");
        let rec = req.record();
        assert_eq!(rec.header("AUTHORIZATION"), Some("Bearer [redacted]"));
        assert_eq!(rec.model(), Some("m"));
        assert!(!format!("{rec:?}").contains("sk-1"));
    }

    #[tokio::test]
    async fn reads_chunked_bodies() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3;x=y\r\n1}\n\r\n0\r\n\r\n";
        let req = read_request(&mut &raw[..]).await.unwrap().unwrap();
        assert_eq!(req.body, b"{\"a\":1}\n");
        let bad = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(read_request(&mut &bad[..]).await.is_err());
        let huge = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n";
        assert!(read_request(&mut &huge[..]).await.is_err());
        let short = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc";
        assert!(read_request(&mut &short[..]).await.is_err());
    }

    #[tokio::test]
    async fn rejects_garbage_without_panicking() {
        for raw in [
            &b"\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"POST / HTTP/1.1\r\nbad\r\n\r\n",
            b"POST / HTTP/1.1\r\n",
        ] {
            assert!(read_request(&mut &raw[..]).await.is_err());
        }
        assert!(read_request(&mut &b""[..]).await.unwrap().is_none());
    }
}
