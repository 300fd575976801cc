//! Context in calls: the assembly report and the named plan in call reports and audit records,
//! token-counted rate limits, local `tokenizer.json` files, and the hash of the bytes each
//! attempt sent.

use super::context::{SUPPORT, Words, turn};
use harness_core::context::{Fill, TokenCounter};
use harness_core::memory::Turn;
use harness_core::provider::{Message, Role};

/// A call whose context a plan assembled carries the plan's report into its `CallReport` and its
/// audit record, and the record still verifies.
#[cfg(feature = "testing")]
#[tokio::test]
async fn the_assembly_report_reaches_the_call_report_and_the_audit_record() {
    use harness_core::Harness;
    use harness_core::audit::{self, JsonlSink};
    use harness_core::testing::fixtures::{
        ContractBuilder, FnProvider, Ticket, output, temp_path, ticket_json,
    };

    static CONTRACT: harness_core::contract::TaskContract =
        ContractBuilder::new("planned", output::<Ticket>())
            .no_prompt()
            .build();
    let path = temp_path("planned.jsonl");
    let harness = Harness::builder()
        .provider(
            "fn",
            FnProvider::new(|_, _| Ok(ticket_json("billing", 2, 0.9))),
        )
        .observer(JsonlSink::open(&path).unwrap())
        .build()
        .unwrap();
    let turns: Vec<Turn> = (1..=8).map(|s| turn(s, 5)).collect();
    let assembled = SUPPORT
        .assemble(
            Fill::new()
                .text("system", "be brief")
                .text("question", "why")
                .history("history", &turns, None),
            &Words,
            130,
        )
        .unwrap();
    let sent = assembled.messages.clone();
    let outcome = harness
        .run::<Ticket>(&CONTRACT, Vec::new(), Some(assembled.into_context()), None)
        .await
        .unwrap();
    let ctx = outcome
        .report
        .context
        .as_ref()
        .expect("the report carries the assembly");
    assert_eq!(ctx["plan"], "support");
    assert_eq!(ctx["needs_summary_through"], 3);
    assert_eq!(ctx["sections"][2]["cut"][0]["item"], "turn 1");
    drop(harness);
    let records = audit::read_jsonl(&path).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].context.as_ref(), Some(ctx));
    assert!(records[0].hash_is_valid());
    assert!(audit::verify_jsonl(&path).unwrap().is_intact());
    // What was sent is what the plan assembled, in order (the schema goes to the server in
    // response_format, not into the messages).
    let recorded: Vec<(Role, String)> = records[0]
        .request
        .messages
        .iter()
        .map(|m| (m.role, m.content.clone().unwrap_or_default()))
        .collect();
    assert_eq!(recorded.len(), sent.len(), "{recorded:?}");
    for (r, m) in recorded.iter().zip(&sent) {
        assert_eq!(r.0, m.role);
        assert!(r.1.starts_with(&m.content), "{:?} vs {:?}", r.1, m.content);
    }
}

