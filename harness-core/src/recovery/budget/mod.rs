//! A retry budget, so that retries cannot multiply the load on a struggling provider.
//!
//! The idea is Finagle's and tower's: every call deposits a fraction of a retry (20% by default),
//! every retry withdraws a whole one, and deposits expire after a time-to-live (10 s). Retries can
//! therefore add at most `retry_ratio` of the recent call rate, however many tasks retry at once
//! and however generous their contracts are. A small reserve (`min_per_sec` retries per second of
//! the window) lets a quiet service still retry the odd failure.
//!
//! Amounts are kept in thousandths of a retry, so ratios such as 0.2 or 0.3 are exact.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::window::Ring;

/// How generous the budget is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    /// How long a deposit (and a withdrawal) counts. Default 10 s.
    pub ttl: Duration,
    /// Retries allowed per call, over the window: `0.2` lets retries add 20% to the load.
    pub retry_ratio: f64,
    /// Retries per second allowed regardless of traffic. Default 10.
    pub min_per_sec: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            ttl: Duration::from_secs(10),
            retry_ratio: 0.2,
            min_per_sec: 10,
        }
    }
}

/// One thousandth of a retry.
const MILLI: i64 = 1000;
/// Slots in the window.
const SLOTS: usize = 10;

/// A thread-safe retry budget. The mutex is held for a few additions.
#[derive(Debug)]
pub struct RetryBudget {
    deposit: i64,
    reserve: i64,
    window: Mutex<Ring<i64, SLOTS>>,
}

impl RetryBudget {
    /// A budget with `config`'s parameters (a negative ratio counts as 0).
    pub fn new(config: BudgetConfig) -> Self {
        let ratio = if config.retry_ratio.is_finite() {
            config.retry_ratio.max(0.0)
        } else {
            0.0
        };
        let deposit = (ratio * MILLI as f64).round().min(i64::MAX as f64) as i64;
        let reserve = (f64::from(config.min_per_sec) * config.ttl.as_secs_f64() * MILLI as f64)
            .min(i64::MAX as f64) as i64;
        RetryBudget {
            deposit,
            reserve,
            window: Mutex::new(Ring::new(config.ttl)),
        }
    }

    /// Records a call (not a retry): it earns `retry_ratio` of a retry.
    pub fn deposit(&self) {
        if self.deposit == 0 {
            return;
        }
        let now = Instant::now();
        let mut window = self.lock();
        let slot = window.current(now);
        *slot = slot.saturating_add(self.deposit);
    }

    /// Takes one retry from the budget; `false` (and nothing taken) when it is spent.
    pub fn withdraw(&self) -> bool {
        let now = Instant::now();
        let mut window = self.lock();
        let balance = Self::sum(&window, now).saturating_add(self.reserve);
        if balance < MILLI {
            return false;
        }
        let slot = window.current(now);
        *slot = slot.saturating_sub(MILLI);
        true
    }

    /// Whole retries available now.
    pub fn available(&self) -> u64 {
        let now = Instant::now();
        let window = self.lock();
        let balance = Self::sum(&window, now).saturating_add(self.reserve);
        u64::try_from(balance / MILLI).unwrap_or(0)
    }

    fn sum(window: &Ring<i64, SLOTS>, now: Instant) -> i64 {
        window.live(now).fold(0i64, |a, b| a.saturating_add(*b))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring<i64, SLOTS>> {
        match self.window.lock() {
            Ok(w) => w,
            // Plain counters: nothing a panic could leave half-written.
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(BudgetConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    fn budget(ratio: f64, min_per_sec: u32) -> RetryBudget {
        RetryBudget::new(BudgetConfig {
            ttl: Duration::from_secs(10),
            retry_ratio: ratio,
            min_per_sec,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_budget_allows_no_retry() {
        let b = budget(0.2, 0);
        assert!(!b.withdraw());
        assert_eq!(b.available(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn twenty_percent_of_calls_can_be_retried_then_it_is_exhausted() {
        let b = budget(0.2, 0);
        for _ in 0..10 {
            b.deposit();
        }
        assert_eq!(b.available(), 2);
        assert!(b.withdraw());
        assert!(b.withdraw());
        assert!(!b.withdraw(), "10 calls at 20% fund exactly two retries");
        // More calls fund more retries.
        for _ in 0..5 {
            b.deposit();
        }
        assert!(b.withdraw());
        assert!(!b.withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_expire_after_the_ttl() {
        let b = budget(0.5, 0);
        b.deposit();
        b.deposit();
        advance(Duration::from_secs(9)).await;
        assert_eq!(b.available(), 1, "still inside the window");
        advance(Duration::from_secs(2)).await;
        assert!(!b.withdraw(), "the deposits have expired");
    }

    #[tokio::test(start_paused = true)]
    async fn the_reserve_refills_as_withdrawals_expire() {
        // 1 retry per second over a 10 s window: 10 retries with no traffic at all.
        let b = budget(0.2, 1);
        for _ in 0..10 {
            assert!(b.withdraw());
        }
        assert!(!b.withdraw());
        advance(Duration::from_secs(5)).await;
        assert!(!b.withdraw(), "the withdrawals still count");
        advance(Duration::from_secs(6)).await;
        assert!(b.withdraw(), "the window has moved past them");
    }

    #[tokio::test(start_paused = true)]
    async fn ratio_zero_leaves_only_the_reserve() {
        let b = budget(0.0, 0);
        for _ in 0..100 {
            b.deposit();
        }
        assert!(!b.withdraw());
    }

    #[test]
    fn concurrent_withdrawals_never_overdraw() {
        let b = std::sync::Arc::new(budget(0.1, 0));
        for _ in 0..1000 {
            b.deposit();
        }
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..100).filter(|_| b.withdraw()).count())
            })
            .collect();
        let granted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(granted, 100);
    }
}
