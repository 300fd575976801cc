//! Failure-mode drills for the quickstart's tasks: each task is run once per fault class (and with
//! the provider down, and with a model that never answers validly) against the chaos server on
//! 127.0.0.1, and the table says what the harness did, how the call ended, and how long it took.
//!
//! The contract's durations are scaled so a drill takes seconds (see the table's first line);
//! `DrillOptions::new().real_time()` runs them as declared.
//!
//! ```sh
//! cargo run --example drill
//! ```

#[path = "support/tasks.rs"]
mod tasks;

use harness_core::testing::drill::{self, DrillOptions};
use tasks::{Sentiment, Triage, classify, triage};

#[tokio::main]
async fn main() {
    let review = vec![(
        "review",
        "Arrived broken, support never answered.".to_owned(),
    )];
    let report = drill::run::<Sentiment>(&classify::CONTRACT, review, DrillOptions::new()).await;
    println!("{report}");

    let email = vec![("email", "I was charged twice for order #1234.".to_owned())];
    let options = DrillOptions::new();
    let report = match triage::defaults() {
        Some(defaults) => {
            drill::run_with_defaults::<Triage>(&triage::CONTRACT, email, options, defaults).await
        }
        None => drill::run::<Triage>(&triage::CONTRACT, email, options).await,
    };
    println!("{report}");
}
