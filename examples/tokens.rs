//! Input tokens per call: the request harness sends for each quickstart task, in each mode, against
//! the same task sent by two reference clients, counted with tiktoken's o200k (OpenAI's current
//! tokenizer) and, when the local model of `scripts/local-model.sh` answers on 127.0.0.1:8089,
//! by its own `/tokenize`.
//!
//! ```sh
//! cargo run --example tokens            # the table; fails if harness sends more than a reference
//! cargo run --example tokens -- --bodies # and every request body
//! ```
//!
//! Every body is captured by a real HTTP server on 127.0.0.1 (the chaos server), not re-rendered:
//! harness's through its OpenAI-compatible provider (`json_schema` mode, and `PromptOnly` mode,
//! which is also what a server that rejects `json_schema` gets after the automatic downgrade);
//! the references' through reqwest. The references, given the task's own messages:
//!
//! - *plain* (an openai-SDK-like client): in `json_schema` mode the raw schemars schema in
//!   `response_format`; prompted, that schema as JSON after the system message.
//! - *instructor-like*: the schema, pretty-printed, in the system message with instructor's
//!   JSON-mode wording, and `response_format: json_object`, in both modes.
//!
//! A request's tokens: each message's content plus 4 tokens of framing, plus the
//! `response_format` object as JSON when it carries a schema (the server puts the schema in the
//! model's context).

use std::process::ExitCode;

use harness_core::context::TokenCounter;
use harness_core::context::tokens::{LlamaCppCounter, MESSAGE_OVERHEAD, Tiktoken};
use harness_core::provider::{OpenAiCompatible, StructuredOutput};
use harness_core::testing::{ChaosServer, Reply};
use harness_core::{Harness, LlmOutput};
use serde_json::{Value, json};

#[path = "support/tasks.rs"]
mod tasks;

use tasks::{Sentiment, Triage, classify, triage};

const REVIEW: &str = "Arrived broken and support never answered my emails. Never again.";
const EMAIL: &str =
    "I was charged twice for order #1234 this month, please refund one of the payments.";
const LOCAL: &str = "http://127.0.0.1:8089";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    JsonSchema,
    Prompted,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::JsonSchema => "json_schema",
            Mode::Prompted => "prompted",
        }
    }
}

/// One captured request.
struct Captured {
    task: &'static str,
    mode: Mode,
    client: &'static str,
    body: Value,
}

/// The first request harness sends for `task` in `mode`, as the server received it.
async fn harness_body(task: &'static str, mode: Mode) -> Result<Value, String> {
    let answer = match task {
        "classify" => r#"{"label": "Negative", "confidence": 0.9, "rationale": "Broken."}"#,
        _ => r#"{"category": "Billing", "urgency": 4, "summary": "double charge"}"#,
    };
    let server = ChaosServer::builder()
        .default_reply(Reply::json_content(answer))
        .start()
        .await
        .map_err(|e| format!("cannot start the capture server: {e}"))?;
    let structured = match mode {
        Mode::JsonSchema => StructuredOutput::JsonSchema,
        Mode::Prompted => StructuredOutput::PromptOnly,
    };
    let provider = OpenAiCompatible::builder(server.base_url())
        .structured_output(structured)
        .build()
        .map_err(|e| e.to_string())?;
    let harness = Harness::builder()
        .provider("capture", provider)
        .build()
        .map_err(|e| e.to_string())?;
    match task {
        "classify" => classify::with(&harness, REVIEW).await.map(|_| ()),
        _ => triage::with(&harness, EMAIL).await.map(|_| ()),
    }
    .map_err(|e| format!("{task}: {e}"))?;
    first_body(&server)
}

fn first_body(server: &ChaosServer) -> Result<Value, String> {
    server
        .requests()
        .into_iter()
        .next()
        .and_then(|r| r.body)
        .ok_or_else(|| "the capture server received no JSON body".to_owned())
}

/// Sends `body` to a fresh capture server with reqwest, and returns it as the server received it.
async fn sent(body: &Value) -> Result<Value, String> {
    let server = ChaosServer::builder()
        .start()
        .await
        .map_err(|e| e.to_string())?;
    reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).map_err(|e| e.to_string())?)
        .send()
        .await
        .map_err(|e| format!("sending a reference request: {e}"))?;
    first_body(&server)
}

