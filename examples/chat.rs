//! A support assistant with memory and retrieval, driven from the command line so scripts can use it:
//!
//! ```sh
//! cargo run --example chat -- --db PATH --session ID [--budget TOKENS] MESSAGE
//! ```
//!
//! Each run is one turn. The session (its turns, summaries and a typed state) lives in the SQLite
//! database at PATH, so the next run — another process — continues it; two runs at once on one
//! session never lose or fork a turn. The answer is grounded in a small knowledge base shipped
//! with the example (`examples/support/kb/`), indexed in the same database with SQLite's FTS5
//! full-text search and ranked by BM25. The knowledge base is a declared context source of the
//! `reply` task (`source(kb, budget = 400, limit = 3, ...)`): the harness asks it with the
//! question, keeps its best articles within 400 tokens, and when it fails or times out the
//! task's contract says what happens (here: try once more, then answer without it). The rest of
//! the prompt is built by a context plan within what is left of `--budget` tokens (default: the
//! model's window) after the sources' declared budgets, so the whole prompt plus the reply's
//! reserve stays within `--budget`:
//! system prompt and question are required; history keeps the newest whole turns and replaces
//! older ones with a stored summary (written by a harnessed task when turns first fall out of
//! the budget).
//!
//! It uses the process-wide harness from the environment (`OPENAI_BASE_URL`, `OPENAI_API_KEY`,
//! `HARNESS_MODEL`), the local model of `scripts/local-model.sh` otherwise. The plan's tokens are
//! counted by the local server's `/tokenize` when it is the target, by tiktoken for OpenAI
//! models, and by an estimator with a safety margin otherwise (the source's budget by the
//! estimator). It prints the reply on stdout, and on stderr what the context plan kept and cut
//! and what the knowledge base gave.

use std::path::PathBuf;
use std::process::ExitCode;

use harness_core::HarnessBuilder;
use harness_core::context::tokens::{LlamaCppCounter, Tiktoken};
use harness_core::context::{
    ContextPlan, ContextSource, Document, Estimator, Fill, Section, SectionKind, SourceError,
    SourceQuery, TokenCounter, Truncate, known_window,
};
use harness_core::memory::sqlite::SqliteMemory;
use harness_core::memory::{Memory, Session, SessionId};
use harness_core::prelude::*;
use harness_core::provider::BoxFuture;
use harness_core::provider::Message;

/// The knowledge base, compiled in so the example runs from any directory.
const KB: &[(&str, &str)] = &[
    ("account", include_str!("support/kb/account.md")),
    ("contact", include_str!("support/kb/contact.md")),
    ("password", include_str!("support/kb/password.md")),
    ("payment", include_str!("support/kb/payment.md")),
    ("refunds", include_str!("support/kb/refunds.md")),
    ("returns", include_str!("support/kb/returns.md")),
    ("shipping", include_str!("support/kb/shipping.md")),
    ("warranty", include_str!("support/kb/warranty.md")),
];

/// The prompt of one turn, in the order sent.
static PLAN: ContextPlan = ContextPlan::new(
    "support-chat",
    "1",
    &[
        Section::required("system", SectionKind::System),
        Section::optional("history", SectionKind::History, 1, Truncate::Summarise),
        Section::required("question", SectionKind::UserInput),
    ],
    320,
);

const SYSTEM: &str = "You are a support assistant for an online shop. Answer in one short sentence, \
using only the documents given. Reply with JSON only: {\"answer\": \"...\"}.";

/// What the session remembers besides its turns.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct ChatState {
    /// How many questions were answered.
    answered: u32,
    /// The knowledge-base articles used so far, in first-use order.
    articles: Vec<String>,
}

/// An answer to the customer.
#[derive(Debug, LlmOutput)]
struct Reply {
    /// The answer, in one or two sentences.
    #[llm(length(min = 1, max = 800))]
    answer: String,
}