/// A task that names its plan has it in its contract, its docs and its audit records (name and
/// version); a task that names none writes no `plan` key, and both records verify in one chain.
#[cfg(feature = "testing")]
#[tokio::test]
async fn the_named_plan_is_in_the_contract_the_doc_and_the_audit_record() {
    use harness_core::Harness;
    use harness_core::audit::{self, JsonlSink, RecordedPlan};
    use harness_core::testing::fixtures::{
        ContractBuilder, FnProvider, Ticket, output, temp_path, ticket_json,
    };

    static PLANNED: harness_core::contract::TaskContract =
        ContractBuilder::new("planned", output::<Ticket>())
            .no_prompt()
            .plan(&SUPPORT)
            .build();
    static UNPLANNED: harness_core::contract::TaskContract =
        ContractBuilder::new("unplanned", output::<Ticket>())
            .no_prompt()
            .build();
    assert_eq!(PLANNED.plan, Some(&SUPPORT));
    let doc = PLANNED.doc().to_string();
    assert!(
        doc.contains("| context plan | `support` (version 1) |"),
        "{doc}"
    );
    assert!(doc.contains("| history | History | priority "), "{doc}");
    assert_eq!(PLANNED.to_json()["plan"]["name"], "support");
    assert!(UNPLANNED.to_json().get("plan").is_none());
    // The registry export lists it with the task (and only for a task that names one).
    let exported = harness_core::registry::TaskDoc::of(&PLANNED);
    assert_eq!(exported.plan.as_ref().unwrap()["version"], "1");
    assert_eq!(
        exported.plan.as_ref().unwrap()["sections"][2]["name"],
        "history"
    );
    assert!(
        harness_core::registry::TaskDoc::of(&UNPLANNED)
            .plan
            .is_none()
    );

    let path = temp_path("named-plan.jsonl");
    let harness = Harness::builder()
        .provider(
            "fn",
            FnProvider::new(|_, _| Ok(ticket_json("billing", 2, 0.9))),
        )
        .observer(JsonlSink::open(&path).unwrap())
        .build()
        .unwrap();
    for contract in [&PLANNED, &UNPLANNED] {
        let assembled = SUPPORT
            .assemble(
                Fill::new()
                    .text("system", "be brief")
                    .text("question", "why"),
                &Words,
                130,
            )
            .unwrap();
        harness
            .run::<Ticket>(contract, Vec::new(), Some(assembled.into_context()), None)
            .await
            .unwrap();
    }
    drop(harness);
    let records = audit::read_jsonl(&path).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0].plan,
        Some(RecordedPlan {
            name: "support".into(),
            version: "1".into()
        })
    );
    assert_eq!(records[1].plan, None);
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        lines[0].contains(r#""plan":{"name":"support","version":"1"}"#),
        "{}",
        lines[0]
    );
    assert!(!lines[1].contains(r#""plan":{"#), "{}", lines[1]);
    assert!(records.iter().all(|r| r.hash_is_valid()));
    assert!(audit::verify_jsonl(&path).unwrap().is_intact());
}

/// The tokens-per-minute limit counts a request with the harness's token counter when one is set,
/// instead of a token per 4 bytes.
#[cfg(feature = "testing")]
#[tokio::test(start_paused = true)]
async fn rate_limits_count_with_the_configured_counter() {
    use harness_core::Harness;
    use harness_core::recovery::{LimitConfig, RecoveryConfig};
    use harness_core::testing::fixtures::{
        ContractBuilder, FnProvider, Ticket, output, ticket_json,
    };

    /// Says every text is 600 tokens: two messages are over a 1,000-token minute.
    struct Heavy;
    impl TokenCounter for Heavy {
        fn name(&self) -> String {
            "heavy".into()
        }
        fn count(&self, _: &str) -> u32 {
            600
        }
    }
    static CONTRACT: harness_core::contract::TaskContract =
        ContractBuilder::new("limited", output::<Ticket>())
            .params(None, Some(10), None)
            .build();
    let harness = |counter: Option<Heavy>| {
        let mut b = Harness::builder()
            .provider(
                "fn",
                FnProvider::new(|_, _| Ok(ticket_json("billing", 2, 0.9))),
            )
            .recovery(
                RecoveryConfig::default()
                    .limits_for("fn", LimitConfig::NONE.tokens_per_minute(1_000).shed()),
            );
        if let Some(c) = counter {
            b = b.token_counter(c);
        }
        b.build().unwrap()
    };
    let inputs = || vec![("input", "a short ticket".to_owned())];
    // By a token per 4 bytes, two short requests are far below 1,000 tokens.
    let plain = harness(None);
    for _ in 0..2 {
        assert!(
            plain
                .run::<Ticket>(&CONTRACT, inputs(), None, None)
                .await
                .is_ok()
        );
    }
    // Counted by the counter, the first fills the minute (its excess is carried as debt) and the
    // second is shed before anything is sent (the clock is paused: nothing refills).
    let heavy = harness(Some(Heavy));
    assert!(
        heavy
            .run::<Ticket>(&CONTRACT, inputs(), None, None)
            .await
            .is_ok()
    );
    let counted = heavy
        .run::<Ticket>(&CONTRACT, inputs(), None, None)
        .await
        .unwrap_err();
    assert_eq!(format!("{:?}", counted.kind()), "RateLimited", "{counted}");
    assert!(
        counted.attempts().iter().all(|a| a.raw.is_none()),
        "nothing was sent"
    );
}

/// A byte-level BPE `tokenizer.json` in Hugging Face's format (the shape GPT-2, Llama 3, Qwen and
/// SmolLM ship), written to a real file: its vocabulary knows "the" and "fox" as one token each
/// and every other byte alone.
#[cfg(feature = "tokenizers")]
fn write_tokenizer_json(dir: &std::path::Path) -> std::path::PathBuf {
    // Byte-level BPE maps bytes to printable characters (space → 'Ġ'); the merges build "the",
    // "Ġthe", "fox" and "Ġfox".
    let mut vocab = serde_json::Map::new();
    let mut add = |token: &str| {
        let id = vocab.len();
        vocab.insert(token.to_owned(), serde_json::json!(id));
    };
    for c in "abcdefghijklmnopqrstuvwxyzTQ.,!?0123456789".chars() {
        add(&c.to_string());
    }
    for t in ["Ġ", "th", "the", "Ġthe", "fo", "fox", "Ġfox"] {
        add(t);
    }
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true },
        "post_processor": null,
        "decoder": { "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true },
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "vocab": vocab,
            "merges": ["t h", "th e", "Ġ the", "f o", "fo x", "Ġ fox"]
        }
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    path
}

