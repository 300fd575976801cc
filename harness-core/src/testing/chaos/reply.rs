//! What the chaos server answers: [`Reply`], and how a reply becomes bytes on the wire, in the
//! OpenAI (Chat Completions) or Anthropic (Messages) dialect depending on the request's path.

use std::time::Duration;

use serde_json::{Value, json};

use super::fault::{Fault, REFUSAL_TEXT};
use super::wire::{self, RecordedRequest};

/// Stands in for the bytes of the `invalid_utf8` fault until the body is serialized.
const INVALID_UTF8_MARK: &str = "__chaos_invalid_utf8__";

/// One scripted answer of the chaos server.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    kind: Kind,
    headers: Vec<(String, String)>,
    delay: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// A completion. `content: None` means the server's good answer for the request.
    Answer {
        content: Option<String>,
        refusal: Option<String>,
        finish_reason: String,
        usage: Option<(u64, u64)>,
    },
    /// A fault; content faults distort `good`, or the server's good answer.
    Fault { fault: Fault, good: Option<String> },
    /// Exactly this status and body.
    Raw { status: u16, body: Vec<u8> },
    /// An answer calling tools: (name, arguments as the text the model wrote).
    ToolCalls { calls: Vec<(String, String)> },
}

impl Reply {
    fn answer_with(content: Option<String>) -> Reply {
        Reply {
            kind: Kind::Answer {
                content,
                refusal: None,
                finish_reason: "stop".to_owned(),
                usage: None,
            },
            headers: Vec::new(),
            delay: None,
        }
    }

    /// A completion whose content is `content` (usually JSON text), `finish_reason: stop`.
    pub fn json_content(content: impl Into<String>) -> Reply {
        Reply::answer_with(Some(content.into()))
    }

    /// A completion whose content is the server's good answer for the request: the
    /// [`answer`](super::ChaosBuilder::answer) closure's, else a minimal instance of the
    /// request's schema.
    pub fn answer() -> Reply {
        Reply::answer_with(None)
    }

    /// The fault `fault`. Content faults distort the server's good answer for the request.
    pub fn fault(fault: Fault) -> Reply {
        Reply {
            kind: Kind::Fault { fault, good: None },
            headers: Vec::new(),
            delay: None,
        }
    }

    /// The fault `fault`, distorting `good` (for content faults).
    pub fn distort(fault: Fault, good: impl Into<String>) -> Reply {
        Reply {
            kind: Kind::Fault {
                fault,
                good: Some(good.into()),
            },
            headers: Vec::new(),
            delay: None,
        }
    }

    /// Exactly `status` and `body` (with `content-type: application/json` unless a header says
    /// otherwise).
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            kind: Kind::Raw {
                status,
                body: body.into(),
            },
            headers: Vec::new(),
            delay: None,
        }
    }

    /// An answer calling these tools, in parallel when there are several: OpenAI's
    /// `message.tool_calls` (`finish_reason: tool_calls`, ids `call_chaos_{n}_{i}`), or Anthropic's
    /// `tool_use` blocks (`stop_reason: tool_use`).
    pub fn tool_calls<'a>(calls: impl IntoIterator<Item = (&'a str, Value)>) -> Reply {
        Reply::tool_call_texts(calls.into_iter().map(|(n, v)| (n, v.to_string())))
    }

    /// Like [`Reply::tool_calls`], with each call's arguments as raw text, which need not be
    /// JSON (for Anthropic, text that is not a JSON object becomes `{}`).
    pub fn tool_call_texts<'a>(
        calls: impl IntoIterator<Item = (&'a str, impl Into<String>)>,
    ) -> Reply {
        Reply {
            kind: Kind::ToolCalls {
                calls: calls
                    .into_iter()
                    .map(|(n, a)| (n.to_owned(), a.into()))
                    .collect(),
            },
            headers: Vec::new(),
            delay: None,
        }
    }

    /// `status` with `body` serialized as JSON.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::status(status, body.to_string())
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the completion's `finish_reason` (OpenAI spelling; mapped for Anthropic).
    pub fn with_finish_reason(mut self, reason: impl Into<String>) -> Reply {
        if let Kind::Answer { finish_reason, .. } = &mut self.kind {
            *finish_reason = reason.into();
        }
        self
    }

    /// Sets `message.refusal`.
    pub fn with_refusal(mut self, text: impl Into<String>) -> Reply {
        if let Kind::Answer { refusal, .. } = &mut self.kind {
            *refusal = Some(text.into());
        }
        self
    }

    /// Sets the reported usage (prompt and completion tokens).
    pub fn with_usage(mut self, input_tokens: u64, output_tokens: u64) -> Reply {
        if let Kind::Answer { usage, .. } = &mut self.kind {
            *usage = Some((input_tokens, output_tokens));
        }
        self
    }

    /// Waits `delay` (tokio time) before sending the first byte.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }

    /// The fault this reply injects, if any.
    pub fn as_fault(&self) -> Option<Fault> {
        match self.kind {
            Kind::Fault { fault, .. } => Some(fault),
            _ => None,
        }
    }
}

