//! The HTTP client the OTLP exporters send through: the workspace's reqwest on a thread of its own.
//!
//! The SDK's batch span processor and periodic metric reader export from their own threads,
//! outside any tokio runtime, and block on the export. An async client needs a runtime, so this
//! one keeps a current-thread runtime on a dedicated thread and hands requests to it over a
//! channel: exports work the same whether the application runs tokio, another runtime, or none,
//! and no second HTTP stack (or TLS library) is compiled in for telemetry.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<Result<Response<Bytes>, HttpError>>;

/// Sends OTLP requests with reqwest from a background thread.
#[derive(Debug, Clone)]
pub(super) struct ExportClient {
    jobs: mpsc::UnboundedSender<(Request<Bytes>, Reply)>,
}

impl ExportClient {
    /// Starts the thread. It ends when every clone of the client is dropped (at provider shutdown).
    pub(super) fn spawn(timeout: Duration) -> std::io::Result<Self> {
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
                runtime.block_on(async move {
                    while let Some((request, reply)) = rx.recv().await {
                        let client = client.clone();
                        tokio::spawn(async move {
                            let _ = reply.send(send(&client, request).await);
                        });
                    }
                });
            })?;
        Ok(ExportClient { jobs })
    }
}

async fn send(
    client: &reqwest::Client,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpError> {
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
    Ok(builder.body(body)?)
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((request, reply))
            .map_err(|_| "the OTLP export thread has stopped")?;
        answer
            .await
            .map_err(|_| "the OTLP export thread dropped the request")?
    }
}
