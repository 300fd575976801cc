//! The chaos server: an OpenAI-compatible (and Anthropic-compatible) HTTP/1.1 server on
//! 127.0.0.1 that serves scripted replies and injects faults, byte-exact, for tests.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use harness_core::testing::{ChaosServer, Fault, Reply};
//!
//! // A script: a 503, then a good answer, then (when the script runs out) the default.
//! let server = ChaosServer::builder()
//!     .script([Reply::fault(Fault::Http503), Reply::json_content(r#"{"label":"positive"}"#)])
//!     .start()
//!     .await?;
//! let base_url = server.base_url(); // http://127.0.0.1:PORT/v1
//!
//! // Or faults at a seeded rate, around good answers made from each request.
//! let server = ChaosServer::builder()
//!     .answer(|_req| r#"{"label":"positive","confidence":0.9}"#.to_owned())
//!     .inject(0.3, Fault::ALL)
//!     .seed(7)
//!     .start()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Point a provider at it like at any server, and assert on what was sent:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use harness_core::Harness;
//! use harness_core::provider::OpenAiCompatible;
//! use harness_core::testing::{ChaosServer, Fault, Reply};
//!
//! let server = ChaosServer::builder()
//!     .script([Reply::fault(Fault::WrongTypes), Reply::answer()])
//!     .start()
//!     .await?;
//! let harness = Harness::builder()
//!     .provider("openai", OpenAiCompatible::builder(server.base_url()).build()?)
//!     .build()?;
//! // ... run a task with `harness`, then:
//! let requests = server.requests();
//! # let _ = (harness, requests);
//! # Ok(()) }
//! ```
//!
//! Requests to a path ending in `/messages` are answered in Anthropic's Messages format (a forced
//! tool's `tool_use` block for JSON answers); all others as Chat Completions. Every request is
//! recorded ([`ChaosServer::requests`]) with credential headers redacted.
//!
//! Stalls, slow first bytes and [`Reply::delayed`] wait on tokio's clock, so tests with a paused
//! clock (`#[tokio::test(start_paused = true)]`) skip them instantly.

mod example;
mod fault;
mod reply;
mod wire;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub use example::example_for;
pub use fault::{DEEP_NESTING_DEPTH, Fault, HUGE_CONTENT_BYTES, REFUSAL_TEXT, UnknownFault};
pub use reply::Reply;
pub use wire::RecordedRequest;

use reply::{Action, Timing};

/// Makes the good answer (the content) for a request.
type AnswerFn = dyn Fn(&RecordedRequest) -> String + Send + Sync;

/// Configures a [`ChaosServer`].
pub struct ChaosBuilder {
    script: VecDeque<Reply>,
    default: Reply,
    answer: Option<Arc<AnswerFn>>,
    inject: Option<(f64, Vec<Fault>)>,
    seed: u64,
    timing: Timing,
    api_key: Option<String>,
}

impl std::fmt::Debug for ChaosBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosBuilder")
            .field("script", &self.script.len())
            .field("inject", &self.inject)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl ChaosBuilder {
    /// Replies served in order, before anything else.
    pub fn script(mut self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.script.extend(replies);
        self
    }

    /// The reply when the script is empty and no fault is injected ([`Reply::answer`] by default).
    pub fn default_reply(mut self, reply: Reply) -> Self {
        self.default = reply;
        self
    }

    /// How good answers are made: the content for a request. Without it, the good answer is a
    /// minimal instance of the request's JSON schema ([`example_for`]), or `{}`.
    pub fn answer(
        mut self,
        answer: impl Fn(&RecordedRequest) -> String + Send + Sync + 'static,
    ) -> Self {
        self.answer = Some(Arc::new(answer));
        self
    }

    /// Once the script is empty, answers each request with a fault drawn from `faults` with
    /// probability `rate` (0 to 1), otherwise with the default reply. The draws follow
    /// [`seed`](Self::seed).
    pub fn inject(mut self, rate: f64, faults: &[Fault]) -> Self {
        self.inject = Some((rate.clamp(0.0, 1.0), faults.to_vec()));
        self
    }

    /// Seeds the fault draws (0 by default), so a run can be repeated.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How long the `stall` fault sends nothing (5 minutes by default; tokio time).
    pub fn stall_for(mut self, d: Duration) -> Self {
        self.timing.stall = d;
        self
    }

    /// How long `slow_first_byte` waits before answering (2 seconds by default; tokio time).
    pub fn slow_first_byte(mut self, d: Duration) -> Self {
        self.timing.slow_first_byte = d;
        self
    }

    /// Answers 401 to requests that do not carry `key` (as `Authorization: Bearer` or
    /// `x-api-key`), without consuming the script. The key itself is never recorded.
    pub fn require_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Binds 127.0.0.1 on a free port and starts serving on the current tokio runtime.
    pub async fn start(self) -> io::Result<ChaosServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            script: Mutex::new(self.script),
            default: self.default,
            answer: self.answer,
            inject: self.inject,
            rng: Mutex::new(fastrand::Rng::with_seed(self.seed)),
            requests: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
            timing: self.timing,
            api_key: self.api_key,
        });
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(ChaosServer { addr, state, task })
    }
}