/// What a connection does with a request.
pub(crate) enum Action {
    /// Write `head` and then `body` (only its first `cut` bytes if set, then close), after `delay`.
    Send {
        head: Vec<u8>,
        body: Vec<u8>,
        cut: Option<usize>,
        delay: Option<Duration>,
    },
    /// Reset the connection.
    Reset,
    /// Send nothing for this long, then close.
    Stall(Duration),
}

/// Server settings a reply needs.
pub(crate) struct Timing {
    pub stall: Duration,
    pub slow_first_byte: Duration,
}

/// Turns `reply` into an action for `req`. `good` gives the server's good answer; `n` numbers ids.
pub(crate) fn plan(
    reply: &Reply,
    req: &RecordedRequest,
    good: &dyn Fn(&RecordedRequest) -> String,
    n: u64,
    timing: &Timing,
) -> Action {
    let p = Planner {
        reply,
        req,
        n,
        timing,
    };
    match &reply.kind {
        Kind::Raw { status, body } => p.send(*status, body.clone(), &[]),
        Kind::ToolCalls { calls } => p.send(200, tool_call_body(req, n, calls), &[]),
        Kind::Answer {
            content,
            refusal,
            finish_reason,
            usage,
        } => {
            let content = content.clone().unwrap_or_else(|| good(req));
            let body = p.completion(Some(&content), refusal.as_deref(), finish_reason, *usage);
            p.send(200, body, &[])
        }
        Kind::Fault { fault, good: given } => {
            let good_text = given.clone().unwrap_or_else(|| good(req));
            p.http_fault(*fault)
                .unwrap_or_else(|| p.body_fault(*fault, &good_text))
        }
    }
}

/// What [`plan`] builds replies from.
struct Planner<'a> {
    reply: &'a Reply,
    req: &'a RecordedRequest,
    n: u64,
    timing: &'a Timing,
}

impl Planner<'_> {
    fn send(&self, status: u16, body: Vec<u8>, extra: &[(String, String)]) -> Action {
        let mut headers = self.reply.headers.clone();
        headers.extend_from_slice(extra);
        Action::Send {
            head: wire::head(status, &headers, body.len()),
            body,
            cut: None,
            delay: self.reply.delay,
        }
    }

    fn message(
        &self,
        content: Option<&str>,
        refusal: Option<&str>,
        finish: &str,
        usage: Option<(u64, u64)>,
    ) -> Value {
        if self.req.is_anthropic() {
            anthropic_message(self.req, self.n, content, refusal, finish, usage)
        } else {
            openai_completion(self.req, self.n, content, refusal, finish, usage)
        }
    }

    fn completion(
        &self,
        content: Option<&str>,
        refusal: Option<&str>,
        finish: &str,
        usage: Option<(u64, u64)>,
    ) -> Vec<u8> {
        self.message(content, refusal, finish, usage)
            .to_string()
            .into_bytes()
    }

    /// An error body in the request's dialect.
    fn error(&self, kind: &str, message: &str) -> Vec<u8> {
        let body = if self.req.is_anthropic() {
            json!({"type": "error", "error": {"type": kind, "message": message}})
        } else {
            json!({"error": {"message": message, "type": kind, "code": null}})
        };
        body.to_string().into_bytes()
    }

    /// Faults of the transport and the status line; `None` for faults in the answer.
    fn http_fault(&self, fault: Fault) -> Option<Action> {
        let rate_limited = || self.error("rate_limit_error", "chaos: rate limited");
        Some(match fault {
            Fault::Http500 => self.send(
                500,
                self.error("server_error", "chaos: internal error"),
                &[],
            ),
            Fault::Http502 => self.send(502, self.error("server_error", "chaos: bad gateway"), &[]),
            Fault::Http503 => self.send(
                503,
                self.error("overloaded", "chaos: service unavailable"),
                &[],
            ),
            Fault::RateLimited => self.send(429, rate_limited(), &[]),
            Fault::RateLimitedRetryAfter => self.send(
                429,
                rate_limited(),
                &[("retry-after".to_owned(), "1".to_owned())],
            ),
            Fault::ConnectionReset => Action::Reset,
            Fault::Stall => Action::Stall(self.timing.stall),
            Fault::NotJson => self.send(
                200,
                b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>".to_vec(),
                &[("content-type".to_owned(), "text/html".to_owned())],
            ),
            _ => return None,
        })
    }

    /// Faults in a 200 answer built around `good` (the answer the server would give).
    fn body_fault(&self, fault: Fault, good: &str) -> Action {
        let answer = |content: &str, finish: &str| {
            self.send(200, self.completion(Some(content), None, finish, None), &[])
        };
        match fault {
            Fault::SlowFirstByte | Fault::TruncatedBody => {
                let body = self.completion(Some(good), None, "stop", None);
                let cut_at = body.len() / 2;
                let mut a = self.send(200, body, &[]);
                if let Action::Send { delay, cut, .. } = &mut a {
                    if fault == Fault::SlowFirstByte {
                        *delay = Some(self.timing.slow_first_byte);
                    } else {
                        *cut = Some(cut_at);
                    }
                }
                a
            }
            Fault::EmptyChoices => {
                let mut body = self.message(Some(""), None, "stop", None);
                if let Some(c) = body.get_mut("choices") {
                    *c = json!([]);
                }
                if let Some(c) = body.get_mut("content") {
                    *c = json!([]);
                }
                self.send(200, body.to_string().into_bytes(), &[])
            }
            Fault::InvalidUtf8 => {
                let content = format!("{good}{INVALID_UTF8_MARK}");
                let body = self.completion(Some(&content), None, "stop", None);
                self.send(200, replace_mark(body), &[])
            }
            Fault::Refusal if self.req.is_anthropic() => answer(REFUSAL_TEXT, "content_filter"),
            Fault::Refusal => self.send(
                200,
                self.completion(None, Some(REFUSAL_TEXT), "stop", None),
                &[],
            ),
            Fault::ContentFilter => answer("", "content_filter"),
            Fault::Length => answer(&fault.distort(good).unwrap_or_default(), "length"),
            other => answer(&other.distort(good).unwrap_or_default(), "stop"),
        }
    }
}

