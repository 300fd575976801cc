//! The HTTP client the OTLP exporters send through: the workspace's reqwest on a thread of its own.
//!
//! The SDK's batch span processor and periodic metric reader export from their own threads,
//! outside any tokio runtime, and block on the export. An async client needs a runtime, so this
//! one keeps a current-thread runtime on a dedicated thread and hands requests to it over a
//! channel: exports work the same whether the application runs tokio, another runtime, or none,
//! and no second HTTP stack (or TLS library) is compiled in for telemetry.
//!
//! Every answer passes through here, so this is where a failed export is seen with its URL and
//! status, and handed to the [`Reporter`] (which says it once). The thread has no tracing
//! subscriber: the HTTP stack's own spans and events never feed back into the export.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};
use tokio::sync::{mpsc, oneshot};

use super::report::{Cause, Reporter, Signal, transport_cause};

type Reply = oneshot::Sender<Result<Response<Bytes>, reqwest::Error>>;

/// Sends OTLP requests with reqwest from a background thread.
#[derive(Debug, Clone)]
pub(super) struct ExportClient {
    jobs: mpsc::UnboundedSender<(Request<Bytes>, Reply)>,
    signal: Signal,
    reporter: Arc<Reporter>,
}

impl ExportClient {
    /// Starts the thread, for spans; [`for_signal`](Self::for_signal) makes the metrics client.
    /// The thread ends when every clone of the client is dropped (at provider shutdown).
    pub(super) fn spawn(timeout: Duration, reporter: Arc<Reporter>) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(std::io::Error::other)?;
        let (jobs, mut rx) = mpsc::unbounded_channel::<(Request<Bytes>, Reply)>();
        std::thread::Builder::new()
            .name("harness-otlp-http".into())
            .spawn(move || {
                let _quiet =
                    tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
                runtime.block_on(async move {
                    while let Some((request, reply)) = rx.recv().await {
                        let client = client.clone();
                        tokio::spawn(async move {
                            let _ = reply.send(send(&client, request).await);
                        });
                    }
                });
            })?;
        Ok(ExportClient {
            jobs,
            signal: Signal::Spans,
            reporter,
        })
    }

    /// The same thread, for exports of `signal`.
    pub(super) fn for_signal(&self, signal: Signal) -> Self {
        ExportClient {
            signal,
            ..self.clone()
        }
    }

    fn report(&self, uri: &http::Uri, cause: Cause) {
        if let Ok(url) = reqwest::Url::parse(&uri.to_string()) {
            self.reporter.failed(self.signal, &url, cause);
        }
    }
}

async fn send(
    client: &reqwest::Client,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = Response::builder().status(response.status());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let body = response.bytes().await?;
    // A status and headers copied from a response that parsed are valid: this cannot fail.
    Ok(builder.body(body).unwrap_or_default())
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let uri = request.uri().clone();
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((request, reply))
            .map_err(|_| "the OTLP export thread has stopped")?;
        let result = answer
            .await
            .map_err(|_| "the OTLP export thread dropped the request")?;
        match result {
            Ok(response) => {
                if !response.status().is_success() {
                    self.report(&uri, Cause::Status(response.status().as_u16()));
                }
                Ok(response)
            }
            Err(e) => {
                self.report(&uri, Cause::Transport(transport_cause(&e)));
                Err(Box::new(e))
            }
        }
    }
}
