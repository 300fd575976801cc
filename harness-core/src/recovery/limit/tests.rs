use std::time::Duration;

use tokio::time::{Instant, advance};

use super::*;

const MINUTE: Duration = Duration::from_secs(60);

fn limits(config: LimitConfig) -> Limits {
    Limits::new(&config)
}

#[tokio::test(start_paused = true)]
async fn no_limits_admit_everything() {
    let l = limits(LimitConfig::NONE);
    for _ in 0..10_000 {
        l.acquire(100_000).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn shedding_refuses_the_request_over_the_rate_and_says_when() {
    let l = limits(LimitConfig::NONE.requests_per_minute(2).shed());
    l.acquire(0).await.unwrap();
    l.acquire(0).await.unwrap();
    let shed = l.acquire(0).await.unwrap_err();
    assert_eq!(shed.limit, Limit::Requests);
    assert_eq!(shed.retry_after, Some(Duration::from_secs(30)));
    advance(Duration::from_secs(30)).await;
    l.acquire(0).await.expect("one more cell after 60/2 s");
}

#[tokio::test(start_paused = true)]
async fn waiting_sleeps_on_the_tokio_clock_until_the_request_fits() {
    let l = limits(LimitConfig::NONE.requests_per_minute(2).wait(MINUTE));
    let start = Instant::now();
    for _ in 0..4 {
        l.acquire(0).await.unwrap();
    }
    // Two at once, then one every 30 s: the paused clock auto-advances through the sleeps.
    assert_eq!(start.elapsed(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn waiting_sheds_when_the_wait_would_pass_its_maximum() {
    let l = limits(
        LimitConfig::NONE
            .requests_per_minute(2)
            .wait(Duration::from_secs(10)),
    );
    l.acquire(0).await.unwrap();
    l.acquire(0).await.unwrap();
    let start = Instant::now();
    let shed = l.acquire(0).await.unwrap_err();
    assert_eq!(shed.limit, Limit::Requests);
    assert_eq!(shed.retry_after, Some(Duration::from_secs(30)));
    assert_eq!(start.elapsed(), Duration::ZERO, "shed without sleeping");
}

#[tokio::test(start_paused = true)]
async fn tokens_per_minute_count_the_estimate() {
    let l = limits(LimitConfig::NONE.tokens_per_minute(1000).shed());
    l.acquire(600).await.unwrap();
    let shed = l.acquire(600).await.unwrap_err();
    assert_eq!(shed.limit, Limit::Tokens);
    // 200 tokens short at 1000/min: 12 s.
    assert_eq!(shed.retry_after, Some(Duration::from_secs(12)));
    advance(Duration::from_secs(12)).await;
    l.acquire(600).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn tokens_wait_too() {
    let l = limits(LimitConfig::NONE.tokens_per_minute(1000).wait(MINUTE));
    let start = Instant::now();
    l.acquire(1000).await.unwrap();
    l.acquire(500).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn an_underestimate_is_charged_on_the_next_admission() {
    let l = limits(LimitConfig::NONE.tokens_per_minute(1000).shed());
    l.acquire(100).await.unwrap();
    l.reconcile(100, 1000);
    // Without reconciliation 200 of 1000 would be used; with it, 1000 are, and 100 more do not fit.
    assert_eq!(l.acquire(100).await.unwrap_err().limit, Limit::Tokens);
    // A shed admission keeps the debt for the next one.
    advance(Duration::from_secs(60)).await;
    l.acquire(100).await.unwrap();
    assert_eq!(l.acquire(1).await.unwrap_err().limit, Limit::Tokens);
}

#[tokio::test(start_paused = true)]
async fn an_overestimate_is_credited() {
    let l = limits(LimitConfig::NONE.tokens_per_minute(1000).shed());
    l.acquire(800).await.unwrap();
    l.reconcile(800, 100);
    // 800 charged but 100 billed: the 700 credit pays for the next 700-token estimate.
    l.acquire(700).await.unwrap();
    l.acquire(150).await.unwrap();
    assert!(l.acquire(200).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn concurrency_sheds_when_full_and_frees_on_drop() {
    let l = limits(LimitConfig::NONE.max_concurrency(1).shed());
    let first = l.acquire(0).await.unwrap();
    let shed = l.acquire(0).await.unwrap_err();
    assert_eq!(shed.limit, Limit::Concurrency);
    drop(first);
    l.acquire(0).await.expect("the slot is free again");
}

#[tokio::test(start_paused = true)]
async fn concurrency_waits_for_a_slot() {
    let l = std::sync::Arc::new(limits(
        LimitConfig::NONE
            .max_concurrency(2)
            .wait(Duration::from_secs(5)),
    ));
    let a = l.acquire(0).await.unwrap();
    let _b = l.acquire(0).await.unwrap();
    let start = Instant::now();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(a);
    });
    let _c = l.acquire(0).await.expect("a's slot");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    // Nobody frees a slot now: shed after the 5 s maximum.
    let shed = l.acquire(0).await.unwrap_err();
    assert_eq!(shed.limit, Limit::Concurrency);
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn retry_after_pauses_the_provider() {
    let l = limits(LimitConfig::NONE.shed());
    l.pause(Duration::from_secs(5));
    let shed = l.acquire(0).await.unwrap_err();
    assert_eq!(shed.limit, Limit::RetryAfter);
    assert_eq!(shed.retry_after, Some(Duration::from_secs(5)));
    advance(Duration::from_secs(5)).await;
    l.acquire(0).await.unwrap();

    let waiting = limits(LimitConfig::NONE.wait(MINUTE));
    waiting.pause(Duration::from_secs(5));
    let start = Instant::now();
    waiting.acquire(0).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));

    let ignoring = limits(LimitConfig {
        honour_retry_after: false,
        ..LimitConfig::NONE.shed()
    });
    ignoring.pause(Duration::from_secs(5));
    ignoring.acquire(0).await.unwrap();
}