#[cfg(feature = "tokenizers")]
#[test]
fn a_local_tokenizer_json_counts_exactly_and_bad_files_are_typed_errors() {
    use harness_core::context::TokenCounter;
    use harness_core::context::tokens::HfTokenizer;

    let dir = std::env::temp_dir().join(format!("harness-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = write_tokenizer_json(&dir);
    let counter = HfTokenizer::from_file(&path).unwrap();
    // "the fox" → [the][Ġfox] = 2; "the quick fox" → the, Ġ, q,u,i,c,k, Ġfox = 8.
    assert_eq!(counter.count("the fox"), 2);
    assert_eq!(counter.count("the quick fox"), 8);
    assert_eq!(counter.count(""), 0);
    assert!(
        counter.name().ends_with("tokenizer.json"),
        "{}",
        counter.name()
    );
    // The message framing is added once per message.
    let m = Message::user("the fox");
    assert_eq!(
        counter.count_message(&m),
        2 + harness_core::context::tokens::MESSAGE_OVERHEAD
    );

    // A missing file, a file that is not JSON, and JSON that is not a tokenizer: typed errors
    // naming the file, no panic.
    let missing = HfTokenizer::from_file(dir.join("absent.json"))
        .err()
        .unwrap();
    assert!(missing.path.ends_with("absent.json"), "{missing}");
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, b"\x00\xffnot json").unwrap();
    let e = HfTokenizer::from_file(&garbage).err().unwrap();
    assert!(e.reason.contains("not a tokenizer.json"), "{e}");
    let wrong = dir.join("wrong.json");
    std::fs::write(&wrong, br#"{"model": {"type": "Nope"}}"#).unwrap();
    let e = HfTokenizer::from_file(&wrong).err().unwrap();
    assert!(e.to_string().contains("wrong.json"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Every attempt records the SHA-256 of the exact bytes the server received and of the stable
/// prefix: two questions after the same system prompt and history share the prefix hash.
#[cfg(feature = "testing")]
#[tokio::test]
async fn every_attempt_records_the_hash_of_the_bytes_sent_and_of_its_stable_prefix() {
    use harness_core::Harness;
    use harness_core::audit::{self, JsonlSink};
    use harness_core::context::Context;
    use harness_core::provider::OpenAiCompatible;
    use harness_core::testing::fixtures::{
        ContractBuilder, Ticket, output, temp_path, ticket_json,
    };
    use harness_core::testing::{ChaosServer, Reply};

    static CONTRACT: harness_core::contract::TaskContract =
        ContractBuilder::new("wired", output::<Ticket>())
            .no_prompt()
            .build();
    let server = ChaosServer::builder()
        .default_reply(Reply::json_content(ticket_json("shipping", 2, 0.9)))
        .start()
        .await
        .unwrap();
    let path = temp_path("wired.jsonl");
    let harness = Harness::builder()
        .provider(
            "openai",
            OpenAiCompatible::builder(server.base_url())
                .build()
                .unwrap(),
        )
        .observer(JsonlSink::open(&path).unwrap())
        .build()
        .unwrap();
    let ask = |question: &str| {
        Context::new()
            .system("You file support tickets.")
            .user("My order is late.")
            .assistant("Sorry to hear that.")
            .user(question)
    };
    let mut wires = Vec::new();
    for q in ["Where is it?", "Can I cancel it?"] {
        let outcome = harness
            .run::<Ticket>(&CONTRACT, Vec::new(), Some(ask(q)), None)
            .await
            .unwrap();
        let attempt = &outcome.report.attempts[0];
        wires.push(
            attempt
                .wire
                .clone()
                .expect("the attempt records what it sent"),
        );
    }
    let received = server.requests();
    assert_eq!(received.len(), 2);
    for (wire, req) in wires.iter().zip(&received) {
        assert_eq!(
            wire.body_sha256, req.body_sha256,
            "the hash is of the exact bytes"
        );
        assert_eq!(wire.body_bytes, req.body_len);
        assert_eq!(wire.prefix_sha256.len(), 64);
        assert_ne!(wire.prefix_sha256, wire.body_sha256);
    }
    assert_ne!(wires[0].body_sha256, wires[1].body_sha256);
    assert_eq!(
        wires[0].prefix_sha256, wires[1].prefix_sha256,
        "same system prompt, schema and history: same cacheable prefix"
    );
    drop(harness);
    let records = audit::read_jsonl(&path).unwrap();
    assert_eq!(records[0].attempts[0].wire.as_ref(), Some(&wires[0]));
    assert!(audit::verify_jsonl(&path).unwrap().is_intact());
}