fn replace_mark(body: Vec<u8>) -> Vec<u8> {
    let mark = INVALID_UTF8_MARK.as_bytes();
    match body.windows(mark.len()).position(|w| w == mark) {
        Some(i) => {
            let mut out = body[..i].to_vec();
            out.extend_from_slice(b"\xff\xfe\xc3");
            out.extend_from_slice(&body[i + mark.len()..]);
            out
        }
        None => body,
    }
}

fn estimate_usage(req: &RecordedRequest, content: Option<&str>) -> (u64, u64) {
    let input: usize = req.message_texts().iter().map(|t| t.len()).sum();
    (
        (input / 4 + 1) as u64,
        (content.map_or(0, str::len) / 4 + 1) as u64,
    )
}

fn openai_completion(
    req: &RecordedRequest,
    n: u64,
    content: Option<&str>,
    refusal: Option<&str>,
    finish: &str,
    usage: Option<(u64, u64)>,
) -> Value {
    let (i, o) = usage.unwrap_or_else(|| estimate_usage(req, content));
    json!({
        "id": format!("chatcmpl-chaos-{n}"),
        "object": "chat.completion",
        "created": 0,
        "model": req.model().unwrap_or("chaos"),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": refusal},
            "finish_reason": finish,
        }],
        "usage": {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o},
    })
}

fn anthropic_message(
    req: &RecordedRequest,
    n: u64,
    content: Option<&str>,
    refusal: Option<&str>,
    finish: &str,
    usage: Option<(u64, u64)>,
) -> Value {
    let (i, o) = usage.unwrap_or_else(|| estimate_usage(req, content));
    let forced_tool = req
        .body
        .as_ref()
        .and_then(|b| b.pointer("/tool_choice/name"))
        .and_then(Value::as_str);
    let text = content.or(refusal).unwrap_or_default();
    let parsed = serde_json::from_str::<Value>(text).ok();
    let mut stop = match finish {
        "stop" => "end_turn",
        "length" => "max_tokens",
        "content_filter" => "refusal",
        other => other,
    };
    let block = match (forced_tool, parsed) {
        (Some(name), Some(v)) if finish == "stop" => {
            stop = "tool_use";
            let input = if v.is_object() {
                v
            } else {
                json!({"value": v})
            };
            Some(
                json!({"type": "tool_use", "id": format!("toolu_chaos_{n}"), "name": name, "input": input}),
            )
        }
        _ if text.is_empty() => None,
        _ => Some(json!({"type": "text", "text": text})),
    };
    json!({
        "id": format!("msg_chaos_{n}"),
        "type": "message",
        "role": "assistant",
        "model": req.model().unwrap_or("chaos"),
        "content": block.into_iter().collect::<Vec<_>>(),
        "stop_reason": stop,
        "usage": {"input_tokens": i, "output_tokens": o},
    })
}

/// A 200 body calling `calls`, in the request's dialect.
fn tool_call_body(req: &RecordedRequest, n: u64, calls: &[(String, String)]) -> Vec<u8> {
    let (i, o) = estimate_usage(req, None);
    let model = req.model().unwrap_or("chaos");
    let body = if req.is_anthropic() {
        let blocks: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(k, (name, args))| {
                let input = serde_json::from_str::<Value>(args)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({}));
                json!({"type": "tool_use", "id": format!("toolu_chaos_{n}_{k}"), "name": name, "input": input})
            })
            .collect();
        json!({
            "id": format!("msg_chaos_{n}"), "type": "message", "role": "assistant", "model": model,
            "content": blocks, "stop_reason": "tool_use",
            "usage": {"input_tokens": i, "output_tokens": o},
        })
    } else {
        let wire: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(k, (name, args))| {
                json!({"id": format!("call_chaos_{n}_{k}"), "type": "function",
                       "function": {"name": name, "arguments": args}})
            })
            .collect();
        json!({
            "id": format!("chatcmpl-chaos-{n}"), "object": "chat.completion", "created": 0,
            "model": model,
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                         "message": {"role": "assistant", "content": null, "tool_calls": wire}}],
            "usage": {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o},
        })
    };
    body.to_string().into_bytes()
}
