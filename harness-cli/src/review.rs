//! `harness review`: the review queue — list what waits for a person, show one item, approve or
//! reject it. The command records the decision; the program runs an approved call when it
//! resumes the run (at most once, through the queue's journal), and tells the model of a
//! rejection.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use harness_core::audit::reproduce::write_table;
use harness_core::review::sqlite::SqliteReviews;
use harness_core::review::{
    Decision, ReviewError, ReviewId, ReviewItem, ReviewStatus, ReviewStore, now_ms,
};

/// Exit status when the item does not exist.
const EXIT_NOT_FOUND: u8 = 1;
/// Exit status when the item was already decided the other way, or expired.
const EXIT_REFUSED: u8 = 3;
/// Exit status when the queue cannot be opened or read.
const EXIT_UNUSABLE: u8 = 2;

/// The review queue: approvals and escalations waiting for a person.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The queue's SQLite file (the program's `SqliteReviews::open` path); default: the
    /// `HARNESS_REVIEW_DB` environment variable.
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: ReviewCommand,
}

/// `harness review <command>`.
#[derive(Debug, Subcommand)]
enum ReviewCommand {
    /// Lists items, oldest first (pending ones by default). Exits 0, or 2 when the queue cannot
    /// be read.
    List {
        /// `pending`, `approved`, `rejected`, `expired`, `executing`, `executed`, `failed` or
        /// `all`.
        #[arg(long, default_value = "pending")]
        status: String,
        /// Print the items as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Prints one item as JSON: the exact call, its arguments hash, the transcript.
    Show {
        /// The item's id (`rv-...`).
        id: String,
    },
    /// Approves a pending item: its stored call runs when the program resumes the run. Exits 0
    /// (also when it was approved before), 1 when no item has the id, 3 when it was rejected or
    /// expired.
    Approve {
        /// The item's id (`rv-...`).
        id: String,
        /// Who approves.
        #[arg(long, default_value = "cli")]
        by: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
    },
    /// Rejects a pending item: the call never runs; the model is told, with the note. Exit
    /// codes as for `approve`.
    Reject {
        /// The item's id (`rv-...`).
        id: String,
        /// Who rejects.
        #[arg(long, default_value = "cli")]
        by: String,
        /// Why (the model sees it).
        #[arg(long)]
        note: String,
    },
}

/// Runs `harness review`.
pub fn run(args: ReviewArgs) -> ExitCode {
    let Some(db) = args
        .db
        .or_else(|| std::env::var_os("HARNESS_REVIEW_DB").map(PathBuf::from))
    else {
        eprintln!("harness review: say which queue: --db PATH (or HARNESS_REVIEW_DB)");
        return ExitCode::from(EXIT_UNUSABLE);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("harness review: cannot start a runtime: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    runtime.block_on(async move {
        let queue = match SqliteReviews::open(&db) {
            Ok(q) => q,
            Err(e) => return fail(&e),
        };
        match args.command {
            ReviewCommand::List { status, json } => list(&queue, &status, json).await,
            ReviewCommand::Show { id } => match item(&queue, &id).await {
                Ok(item) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&item).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            },
            ReviewCommand::Approve { id, by, note } => {
                let decision = Decision {
                    approve: true,
                    by,
                    note,
                };
                decide(&queue, &id, &decision).await
            }
            ReviewCommand::Reject { id, by, note } => {
                decide(&queue, &id, &Decision::reject(by, note)).await
            }
        }
    })
}

fn fail(e: &ReviewError) -> ExitCode {
    eprintln!("harness review: {e}");
    ExitCode::from(match e {
        ReviewError::NotFound(_) | ReviewError::InvalidId(_) => EXIT_NOT_FOUND,
        ReviewError::AlreadyDecided { .. } | ReviewError::Expired(_) => EXIT_REFUSED,
        _ => EXIT_UNUSABLE,
    })
}

async fn item(queue: &SqliteReviews, id: &str) -> Result<ReviewItem, ReviewError> {
    let id: ReviewId = id.parse()?;
    queue
        .get(&id)
        .await?
        .ok_or_else(|| ReviewError::NotFound(id.to_string()))
}

async fn decide(queue: &SqliteReviews, id: &str, decision: &Decision) -> ExitCode {
    let id: ReviewId = match id.parse() {
        Ok(id) => id,
        Err(e) => return fail(&e),
    };
    match queue.decide(&id, decision, now_ms()).await {
        Ok(item) => {
            println!("{}: {}", item.id, item.status);
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

async fn list(queue: &SqliteReviews, status: &str, json: bool) -> ExitCode {
    let status = match status {
        "all" => None,
        s => match s.parse::<ReviewStatus>() {
            Ok(s) => Some(s),
            Err(_) => {
                eprintln!(
                    "harness review list: unknown status `{s}`; use one of pending, approved, rejected, expired, executing, executed, failed, all"
                );
                return ExitCode::from(EXIT_UNUSABLE);
            }
        },
    };
    let items = match queue.list(status).await {
        Ok(items) => items,
        Err(e) => return fail(&e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
    } else if items.is_empty() {
        eprintln!(
            "no item is {}",
            status.map_or("stored", ReviewStatus::as_str)
        );
    } else {
        println!("{}", Table(&items, now_ms()));
    }
    ExitCode::SUCCESS
}

/// The items as a terminal table.
struct Table<'a>(&'a [ReviewItem], u64);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = [
            "ID",
            "KIND",
            "OWNER",
            "TOOL",
            "SCOPE",
            "STATUS",
            "AGE",
            "ARGUMENTS",
            "REASON",
        ]
        .map(str::to_owned);
        let rows: Vec<[String; 9]> = self
            .0
            .iter()
            .map(|i| {
                let (tool, args) = match &i.call {
                    Some(c) => (c.name.clone(), short(&arguments(c), 40)),
                    None => ("-".into(), "-".into()),
                };
                [
                    i.id.to_string(),
                    i.kind.as_str().into(),
                    i.owner.clone(),
                    tool,
                    i.scope.clone().unwrap_or_else(|| "-".into()),
                    i.status.to_string(),
                    age(self.1.saturating_sub(i.created_ms)),
                    args,
                    short(&i.reason, 48),
                ]
            })
            .collect();
        write_table(f, &header, &rows)
    }
}

fn arguments(call: &harness_core::provider::ToolCall) -> String {
    match &call.arguments {
        harness_core::provider::Arguments::Json(v) => v.to_string(),
        harness_core::provider::Arguments::Malformed { raw, .. } => raw.clone(),
    }
}

fn short(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max - 1).collect();
    cut + "…"
}

fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
