//! Usage and cost over a whole call, against a real server on 127.0.0.1 (the chaos server) that
//! reports cached and reasoning tokens the way OpenAI and Anthropic do: every attempt's tokens
//! count, failed ones included, each priced at its rates.

use harness_core::contract::{Action, Chain, FailureClass, InputSpec, TaskContract};
use harness_core::output::{FieldPath, LlmOutput, ValidationErrors};
use harness_core::provider::{Anthropic, OpenAiCompatible};
use harness_core::telemetry::pricing::{Price, PriceTable};
use harness_core::testing::fixtures::{ContractBuilder, output};
use harness_core::testing::{ChaosServer, Reply};
use harness_core::{Harness, Usage};
use serde_json::json;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Answer {
    label: String,
}

impl LlmOutput for Answer {
    const TYPE_NAME: &'static str = "Answer";
    const HAS_CONFIDENCE: bool = false;
    fn validate(&self, _: &FieldPath, _: &mut ValidationErrors) {}
}

const REASK: &[Chain] = &[Chain {
    class: FailureClass::InvalidOutput,
    steps: &[Action::Reask { times: 1 }],
}];

static TASK: TaskContract = ContractBuilder::new("label", output::<Answer>())
    .module("cost_tests")
    .model(Some("gpt-4o"))
    .system("You label.")
    .prompt("Text: {text}")
    .inputs(&[InputSpec {
        name: "text",
        rust_type: "&str",
    }])
    .chains(REASK)
    .build();

static CLAUDE: TaskContract = ContractBuilder::new("label_claude", output::<Answer>())
    .module("cost_tests")
    .model(Some("claude-sonnet-4-20250514"))
    .prompt("Text: {text}")
    .inputs(&[InputSpec {
        name: "text",
        rust_type: "&str",
    }])
    .chains(REASK)
    .build();

fn completion(content: &str, usage: serde_json::Value) -> Reply {
    Reply::json(
        200,
        &json!({"id": "c", "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": usage}),
    )
}

fn inputs() -> Vec<(&'static str, String)> {
    vec![("text", "hello".to_owned())]
}

#[tokio::test]
async fn a_reasked_call_sums_and_prices_every_attempt_with_cache_and_reasoning_tokens() {
    let server = ChaosServer::builder()
        .script([
            // Not JSON: invalid output, billed all the same.
            completion(
                "no idea",
                json!({"prompt_tokens": 1000, "completion_tokens": 50,
                    "prompt_tokens_details": {"cached_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 20}}),
            ),
            completion(
                r#"{"label": "greeting"}"#,
                json!({"prompt_tokens": 1100, "completion_tokens": 10,
                    "prompt_tokens_details": {"cached_tokens": 1024}}),
            ),
        ])
        .start()
        .await
        .unwrap();
    let provider = OpenAiCompatible::builder(server.base_url())
        .build()
        .unwrap();
    let price = Price::per_million(2.50, 10.00).with_cache_read(1.25);
    let dir = std::env::temp_dir().join(format!("harness-cost-{}", std::process::id()));
    let trail = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&trail);
    let harness = Harness::builder()
        .provider("openai", provider)
        .prices(PriceTable::empty().with("gpt-4o", price))
        .observer(harness_core::audit::JsonlSink::open(&trail).unwrap())
        .build()
        .unwrap();
    let out = harness
        .run::<Answer>(&TASK, inputs(), None, None)
        .await
        .unwrap();
    assert_eq!(out.value().unwrap().label, "greeting");
    let report = &out.report;
    assert_eq!(report.attempts.len(), 2);
    assert_eq!(
        report.attempts[0].failure,
        Some(FailureClass::InvalidOutput)
    );
    assert_eq!(
        report.attempts[0].usage,
        Usage::new(1000, 50).with_reasoning(20)
    );
    assert_eq!(
        report.attempts[1].usage,
        Usage::new(1100, 10).with_cache(1024, 0)
    );
    assert_eq!(
        report.usage,
        Usage::new(2100, 60).with_cache(1024, 0).with_reasoning(20)
    );
    let table = harness_core::telemetry::pricing::PriceTable::empty().with("gpt-4o", price);
    let first = table.attempt_cost(&report.attempts[0]).unwrap();
    let second = table.attempt_cost(&report.attempts[1]).unwrap();
    // 1000 in + 50 out; then 76 uncached + 1024 cached in + 10 out.
    assert!((first - (1000.0 * 2.50 + 50.0 * 10.00) / 1e6).abs() < 1e-12);
    assert!((second - (76.0 * 2.50 + 1024.0 * 1.25 + 10.0 * 10.00) / 1e6).abs() < 1e-12);
    let total = report.cost_usd.expect("every attempt is priced");
    assert!((total - (first + second)).abs() < 1e-12, "{total}");
    // A record with cache and reasoning counts hashes as it is written.
    drop(harness);
    let verified = harness_core::audit::verify_jsonl(&trail).unwrap();
    assert!(verified.is_intact(), "{verified}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn anthropic_cache_tokens_reach_the_report_and_its_cost() {
    let message = |input: serde_json::Value| {
        Reply::json(
            200,
            &json!({"id": "m", "model": "claude-sonnet-4-20250514", "stop_reason": "tool_use",
                "content": [{"type": "tool_use", "id": "t", "name": "Answer", "input": input}],
                "usage": {"input_tokens": 10, "cache_creation_input_tokens": 2000,
                          "cache_read_input_tokens": 0, "output_tokens": 8}}),
        )
    };
    let server = ChaosServer::builder()
        .script([
            message(json!({"answer": "hi"})),
            message(json!({"label": "hi"})),
        ])
        .start()
        .await
        .unwrap();
    let provider = Anthropic::builder("k")
        .base_url(server.url())
        .build()
        .unwrap();
    let harness = Harness::builder()
        .provider("anthropic", provider)
        .build()
        .unwrap();
    let out = harness
        .run::<Answer>(&CLAUDE, inputs(), None, None)
        .await
        .unwrap();
    let report = &out.report;
    assert_eq!(report.attempts.len(), 2, "the first answer has no label");
    assert_eq!(report.usage, Usage::new(4020, 16).with_cache(0, 4000));
    // Default prices: claude-sonnet-4 3.00 in, 3.75 cache write, 15.00 out.
    let expected = (20.0 * 3.00 + 4000.0 * 3.75 + 16.0 * 15.00) / 1e6;
    let cost = report.cost_usd.unwrap();
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
}
