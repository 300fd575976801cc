//! Context plans: budgets, the truncation policies, what the report says, and determinism over
//! shuffled insertion orders (a property test).

use harness_core::context::{
    ContextError, ContextPlan, Document, Estimator, Fill, Section, SectionKind, TokenCounter,
    Truncate,
};
use harness_core::memory::{Summary, Turn};
use harness_core::provider::{Message, Role};
use proptest::prelude::*;

/// One token per whitespace-separated word: easy to reason about in tests.
pub(crate) struct Words;

impl TokenCounter for Words {
    fn name(&self) -> String {
        "words".into()
    }
    fn count(&self, text: &str) -> u32 {
        text.split_whitespace().count() as u32
    }
}

pub(crate) static SUPPORT: ContextPlan = ContextPlan::new(
    "support",
    "1",
    &[
        Section::required("system", SectionKind::System),
        Section::optional(
            "docs",
            SectionKind::Documents,
            2,
            Truncate::DropLowestRanked,
        )
        .with_budget(60),
        Section::optional("history", SectionKind::History, 1, Truncate::Summarise),
        Section::required("question", SectionKind::UserInput),
    ],
    20,
);

fn words(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| format!("{tag}{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn turn(seq: u64, n: usize) -> Turn {
    Turn {
        seq,
        messages: vec![
            Message::user(words(n, &format!("u{seq}-"))),
            Message::assistant(words(n, &format!("a{seq}-"))),
        ],
        author: None,
        at_ms: 0,
    }
}

fn doc(id: &str, score: f64, n: usize) -> Document {
    Document {
        id: id.into(),
        text: words(n, id),
        score,
        source: "kb".into(),
    }
}

#[test]
fn required_sections_that_do_not_fit_are_an_error_naming_them() {
    let fill = Fill::new()
        .text("system", words(50, "s"))
        .text("question", words(40, "q"));
    let err = SUPPORT.assemble(fill, &Words, 100).unwrap_err();
    match &err {
        ContextError::RequiredOverBudget {
            required,
            budget,
            detail,
            ..
        } => {
            assert_eq!((*required, *budget), (50 + 4 + 40 + 4, 80));
            assert_eq!(detail, "system 54, question 44");
        }
        other => panic!("{other}"),
    }
    let err = SUPPORT.assemble(Fill::new(), &Words, 20).unwrap_err();
    assert!(matches!(err, ContextError::NoRoom { .. }), "{err}");
}

#[test]
fn history_drops_whole_oldest_turns_and_keeps_the_newest_contiguous() {
    static PLAN: ContextPlan = ContextPlan::new(
        "h",
        "1",
        &[Section::optional(
            "history",
            SectionKind::History,
            1,
            Truncate::DropOldestTurns,
        )],
        0,
    );
    // Each turn: 2 messages × (5 words + 4) = 18 tokens. 100 tokens hold 5 turns.
    let turns: Vec<Turn> = (1..=8).map(|s| turn(s, 5)).collect();
    let a = PLAN
        .assemble(Fill::new().history("history", &turns, None), &Words, 100)
        .unwrap();
    let h = &a.report.sections[0];
    assert_eq!(h.kept, ["turn 4", "turn 5", "turn 6", "turn 7", "turn 8"]);
    assert_eq!(
        h.cut.iter().map(|c| c.item.as_str()).collect::<Vec<_>>(),
        ["turn 1", "turn 2", "turn 3"]
    );
    assert_eq!(a.messages.len(), 10, "turns are kept whole");
    assert_eq!(a.messages[0].role, Role::User);
    assert!(a.messages[0].content.starts_with("u4-"));
    assert_eq!(a.report.used, 90);
    assert!(a.report.used <= a.report.budget);
    assert_eq!(
        a.report.needs_summary_through, None,
        "DropOldestTurns never asks for one"
    );
}

#[test]
fn a_summary_replaces_dropped_turns_only_when_it_covers_them() {
    let turns: Vec<Turn> = (1..=8).map(|s| turn(s, 5)).collect();
    let base = Fill::new()
        .text("system", "be brief")
        .text("question", "why");
    // Budget 200 − 20 = 180: system 6 + question 5 = 11 required, history has 169.
    let uncovered = SUPPORT
        .assemble(base.clone().history("history", &turns, None), &Words, 130)
        .unwrap();
    // 130 − 20 − 11 = 99 for history: 5 turns (90).
    let h = &uncovered.report.sections[2];
    assert_eq!(h.kept.len(), 5);
    assert_eq!(uncovered.report.needs_summary_through, Some(3));
    // The summary's own 14 tokens leave room for 4 turns, so it must cover turns 1–4.
    let summary = Summary {
        through: 4,
        text: "the customer asked about refunds".into(),
        at_ms: 0,
    };
    let covered = SUPPORT
        .assemble(
            base.clone().history("history", &turns, Some(&summary)),
            &Words,
            130,
        )
        .unwrap();
    let h = &covered.report.sections[2];
    assert_eq!(h.kept[0], "summary through turn 4");
    assert_eq!(&h.kept[1..], ["turn 5", "turn 6", "turn 7", "turn 8"]);
    assert_eq!(covered.report.needs_summary_through, None);
    assert!(covered.messages[1].content.contains("refunds"));
    // A summary that stops before the cut is not sent: the model would miss turns between.
    let stale = Summary {
        through: 3,
        ..summary.clone()
    };
    let a = SUPPORT
        .assemble(
            base.clone().history("history", &turns, Some(&stale)),
            &Words,
            130,
        )
        .unwrap();
    assert_eq!(a.report.needs_summary_through, Some(3));
    assert!(
        a.report.sections[2]
            .cut
            .iter()
            .any(|c| c.item == "summary through turn 3")
    );
    // Everything fits: no summary is sent, no turn is cut.
    let all = SUPPORT
        .assemble(
            base.history("history", &turns, Some(&summary)),
            &Words,
            1_000,
        )
        .unwrap();
    assert_eq!(all.report.sections[2].kept.len(), 8);
}

#[test]
fn documents_are_kept_by_rank_with_ties_by_id_and_within_their_budget() {
    let docs = vec![
        doc("b", 0.5, 10),
        doc("a", 0.5, 10),
        doc("top", 0.9, 10),
        doc("big", 0.8, 100),
        doc("low", 0.1, 10),
    ];
    let a = SUPPORT
        .assemble(
            Fill::new()
                .text("system", "s")
                .text("question", "q")
                .documents("docs", docs),
            &Words,
            4_000,
        )
        .unwrap();
    let d = &a.report.sections[1];
    // Budget 60: each small doc is 10 words + "[id] (kb)" 2 + 4 = 16 tokens; 3 fit.
    assert_eq!(d.allowed, 60);
    assert_eq!(d.kept, ["top", "a", "b"]);
    let cut: Vec<_> = d.cut.iter().map(|c| c.item.as_str()).collect();
    assert_eq!(cut, ["big", "low"]);
    assert!(d.kept_tokens <= 60);
}

#[test]
fn a_long_text_loses_its_middle_and_says_how_much() {
    static PLAN: ContextPlan = ContextPlan::new(
        "m",
        "1",
        &[
            Section::optional("log", SectionKind::ToolState, 1, Truncate::CutMiddle)
                .with_budget(50),
        ],
        0,
    );
    let text = words(200, "w");
    let a = PLAN
        .assemble(Fill::new().text("log", text.clone()), &Words, 1_000)
        .unwrap();
    let content = &a.messages[0].content;
    assert!(content.starts_with("w0 w1"), "{content}");
    assert!(content.ends_with("w199"), "{content}");
    assert!(content.contains("characters cut"), "{content}");
    let s = &a.report.sections[0];
    assert!(
        s.kept_tokens <= 50 && s.kept_tokens >= 40,
        "{}",
        s.kept_tokens
    );
    assert_eq!(s.cut[0].item, "log (middle)");
}

#[test]
fn higher_priority_sections_are_filled_first_and_all_or_nothing_sections_drop_whole() {
    static PLAN: ContextPlan = ContextPlan::new(
        "p",
        "1",
        &[
            Section::optional("second", SectionKind::Instructions, 2, Truncate::Never),
            Section::optional("first", SectionKind::ToolState, 1, Truncate::Never),
        ],
        0,
    );
    let fill = Fill::new()
        .text("second", words(30, "s"))
        .text("first", words(30, "f"));
    let a = PLAN.assemble(fill, &Words, 50).unwrap();
    assert_eq!(a.messages.len(), 1);
    assert!(a.messages[0].content.starts_with("f0"));
    assert_eq!(
        a.report.sections[0].cut[0].reason,
        "the section does not fit and may not be shortened"
    );
}

#[test]
fn bad_fills_are_errors() {
    let err = SUPPORT
        .assemble(Fill::new().text("nope", "x"), &Words, 1_000)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`nope` is filled but is not a section"),
        "{err}"
    );
    let err = SUPPORT
        .assemble(Fill::new().text("docs", "x"), &Words, 1_000)
        .unwrap_err();
    assert!(err.to_string().contains("wrong kind of content"), "{err}");
}