struct State {
    script: Mutex<VecDeque<Reply>>,
    default: Reply,
    answer: Option<Arc<AnswerFn>>,
    inject: Option<(f64, Vec<Fault>)>,
    rng: Mutex<fastrand::Rng>,
    requests: Mutex<Vec<RecordedRequest>>,
    counter: AtomicU64,
    timing: Timing,
    api_key: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    /// The reply for the next request: the script's, an injected fault, or the default.
    fn next_reply(&self) -> Reply {
        if let Some(r) = lock(&self.script).pop_front() {
            return r;
        }
        if let Some((rate, faults)) = &self.inject {
            let mut rng = lock(&self.rng);
            if !faults.is_empty() && rng.f64() < *rate {
                return Reply::fault(faults[rng.usize(..faults.len())]);
            }
        }
        self.default.clone()
    }

    fn good_answer(&self, req: &RecordedRequest) -> String {
        match &self.answer {
            Some(f) => f(req),
            None => req
                .schema()
                .map_or_else(|| "{}".to_owned(), |s| example_for(s).to_string()),
        }
    }
}

/// A running chaos server. Stops (closing every connection) when dropped.
pub struct ChaosServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ChaosServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ChaosServer {
    /// A builder.
    pub fn builder() -> ChaosBuilder {
        ChaosBuilder {
            script: VecDeque::new(),
            default: Reply::answer(),
            answer: None,
            inject: None,
            seed: 0,
            timing: Timing {
                stall: Duration::from_secs(300),
                slow_first_byte: Duration::from_secs(2),
            },
            api_key: None,
        }
    }

    /// A server with an empty script that serves good answers.
    pub async fn start() -> io::Result<ChaosServer> {
        ChaosServer::builder().start().await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The server's root, `http://127.0.0.1:PORT` (the Anthropic base URL).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Appends replies to the script.
    pub fn push(&self, reply: Reply) {
        lock(&self.state.script).push_back(reply);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        lock(&self.state.requests).len()
    }

    /// How many scripted replies are left.
    pub fn script_len(&self) -> usize {
        lock(&self.state.script).len()
    }

    /// Stops the server and waits until it has.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for ChaosServer {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every open connection.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(serve(stream, state.clone()));
            }
            Err(e) => {
                tracing::debug!(error = %e, "chaos server: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serves one request on one connection (every response says `connection: close`).
async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let request = match wire::read_request(&mut stream).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            let body = format!("{{\"error\":{{\"message\":\"chaos: {e}\"}}}}");
            let _ = stream.write_all(&wire::head(400, &[], body.len())).await;
            let _ = stream.write_all(body.as_bytes()).await;
            return;
        }
    };
    let mut recorded = request.record();
    let authorized = state.api_key.as_deref().is_none_or(|k| request.has_key(k));
    let reply = if authorized {
        state.next_reply()
    } else {
        let body = if recorded.is_anthropic() {
            r#"{"type":"error","error":{"type":"authentication_error","message":"chaos: invalid x-api-key"}}"#
        } else {
            r#"{"error":{"message":"chaos: incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#
        };
        Reply::status(401, body)
    };
    recorded.fault = reply.as_fault();
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let good = |r: &RecordedRequest| state.good_answer(r);
    let action = reply::plan(&reply, &recorded, &good, n, &state.timing);
    lock(&state.requests).push(recorded);
    match action {
        Action::Reset => {
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Action::Stall(d) => {
            tokio::time::sleep(d).await;
        }
        Action::Send {
            head,
            body,
            cut,
            delay,
        } => {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            let body = match cut {
                Some(n) => &body[..n.min(body.len())],
                None => &body[..],
            };
            if stream.write_all(&head).await.is_ok() && stream.write_all(body).await.is_ok() {
                let _ = stream.flush().await;
                let _ = stream.shutdown().await;
            }
        }
    }
}