/// Answers a customer's question from the assembled context and the knowledge base.
#[llm_task(
    model = "smollm2-135m",
    source(kb, budget = 400, limit = 3, timeout = "5s", section = "docs",
           on_unavailable = retry(1).then(proceed)),
    timeout = "90s",
    temperature = 0.0,
    max_tokens = 320,
    on_timeout = retry(1),
    on_rate_limited = retry(3),
    on_provider_error = retry(2).then(fail),
    on_invalid_output = reask(1).then(default(Reply::apology())),
    on_refusal = escalate,
)]
async fn reply(context: Vec<Message>) -> TaskResult<Reply> {
    context
}

impl Reply {
    /// What the customer reads when no valid answer came (the contract's default).
    fn apology() -> Reply {
        Reply {
            answer: "Sorry, I could not put an answer together. A colleague will reply by email."
                .into(),
        }
    }
}

/// Older turns of a conversation, summarised.
#[derive(Debug, LlmOutput)]
struct Recap {
    /// Two sentences: what the customer asked and what they were told.
    #[llm(length(min = 1, max = 600))]
    summary: String,
}

/// Summarises the turns that no longer fit the history budget.
#[llm_task(
    model = "smollm2-135m",
    system = "You summarise support conversations. Reply with JSON only: {\"summary\": \"...\"}.",
    prompt = "Summarise this conversation in two sentences:\n{transcript}",
    timeout = "90s",
    temperature = 0.0,
    max_tokens = 160,
    on_timeout = retry(1),
    on_rate_limited = retry(3),
    on_provider_error = retry(1).then(fail),
    on_invalid_output = reask(1).then(fail),
    on_refusal = fail,
)]
async fn recap(transcript: &str) -> TaskResult<Recap>;

struct Args {
    db: PathBuf,
    session: SessionId,
    budget: Option<u32>,
    message: String,
}

const USAGE: &str = "usage: chat --db PATH --session ID [--budget TOKENS] MESSAGE";

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut db, mut session, mut budget, mut message) = (None, None, None, Vec::new());
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--db" => db = Some(PathBuf::from(value("--db")?)),
            "--session" => {
                session = Some(
                    value("--session")?
                        .parse::<SessionId>()
                        .map_err(|e| e.to_string())?,
                )
            }
            "--budget" => {
                let v = value("--budget")?;
                budget = Some(
                    v.parse()
                        .map_err(|_| format!("--budget {v}: not a number"))?,
                )
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ => message.push(a),
        }
    }
    let message = message.join(" ");
    if message.trim().is_empty() {
        return Err(format!("no message given\n{USAGE}"));
    }
    Ok(Args {
        db: db.ok_or(format!("--db is required\n{USAGE}"))?,
        session: session.ok_or(format!("--session is required\n{USAGE}"))?,
        budget,
        message,
    })
}

/// The knowledge base in an FTS5 table of the chat database (created on first use).
fn open_index(db: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(
        "CREATE VIRTUAL TABLE IF NOT EXISTS kb USING fts5(id UNINDEXED, title, body, tokenize = 'porter');",
    )?;
    let n: i64 = conn.query_row("SELECT count(*) FROM kb", [], |r| r.get(0))?;
    if n != KB.len() as i64 {
        let tx = conn.unchecked_transaction()?;
        tx.execute("DELETE FROM kb", [])?;
        for (id, text) in KB {
            let (title, body) = text.split_once('\n').unwrap_or((text, ""));
            tx.execute(
                "INSERT INTO kb (id, title, body) VALUES (?1, ?2, ?3)",
                [id, title.trim_start_matches("# ").trim(), body.trim()],
            )?;
        }
        tx.commit()?;
    }
    Ok(conn)
}

/// The knowledge base as the `reply` task's declared source: an FTS5 search of the chat database.
struct KnowledgeBase {
    db: PathBuf,
}