#[test]
fn the_plan_and_its_report_are_data() {
    let doc = SUPPORT.doc();
    assert!(
        doc.contains("| docs | Documents | priority 2 | 60 | DropLowestRanked |"),
        "{doc}"
    );
    let a = SUPPORT
        .assemble(
            Fill::new().text("system", "s").text("question", "q"),
            &Estimator::default(),
            8_192,
        )
        .unwrap();
    let json = serde_json::to_value(&a.report).unwrap();
    assert_eq!(json["plan"], "support");
    assert_eq!(json["sections"][0]["keep"], "required");
    assert_eq!(json["counter"], "estimate(3.5 B/token, +15%)");
    assert_eq!(a.report.stable_prefix_sha256.len(), 64);
    assert_ne!(a.report.stable_prefix_sha256, a.report.messages_sha256);
    let plan_json = serde_json::to_value(SUPPORT).unwrap();
    assert_eq!(plan_json["sections"][2]["truncate"], "summarise");
}

#[cfg(feature = "tiktoken")]
#[test]
fn tiktoken_budgets_count_real_tokens() {
    use harness_core::context::tokens::Tiktoken;
    let t = Tiktoken::o200k();
    let text = "The quick brown fox jumps over the lazy dog.";
    assert_eq!(t.count(text), 10);
    let a = SUPPORT
        .assemble(
            Fill::new().text("system", text).text("question", text),
            &t,
            8_192,
        )
        .unwrap();
    assert_eq!(a.report.used, 2 * (10 + 4));
}

