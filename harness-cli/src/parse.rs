//! `harness parse`: reads a model's answer on stdin and prints the JSON value the engine would
//! use, with the repairs it took, or says why the answer is rejected.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use harness_core::output::SchemaValidator;
use harness_core::output::parse::{self, ParseLimits, RepairKind, RepairSet};

/// Exit code of an answer that is rejected.
const REJECTED: u8 = 2;
/// Exit code when the command cannot run.
const FAILED: u8 = 1;

/// Finds, repairs and checks the JSON value in a model's answer read on stdin.
///
/// Prints the value on stdout and each repair on stderr, one per line. A rejected answer (no
/// JSON, cut off, too large or deep, or not fitting the schema) exits with 2 and the reasons on
/// stderr.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The JSON schema the value must fit.
    #[arg(long, value_name = "FILE")]
    schema: PathBuf,
    /// The largest answer accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = ParseLimits::default().max_bytes)]
    max_bytes: usize,
    /// The deepest nesting of arrays and objects accepted.
    #[arg(long, value_name = "LEVELS", default_value_t = ParseLimits::default().max_depth)]
    max_depth: usize,
    /// Prints the value indented.
    #[arg(long)]
    pretty: bool,
    /// Also prints, on stderr, every reading considered and why one was chosen or none.
    #[arg(long)]
    explain: bool,
    /// A repair kind not to accept (`closed_truncated`, `coerced`, ...); may be repeated.
    #[arg(long, value_name = "KIND", value_parser = repair_kind)]
    deny: Vec<RepairKind>,
}

fn repair_kind(name: &str) -> Result<RepairKind, String> {
    RepairKind::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = RepairKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown repair kind; expected one of {}", names.join(", "))
    })
}

/// Runs `harness parse`.
pub fn run(args: &Args) -> ExitCode {
    match check(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Rejected(reasons)) => {
            let mut err = io::stderr().lock();
            for line in reasons {
                let _ = writeln!(err, "{line}");
            }
            ExitCode::from(REJECTED)
        }
        Err(Stop::Failed(reason)) => {
            let _ = writeln!(io::stderr(), "error: {reason}");
            ExitCode::from(FAILED)
        }
    }
}

enum Stop {
    /// The answer is not usable: one line per reason.
    Rejected(Vec<String>),
    /// The command could not run.
    Failed(String),
}

fn check(args: &Args) -> Result<(), Stop> {
    let schema = load_schema(args)?;
    let limits = ParseLimits {
        max_bytes: args.max_bytes,
        max_depth: args.max_depth,
        ..ParseLimits::DEFAULT
    }
    .denying(RepairSet::of(&args.deny));
    let answer = read_answer(limits.max_bytes)?;
    let result = if args.explain {
        let explanation = parse::explain(&answer, &schema, &limits);
        let _ = writeln!(io::stderr(), "{explanation}");
        explanation.result
    } else {
        parse::parse(&answer, &schema, &limits)
    };
    let parsed = result.map_err(|e| Stop::Rejected(vec![format!("rejected: {e}")]))?;
    {
        let mut err = io::stderr().lock();
        for repair in &parsed.repairs {
            let _ = writeln!(err, "repaired: {repair} [{}]", repair.kind());
        }
    }
    let errors = schema.errors(&parsed.value);
    if !errors.is_empty() {
        let mut reasons = vec!["rejected: the value does not fit the schema:".to_owned()];
        reasons.extend(errors.iter().map(|e| format!("  - {e}")));
        return Err(Stop::Rejected(reasons));
    }
    let json = if args.pretty {
        serde_json::to_string_pretty(&parsed.value)
    } else {
        serde_json::to_string(&parsed.value)
    }
    .map_err(|e| Stop::Failed(format!("cannot print the value: {e}")))?;
    writeln!(io::stdout(), "{json}").map_err(|e| Stop::Failed(format!("cannot write: {e}")))
}

fn load_schema(args: &Args) -> Result<SchemaValidator, Stop> {
    let shown = args.schema.display();
    let text = std::fs::read_to_string(&args.schema)
        .map_err(|e| Stop::Failed(format!("cannot read the schema {shown}: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Stop::Failed(format!("the schema {shown} is not JSON: {e}")))?;
    let schema = SchemaValidator::new(json);
    if let Some(e) = schema.compile_error() {
        return Err(Stop::Failed(format!(
            "the schema {shown} cannot be used: {e}"
        )));
    }
    Ok(schema)
}

/// Reads stdin, at most `max_bytes` (plus one, to tell that there was more).
fn read_answer(max_bytes: usize) -> Result<String, Stop> {
    let mut bytes = Vec::new();
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    io::stdin()
        .lock()
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| Stop::Failed(format!("cannot read the answer on stdin: {e}")))?;
    if bytes.len() > max_bytes {
        return Err(Stop::Rejected(vec![format!(
            "rejected: the answer is more than the {max_bytes} bytes accepted"
        )]));
    }
    String::from_utf8(bytes).map_err(|e| {
        Stop::Rejected(vec![format!(
            "rejected: the answer is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )])
    })
}
