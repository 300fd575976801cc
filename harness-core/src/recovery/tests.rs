use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::provider::{ChatResponse, ProviderError, Usage};

const FAST: Duration = Duration::from_millis(50);

fn failing(class: FailureClass) -> AttemptResult {
    AttemptResult::Failure {
        class,
        latency: FAST,
    }
}

fn ok() -> AttemptResult {
    AttemptResult::Success {
        latency: FAST,
        tokens: None,
    }
}

fn small_breaker() -> RecoveryConfig {
    RecoveryConfig {
        breaker: Some(BreakerConfig {
            min_calls: 2,
            open_for: Duration::from_secs(5),
            probes: 1,
            ..BreakerConfig::default()
        }),
        ..RecoveryConfig::default()
    }
}

async fn attempt(r: &Recovery, provider: &str, model: &str, result: AttemptResult) {
    let admission = r.admit(provider, model, 0).await.expect("admitted");
    r.record(admission, result);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_rejects_at_once_and_maps_to_circuit_open() {
    let r = Recovery::new(small_breaker());
    attempt(&r, "openai", "gpt-a", failing(FailureClass::ProviderError)).await;
    attempt(&r, "openai", "gpt-a", failing(FailureClass::Timeout)).await;
    assert_eq!(r.breaker_state("openai", "gpt-a"), Some(BreakerState::Open));

    let start = Instant::now();
    let rejection = r.admit("openai", "gpt-a", 0).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(rejection.reason, RejectReason::CircuitOpen);
    assert_eq!(rejection.retry_after, Some(Duration::from_secs(5)));
    let error = ProviderError::from(rejection);
    assert_eq!(error, ProviderError::CircuitOpen("openai/gpt-a".into()));
    assert_eq!(error.class(), FailureClass::ProviderError);
    assert!(
        !error.is_retryable(),
        "the engine goes straight to fallback"
    );

    // Breakers are per model: the fallback model on the same provider is still admitted.
    attempt(&r, "openai", "gpt-b", ok()).await;
    // After `open_for`, one probe; its success closes the breaker.
    tokio::time::advance(Duration::from_secs(5)).await;
    let probe = r.admit("openai", "gpt-a", 0).await.unwrap();
    assert!(probe.is_probe());
    r.record(probe, ok());
    assert_eq!(
        r.breaker_state("openai", "gpt-a"),
        Some(BreakerState::Closed)
    );
}

#[tokio::test(start_paused = true)]
async fn output_failures_and_rate_limits_do_not_trip_the_breaker() {
    let r = Recovery::new(RecoveryConfig {
        limits: LimitConfig::NONE.shed(),
        ..small_breaker()
    });
    for class in [
        FailureClass::InvalidOutput,
        FailureClass::Refusal,
        FailureClass::LowConfidence,
    ] {
        for _ in 0..3 {
            attempt(&r, "p", "m", failing(class)).await;
        }
    }
    assert_eq!(r.breaker_state("p", "m"), Some(BreakerState::Closed));
    for _ in 0..5 {
        let result = AttemptResult::RateLimited { retry_after: None };
        attempt(&r, "p", "busy", result).await;
    }
    assert_eq!(r.breaker_state("p", "busy"), Some(BreakerState::Closed));
}

#[tokio::test(start_paused = true)]
async fn retry_after_pauses_the_provider_capped_by_max_retry_after() {
    let r = Recovery::new(RecoveryConfig {
        limits: LimitConfig::NONE.shed(),
        max_retry_after: Duration::from_secs(20),
        ..RecoveryConfig::default()
    });
    let retry_after = Some(Duration::from_secs(3600));
    attempt(&r, "p", "m", AttemptResult::RateLimited { retry_after }).await;
    let rejection = r.admit("p", "other-model", 0).await.unwrap_err();
    assert_eq!(rejection.reason, RejectReason::Limit(Limit::RetryAfter));
    assert_eq!(rejection.retry_after, Some(Duration::from_secs(20)));
    let error = rejection.into_provider_error();
    assert_eq!(error.class(), FailureClass::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(20)));
    assert!(r.admit("q", "m", 0).await.is_ok(), "other providers go on");
}

#[tokio::test(start_paused = true)]
async fn provider_limits_apply_to_their_provider_only() {
    let config = RecoveryConfig::default()
        .limits_for("openai", LimitConfig::NONE.requests_per_minute(1).shed());
    let r = Recovery::new(config);
    attempt(&r, "openai", "m", ok()).await;
    let rejection = r.admit("openai", "m", 0).await.unwrap_err();
    assert_eq!(rejection.reason, RejectReason::Limit(Limit::Requests));
    assert_eq!(rejection.retry_after, Some(Duration::from_secs(60)));
    for _ in 0..10 {
        attempt(&r, "anthropic", "m", ok()).await;
    }
}