impl ContextSource for KnowledgeBase {
    fn fetch<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<Vec<Document>, SourceError>> {
        let (db, question) = (self.db.clone(), query.text.clone());
        Box::pin(async move {
            // SQLite is blocking: off the async threads.
            tokio::task::spawn_blocking(move || {
                let conn = open_index(&db)?;
                search(&conn, &question)
            })
            .await
            .map_err(|e| SourceError::new(format!("search task: {e}")))?
            .map_err(|e| SourceError::new(format!("search: {e}")))
        })
    }
}

/// The articles matching any word of `question`, best first (BM25; FTS5's rank is lower-is-better).
fn search(conn: &rusqlite::Connection, question: &str) -> rusqlite::Result<Vec<Document>> {
    let terms: Vec<String> = question
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT id, title, body, bm25(kb) FROM kb WHERE kb MATCH ?1 ORDER BY bm25(kb), id LIMIT 5",
    )?;
    let rows = stmt.query_map([terms.join(" OR ")], |r| {
        Ok(Document {
            id: r.get(0)?,
            text: format!("{}: {}", r.get::<_, String>(1)?, r.get::<_, String>(2)?),
            score: -r.get::<_, f64>(3)?,
            source: "kb".into(),
        })
    })?;
    rows.collect()
}

/// The counter for the model the environment points at.
async fn counter_for(texts: &[&str]) -> Box<dyn TokenCounter> {
    let model = std::env::var("HARNESS_MODEL").unwrap_or_else(|_| "smollm2-135m".into());
    match std::env::var("OPENAI_BASE_URL") {
        Err(_) => {
            let local = LlamaCppCounter::new(harness_core::engine::DEFAULT_OPENAI_BASE_URL);
            match local.prime(texts.iter().copied()).await {
                Ok(()) => Box::new(local),
                Err(e) => {
                    eprintln!("tokens: {e}; estimating instead");
                    Box::new(Estimator::default())
                }
            }
        }
        Ok(_) => match Tiktoken::for_model(&model) {
            Some(t) => Box::new(t),
            None => Box::new(Estimator::default()),
        },
    }
}