fn shuffled<T: Clone>(items: &[T], order: &[usize]) -> Vec<T> {
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.sort_by_key(|&i| order.get(i).copied().unwrap_or(i));
    idx.into_iter().map(|i| items[i].clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The same content added in any order gives byte-identical messages and the same report.
    #[test]
    fn any_insertion_order_gives_byte_identical_messages(
        scores in proptest::collection::vec(0u8..4, 12),
        order in proptest::collection::vec(any::<usize>(), 12),
        turn_order in proptest::collection::vec(any::<usize>(), 10),
        text_first in any::<bool>(),
        window in 120u32..600,
    ) {
        let docs: Vec<Document> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| doc(&format!("d{i:02}"), f64::from(*s) / 4.0, 3 + i % 4))
            .collect();
        let turns: Vec<Turn> = (1..=10).map(|s| turn(s, 2 + (s as usize % 3))).collect();
        let build = |docs: Vec<Document>, turns: Vec<Turn>, text_first: bool| {
            let mut fill = Fill::new();
            if text_first {
                fill = fill.text("system", "sys").text("question", "q?");
            }
            fill = fill.documents("docs", docs).history("history", &turns, None);
            if !text_first {
                fill = fill.text("question", "q?").text("system", "sys");
            }
            SUPPORT.assemble(fill, &Words, window).unwrap()
        };
        let reference = build(docs.clone(), turns.clone(), true);
        let other = build(shuffled(&docs, &order), shuffled(&turns, &turn_order), text_first);
        prop_assert_eq!(
            serde_json::to_string(&reference.messages).unwrap(),
            serde_json::to_string(&other.messages).unwrap()
        );
        prop_assert_eq!(&reference.report, &other.report);
        prop_assert!(reference.report.used <= reference.report.budget);
    }
}