#[tokio::test(start_paused = true)]
async fn concurrency_slots_are_freed_by_record_and_by_drop() {
    let config =
        RecoveryConfig::default().limits_for("p", LimitConfig::NONE.max_concurrency(1).shed());
    let r = Recovery::new(config);
    let a = r.admit("p", "m", 0).await.unwrap();
    let rejection = r.admit("p", "m", 0).await.unwrap_err();
    assert_eq!(rejection.reason, RejectReason::Limit(Limit::Concurrency));
    r.record(a, ok());
    let b = r.admit("p", "m", 0).await.unwrap();
    drop(b);
    let _c = r.admit("p", "m", 0).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn billed_tokens_reconcile_the_token_limit() {
    let config =
        RecoveryConfig::default().limits_for("p", LimitConfig::NONE.tokens_per_minute(1000).shed());
    let r = Recovery::new(config);
    let response = Ok(ChatResponse {
        usage: Usage::new(700, 300),
        ..ChatResponse::default()
    });
    let a = r.admit("p", "m", 100).await.unwrap();
    r.record(a, AttemptResult::from_provider(&response, FAST));
    let rejection = r.admit("p", "m", 100).await.unwrap_err();
    assert_eq!(rejection.reason, RejectReason::Limit(Limit::Tokens));
}

#[tokio::test(start_paused = true)]
async fn the_budget_bounds_retries_per_provider() {
    let r = Recovery::new(RecoveryConfig {
        budget: Some(BudgetConfig {
            ttl: Duration::from_secs(10),
            retry_ratio: 0.5,
            min_per_sec: 0,
        }),
        ..RecoveryConfig::default()
    });
    assert!(!r.retry_allowed("p"), "no calls yet, no reserve");
    for _ in 0..4 {
        r.on_call("p");
    }
    assert!(r.retry_allowed("p"));
    assert!(r.retry_allowed("p"));
    assert!(!r.retry_allowed("p"));
    assert!(!r.retry_allowed("q"), "q's budget is its own");

    let off = Recovery::off();
    assert!((0..100).all(|_| off.retry_allowed("p")));
}

#[tokio::test(start_paused = true)]
async fn off_admits_everything() {
    let r = Recovery::off();
    for _ in 0..50 {
        attempt(&r, "p", "m", failing(FailureClass::ProviderError)).await;
    }
    assert_eq!(r.breaker_state("p", "m"), None);
    let retry_after = Some(Duration::from_secs(30));
    attempt(&r, "p", "m", AttemptResult::RateLimited { retry_after }).await;
    let start = Instant::now();
    attempt(&r, "p", "m", ok()).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[test]
fn backoff_is_seeded_and_honours_retry_after() {
    let a = Recovery::new(RecoveryConfig::default().seed(9));
    let b = Recovery::new(RecoveryConfig::default().seed(9));
    let delays = |r: &Recovery| {
        (1..=6)
            .map(|n| r.backoff(&Backoff::DEFAULT, n, None))
            .collect::<Vec<_>>()
    };
    assert_eq!(delays(&a), delays(&b));
    let d = a.backoff(&Backoff::DEFAULT, 1, Some(Duration::from_secs(7)));
    assert!(d >= Duration::from_secs(7));
}

#[test]
fn provider_results_are_classified_for_recovery() {
    let classify = |e: ProviderError| AttemptResult::from_error(&e, FAST);
    assert_eq!(
        classify(ProviderError::RateLimited {
            status: 429,
            retry_after: Some(Duration::from_secs(2))
        }),
        AttemptResult::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    assert_eq!(
        classify(ProviderError::Status {
            status: 503,
            message: String::new()
        }),
        failing(FailureClass::ProviderError)
    );
    assert_eq!(
        classify(ProviderError::Status {
            status: 408,
            message: String::new()
        }),
        failing(FailureClass::ProviderError)
    );
    assert_eq!(
        classify(ProviderError::Status {
            status: 400,
            message: String::new()
        }),
        ok(),
        "a client error says the provider is up"
    );
    assert_eq!(
        classify(ProviderError::Timeout(FAST)),
        failing(FailureClass::Timeout)
    );
    assert_eq!(
        classify(ProviderError::Config(String::new())),
        AttemptResult::NotSent
    );
}

#[tokio::test(start_paused = true)]
async fn admit_before_does_not_wait_past_the_deadline() {
    let config = RecoveryConfig::default().limits_for(
        "p",
        LimitConfig::NONE
            .requests_per_minute(1)
            .wait(Duration::from_secs(120)),
    );
    let r = Recovery::new(config);
    attempt(&r, "p", "m", ok()).await;
    let start = Instant::now();
    let deadline = Some(start + Duration::from_secs(10));
    let rejection = r.admit_before("p", "m", 0, deadline).await.unwrap_err();
    assert_eq!(rejection.reason, RejectReason::Limit(Limit::Requests));
    assert_eq!(rejection.retry_after, Some(Duration::from_secs(60)));
    assert_eq!(start.elapsed(), Duration::ZERO);
    // With room before the deadline it waits, as `admit` does.
    let deadline = Some(start + Duration::from_secs(90));
    let a = r.admit_before("p", "m", 0, deadline).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    r.record(a, ok());
}

#[test]
fn token_estimates_count_messages_schema_and_output() {
    use crate::provider::{ChatRequest, Message, ResponseFormat};
    let mut request = ChatRequest {
        model: "m".into(),
        messages: vec![Message::user("x".repeat(400 - 16))],
        response_format: ResponseFormat::Text,
        temperature: None,
        max_tokens: Some(50),
        seed: None,
        ..Default::default()
    };
    assert_eq!(estimate_tokens(&request), 100 + 50);
    request.max_tokens = None;
    assert_eq!(estimate_tokens(&request), 100 + DEFAULT_OUTPUT_ESTIMATE);
    request.response_format =
        ResponseFormat::json_schema("T", serde_json::json!({ "type": "string" }));
    assert_eq!(estimate_tokens(&request), 100 + 4 + DEFAULT_OUTPUT_ESTIMATE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_never_exceed_the_concurrency_limit() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let config = RecoveryConfig::default().limits_for(
        "p",
        LimitConfig::NONE
            .max_concurrency(3)
            .wait(Duration::from_secs(30)),
    );
    let r = Arc::new(Recovery::new(config));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (r, in_flight, peak) = (r.clone(), in_flight.clone(), peak.clone());
            tokio::spawn(async move {
                for _ in 0..5 {
                    let admission = r.admit("p", "m", 0).await.expect("waits for a slot");
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    r.record(admission, ok());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!((2..=3).contains(&peak), "peak {peak}");
}
