//! What recovery adds to a call when nothing fails: budget deposit, breaker and limiter
//! admission, and the record after the attempt. The target is under 1 µs per call.
//!
//! `cargo bench -p harness-core --bench recovery`

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use divan::{Bencher, black_box};
use harness_core::contract::Backoff;
use harness_core::recovery::{
    AttemptResult, Breaker, BreakerConfig, CallOutcome, LimitConfig, Limits, Recovery,
    RecoveryConfig, RetryBudget,
};

fn main() {
    divan::main();
}

/// Runs a future that must not wait (the no-failure fast path) to completion, without a runtime.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the fast path waited"),
    }
}

const SUCCESS: AttemptResult = AttemptResult::Success {
    latency: Duration::from_millis(800),
    tokens: Some(1000),
};

/// Limits that never bind, so every check runs but none waits.
fn generous() -> LimitConfig {
    LimitConfig::NONE
        .requests_per_minute(u32::MAX)
        .tokens_per_minute(u32::MAX)
        .max_concurrency(1 << 20)
}

fn one_call(recovery: &Recovery) {
    recovery.on_call(black_box("openai"));
    let admission = ready(recovery.admit(black_box("openai"), black_box("gpt-4o-mini"), 1000))
        .expect("admitted");
    recovery.record(admission, black_box(SUCCESS));
}

/// A whole call's recovery overhead: `on_call` + `admit` + `record`.
#[divan::bench_group(sample_count = 200, sample_size = 1000)]
mod call {
    use super::*;

    /// Breaker and budget (the default), no limits.
    #[divan::bench(threads = [1, 2])]
    fn default(bencher: Bencher) {
        let recovery = Recovery::default();
        bencher.bench(|| one_call(&recovery));
    }

    /// Breaker, budget, requests/min, tokens/min and concurrency.
    #[divan::bench(threads = [1, 2])]
    fn everything(bencher: Bencher) {
        let recovery = Recovery::new(RecoveryConfig {
            limits: generous(),
            ..RecoveryConfig::default()
        });
        bencher.bench(|| one_call(&recovery));
    }

    /// Everything off: the facade's own cost.
    #[divan::bench]
    fn off(bencher: Bencher) {
        let recovery = Recovery::off();
        bencher.bench(|| one_call(&recovery));
    }
}

/// The parts alone.
#[divan::bench_group(sample_count = 200, sample_size = 1000)]
mod parts {
    use super::*;

    #[divan::bench]
    fn breaker_acquire_record(bencher: Bencher) {
        let breaker = std::sync::Arc::new(Breaker::new("p/m", BreakerConfig::default()));
        bencher.bench(|| {
            breaker
                .acquire()
                .expect("closed")
                .record(CallOutcome::Success(Duration::from_millis(800)))
        });
    }

    #[divan::bench]
    fn budget_deposit(bencher: Bencher) {
        let budget = RetryBudget::default();
        bencher.bench(|| budget.deposit());
    }

    #[divan::bench]
    fn limits_acquire(bencher: Bencher) {
        let limits = Limits::new(&generous());
        bencher.bench(|| drop(ready(limits.acquire(black_box(1000))).expect("admitted")));
    }

    #[divan::bench]
    fn backoff(bencher: Bencher) {
        let recovery = Recovery::default();
        bencher.bench(|| recovery.backoff(&Backoff::DEFAULT, black_box(3), None));
    }
}