/// The task's own messages (harness's `json_schema` body carries nothing else in them).
fn task_messages(harness_json_schema: &Value) -> Vec<Value> {
    harness_json_schema["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `messages` with `text` after the system message's content (or as one, first).
fn with_system_text(messages: &[Value], text: &str) -> Vec<Value> {
    let mut out = messages.to_vec();
    match out.iter_mut().find(|m| m["role"] == "system") {
        Some(system) => {
            let joined = format!("{}\n\n{text}", system["content"].as_str().unwrap_or(""));
            system["content"] = Value::String(joined);
        }
        None => out.insert(0, json!({"role": "system", "content": text})),
    }
    out
}

/// The references' bodies for one task and mode.
fn references(
    template: &Value,
    messages: &[Value],
    name: &str,
    schema: &Value,
    mode: Mode,
) -> Vec<(&'static str, Value)> {
    let mut plain = template.clone();
    match mode {
        Mode::JsonSchema => {
            plain["messages"] = Value::Array(messages.to_vec());
            plain["response_format"] = json!({"type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": false}});
        }
        Mode::Prompted => {
            let text = format!(
                "Respond with JSON that follows this JSON schema:\n{}",
                serde_json::to_string(schema).unwrap_or_default()
            );
            plain["messages"] = Value::Array(with_system_text(messages, &text));
        }
    }
    let mut instructor = template.clone();
    let text = format!(
        "As a genius expert, your task is to understand the content and provide the parsed objects \
         in json that match the following json_schema:\n\n{}\n\nMake sure to return an instance of \
         the JSON, not the schema itself",
        serde_json::to_string_pretty(schema).unwrap_or_default()
    );
    instructor["messages"] = Value::Array(with_system_text(messages, &text));
    instructor["response_format"] = json!({"type": "json_object"});
    vec![("plain", plain), ("instructor-like", instructor)]
}

/// The texts a request puts in the model's context: message contents, and the schema-bearing
/// `response_format` as JSON.
fn context_texts(body: &Value) -> (Vec<String>, Option<String>) {
    let messages = body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["content"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    let format = body
        .get("response_format")
        .filter(|f| f.get("json_schema").is_some())
        .map(|f| f.to_string());
    (messages, format)
}

fn count(counter: &dyn TokenCounter, body: &Value) -> u32 {
    let (messages, format) = context_texts(body);
    let m: u32 = messages
        .iter()
        .map(|t| counter.count(t) + MESSAGE_OVERHEAD)
        .sum();
    m + format.map_or(0, |f| counter.count(&f))
}

async fn count_local(local: &LlamaCppCounter, body: &Value) -> Option<u32> {
    let (messages, format) = context_texts(body);
    let mut n = 0;
    for t in messages {
        n += local.count_exact(&t).await.ok()? + MESSAGE_OVERHEAD;
    }
    if let Some(f) = format {
        n += local.count_exact(&f).await.ok()?;
    }
    Some(n)
}

async fn capture_all() -> Result<Vec<Captured>, String> {
    let tasks: [(&'static str, &str, Value); 2] = [
        (
            "classify",
            <Sentiment as LlmOutput>::TYPE_NAME,
            serde_json::to_value(schemars::schema_for!(Sentiment)).map_err(|e| e.to_string())?,
        ),
        (
            "triage",
            <Triage as LlmOutput>::TYPE_NAME,
            serde_json::to_value(schemars::schema_for!(Triage)).map_err(|e| e.to_string())?,
        ),
    ];
    let mut out = Vec::new();
    for (task, name, schema) in tasks {
        let enforced = harness_body(task, Mode::JsonSchema).await?;
        let messages = task_messages(&enforced);
        let mut template = enforced.clone();
        if let Some(obj) = template.as_object_mut() {
            obj.remove("response_format");
        }
        for mode in [Mode::JsonSchema, Mode::Prompted] {
            let body = match mode {
                Mode::JsonSchema => enforced.clone(),
                Mode::Prompted => harness_body(task, mode).await?,
            };
            out.push(Captured {
                task,
                mode,
                client: "harness",
                body,
            });
            for (client, reference) in references(&template, &messages, name, &schema, mode) {
                out.push(Captured {
                    task,
                    mode,
                    client,
                    body: sent(&reference).await?,
                });
            }
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> ExitCode {
    let show_bodies = std::env::args().any(|a| a == "--bodies");
    let captured = match capture_all().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let o200k = Tiktoken::o200k();
    let local = LlamaCppCounter::new(LOCAL);
    let local_up = local.count_exact("ping").await.is_ok();
    if !local_up {
        println!("(the local model at {LOCAL} does not answer: its column is left out)\n");
    }
    println!(
        "{:<9} {:<12} {:<16} {:>6} {:>6} {:>9}",
        "task", "mode", "client", "bytes", "o200k", "llama.cpp"
    );
    let mut rows = Vec::new();
    for c in &captured {
        let bytes = serde_json::to_vec(&c.body).map_or(0, |b| b.len());
        let tok = count(&o200k, &c.body);
        let llama = match local_up {
            true => count_local(&local, &c.body).await,
            false => None,
        };
        println!(
            "{:<9} {:<12} {:<16} {:>6} {:>6} {:>9}",
            c.task,
            c.mode.name(),
            c.client,
            bytes,
            tok,
            llama.map_or("-".to_owned(), |n| n.to_string())
        );
        rows.push((c.task, c.mode, c.client, tok, llama));
        if show_bodies {
            println!(
                "{}\n",
                serde_json::to_string_pretty(&c.body).unwrap_or_default()
            );
        }
    }
    // harness at or below both references, per task and mode, for each tokenizer.
    let mut worse = Vec::new();
    for (task, mode, client, tok, llama) in &rows {
        if *client != "harness" {
            continue;
        }
        for (t2, m2, other, tok2, llama2) in &rows {
            if t2 != task || m2 != mode || *other == "harness" {
                continue;
            }
            if tok > tok2 || matches!((llama, llama2), (Some(a), Some(b)) if a > b) {
                worse.push(format!("{task} {}: harness > {other}", mode.name()));
            }
        }
    }
    if worse.is_empty() {
        println!("\nharness sends the fewest input tokens for every task in every mode.");
        ExitCode::SUCCESS
    } else {
        println!(
            "\nharness sends more than a reference: {}",
            worse.join("; ")
        );
        ExitCode::FAILURE
    }
}
