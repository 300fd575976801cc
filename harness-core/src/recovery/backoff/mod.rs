//! Delays between retries: capped exponential growth with full jitter, honouring `Retry-After`.
//!
//! The schedule comes from the contract's [`Backoff`]: retry `n` (1-based) may wait up to
//! `min(initial × multiplier^(n-1), max)`. With `jitter` on, the delay is drawn uniformly from
//! `0..=` that bound ("full jitter", which spreads a burst of clients that failed together better
//! than adding a little noise to a shared schedule). When the server sent `Retry-After`, the delay
//! is at least what it asked for, but never more than [`Jitter::max_retry_after`] (60 s by
//! default), so a misbehaving server cannot park a call for an hour; the engine's deadline check
//! then decides whether waiting that long is worth it.

use std::sync::Mutex;
use std::time::Duration;

use crate::contract::Backoff;

/// The longest `Retry-After` honoured unless configured otherwise.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Draws backoff delays from a seedable random source. Shared: the generator sits behind a mutex
/// that is held for one draw.
#[derive(Debug)]
pub struct Jitter {
    rng: Mutex<fastrand::Rng>,
    max_retry_after: Duration,
}

impl Jitter {
    /// A generator seeded with `seed` (reproducible delays), or from the OS when `None`.
    pub fn new(seed: Option<u64>, max_retry_after: Duration) -> Self {
        let rng = match seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Jitter {
            rng: Mutex::new(rng),
            max_retry_after,
        }
    }

    /// The cap on an honoured `Retry-After`.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The delay before retry number `retry` (1-based; `0` is treated as `1`).
    pub fn delay(&self, backoff: &Backoff, retry: u32, retry_after: Option<Duration>) -> Duration {
        let mut rng = match self.rng.lock() {
            Ok(rng) => rng,
            // The generator has no invariant a panic could break.
            Err(poisoned) => poisoned.into_inner(),
        };
        delay(backoff, retry, retry_after, self.max_retry_after, &mut rng)
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Jitter::new(None, DEFAULT_MAX_RETRY_AFTER)
    }
}

/// The delay before retry number `retry`: the contract's capped exponential bound, fully
/// jittered when `backoff.jitter` is set, then raised to `retry_after` (itself capped at
/// `max_retry_after`).
pub fn delay(
    backoff: &Backoff,
    retry: u32,
    retry_after: Option<Duration>,
    max_retry_after: Duration,
    rng: &mut fastrand::Rng,
) -> Duration {
    let bound = backoff.delay(retry.max(1));
    let delay = if backoff.jitter {
        full_jitter(bound, rng)
    } else {
        bound
    };
    match retry_after {
        Some(asked) => delay.max(asked.min(max_retry_after)),
        None => delay,
    }
}

/// A duration drawn uniformly from `0..=bound`, at nanosecond resolution.
pub fn full_jitter(bound: Duration, rng: &mut fastrand::Rng) -> Duration {
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.u64(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn backoff(jitter: bool) -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            multiplier: 2.0,
            jitter,
        }
    }

    #[test]
    fn without_jitter_the_delay_is_the_capped_exponential() {
        let mut rng = fastrand::Rng::with_seed(1);
        let got: Vec<_> = (1..=7)
            .map(|n| delay(&backoff(false), n, None, SECOND, &mut rng))
            .collect();
        let ms = |m| Duration::from_millis(m);
        assert_eq!(
            got,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(2000),
                ms(2000)
            ]
        );
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_bound_and_uses_the_whole_range() {
        let mut rng = fastrand::Rng::with_seed(7);
        let b = backoff(true);
        for retry in 1..=8 {
            let bound = b.delay(retry);
            let draws: Vec<_> = (0..2000)
                .map(|_| delay(&b, retry, None, SECOND, &mut rng))
                .collect();
            assert!(draws.iter().all(|d| *d <= bound), "retry {retry}");
            // Full jitter, not "bound plus a little noise": both ends of the range are reached.
            assert!(draws.iter().any(|d| *d < bound / 10), "retry {retry}");
            assert!(draws.iter().any(|d| *d > bound * 9 / 10), "retry {retry}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let draw = |seed| {
            let jitter = Jitter::new(Some(seed), SECOND);
            (1..=10)
                .map(|n| jitter.delay(&Backoff::DEFAULT, n, None))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let jitter = Jitter::new(Some(3), Duration::from_secs(60));
        for retry in 1..=5 {
            let d = jitter.delay(&backoff(true), retry, Some(Duration::from_secs(5)));
            assert!(d >= Duration::from_secs(5), "{d:?}");
        }
        // A longer computed delay is kept when the server asks for less.
        let d = jitter.delay(&backoff(false), 5, Some(Duration::from_millis(1)));
        assert_eq!(d, Duration::from_millis(1600));
    }

    #[test]
    fn retry_after_is_capped() {
        let jitter = Jitter::new(Some(3), Duration::from_secs(30));
        let d = jitter.delay(&backoff(false), 1, Some(Duration::from_secs(3600)));
        assert_eq!(d, Duration::from_secs(30));
        assert_eq!(jitter.max_retry_after(), Duration::from_secs(30));
    }

    #[test]
    fn retry_zero_is_treated_as_the_first_retry() {
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(
            delay(&backoff(false), 0, None, SECOND, &mut rng),
            Duration::from_millis(100)
        );
    }
}