fn transcript(session: &Session<ChatState>, through: u64) -> String {
    let mut out = String::new();
    if let Some(s) = session.summary() {
        out.push_str(&format!("(Earlier: {})\n", s.text));
    }
    let from = session.summary().map_or(0, |s| s.through);
    for t in session
        .turns
        .iter()
        .filter(|t| t.seq > from && t.seq <= through)
    {
        for m in &t.messages {
            out.push_str(&format!("{}: {}\n", m.role.as_str(), m.content));
        }
    }
    out
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let memory = Memory::new(SqliteMemory::open(&args.db).map_err(|e| e.to_string())?);
    // Index the knowledge base now (once per database), so a fetch only searches.
    drop(open_index(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?);
    let harness = HarnessBuilder::from_env()
        .map(|b| {
            b.source(
                "kb",
                KnowledgeBase {
                    db: args.db.clone(),
                },
            )
        })
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    let mut session = memory
        .open::<ChatState>(&args.session)
        .await
        .map_err(|e| e.to_string())?;

    let history_texts: Vec<String> = session
        .turns
        .iter()
        .flat_map(|t| t.messages.iter().map(|m| m.content.clone()))
        .collect();
    let mut texts: Vec<&str> = vec![SYSTEM, &args.message];
    texts.extend(history_texts.iter().map(String::as_str));
    let counter = counter_for(&texts).await;

    let fill = |session: &Session<ChatState>| {
        Fill::new()
            .text("system", SYSTEM)
            .text("question", args.message.clone())
            .history("history", &session.turns, session.summary())
    };
    // One budget for the whole prompt: the declared sources' documents (at most their declared
    // budgets) come out of it first, the plan gets the rest (and keeps the reply's reserve).
    let documents: u32 = reply::CONTRACT.sources.iter().map(|s| s.budget).sum();
    let total = args
        .budget
        .unwrap_or_else(|| known_window("smollm2-135m").unwrap_or(8_192));
    if total <= documents + PLAN.reply_reserve {
        return Err(format!(
            "--budget {total}: too small: up to {documents} tokens are kept for the knowledge base's \
             documents and {} for the reply",
            PLAN.reply_reserve
        ));
    }
    let window = total - documents;
    let assemble = |session: &Session<ChatState>| PLAN.assemble(fill(session), &*counter, window);
    let mut assembled = assemble(&session).map_err(|e| e.to_string())?;
    if let Some(through) = assembled.report.needs_summary_through {
        // Turns fell out of the budget with no summary covering them: write one, keep the turns.
        match recap::with(&harness, &transcript(&session, through)).await {
            Ok(outcome) => match outcome.resolution {
                Resolution::Answer(r) => {
                    memory
                        .summarise(&mut session, through, &r.summary)
                        .await
                        .map_err(|e| e.to_string())?;
                    assembled = assemble(&session).map_err(|e| e.to_string())?;
                }
                other => eprintln!("summary: not written ({other:?}); older turns are left out"),
            },
            Err(e) => eprintln!("summary: {e}; older turns are left out"),
        }
    }
    for s in &assembled.report.sections {
        eprintln!(
            "context: {:<8} kept {:>2} ({:>4} tokens) cut {:>2}",
            s.name,
            s.kept.len(),
            s.kept_tokens,
            s.cut.len()
        );
    }
    eprintln!(
        "context: {} of {} tokens ({}), {} reserved for the reply",
        assembled.report.used,
        assembled.report.budget,
        assembled.report.counter,
        assembled.report.reply_reserve
    );

    let plan_used = assembled.report.used;
    let result = reply::with(&harness, assembled.messages).await;
    let report = match &result {
        Ok(outcome) => &outcome.report,
        Err(e) => e.report(),
    };
    let used_docs: Vec<String> = report
        .sources
        .iter()
        .flat_map(|s| s.kept.iter().cloned())
        .collect();
    for s in &report.sources {
        eprintln!(
            "source: {:<8} kept {:>2} ({:>4} tokens) cut {:>2}{}",
            s.name,
            s.kept.len(),
            s.kept_tokens,
            s.cut.len(),
            s.action
                .as_deref()
                .map(|a| format!(", unavailable: {a}"))
                .unwrap_or_default()
        );
    }
    let documents_used: u32 = report.sources.iter().map(|s| s.kept_tokens).sum();
    eprintln!(
        "prompt: {} tokens (plan {plan_used} + documents {documents_used}) + {} reserved for the reply, within {total}",
        plan_used + documents_used,
        PLAN.reply_reserve
    );
    let answer = match &result {
        Ok(outcome) => match &outcome.resolution {
            Resolution::Answer(r) => Some(r.answer.clone()),
            Resolution::Escalated(e) => Some(format!("(handed to a person: {e})")),
            Resolution::Default { value, class } => {
                eprintln!("reply: no valid answer ({class}); sent the contract's default");
                Some(value.answer.clone())
            }
            other => Some(format!("({other:?})")),
        },
        Err(_) => None,
    };
    // The question is kept even when no answer came, so the next run sees it in the history.
    let mut turn = vec![Message::user(&args.message)];
    if let Some(answer) = &answer {
        println!("{answer}");
        turn.push(Message::assistant(answer));
    }
    memory
        .append::<ChatState>(&args.session, Some("support-chat"), |state| {
            if answer.is_some() {
                state.answered += 1;
            }
            for d in &used_docs {
                if !state.articles.contains(d) {
                    state.articles.push(d.clone());
                }
            }
            turn.clone()
        })
        .await
        .map_err(|e| e.to_string())?;
    if let Err(e) = result {
        return Err(format!(
            "no reply (the question is kept in the session): {e}"
        ));
    }
    Ok(())
}
