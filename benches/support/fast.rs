//! A fast loopback mock of the Chat Completions API: HTTP/1.1 keep-alive on 127.0.0.1, one fixed
//! response, no per-request work beyond finding the end of the request. It runs on the caller's
//! runtime, so with a current-thread runtime the client and the server share one core.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts the server on the current runtime; every request gets a completion whose content is
/// `content`.
pub async fn start(content: &str) -> SocketAddr {
    let body = serde_json::json!({
        "id": "chatcmpl-fast", "object": "chat.completion", "model": "smollm2-135m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    })
    .to_string();
    let response: &'static [u8] = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
    .leak();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, response));
        }
    });
    addr
}

/// Answers every request on one connection with `response`.
async fn serve(mut stream: TcpStream, response: &'static [u8]) {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        // Read until the headers end and the body (content-length) is in.
        let need = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let len = content_length(&buf[..end]);
                if buf.len() >= end + 4 + len {
                    break end + 4 + len;
                }
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        buf.drain(..need);
        if stream.write_all(response).await.is_err() {
            return;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> usize {
    let head = String::from_utf8_lossy(head);
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}
