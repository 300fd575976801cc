//! A `governor` clock that reads tokio's clock, so rate limits follow `tokio::time::pause` and
//! `advance` in tests (governor's default clock, `quanta`, does not).

use governor::clock::Clock;
use governor::nanos::Nanos;
use tokio::time::Instant;

/// Nanoseconds since the clock was made, by [`tokio::time::Instant`].
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        TokioClock {
            origin: Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(Instant::now().saturating_duration_since(self.origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::Reference;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn follows_the_paused_clock() {
        let clock = TokioClock::new();
        let t0 = clock.now();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(
            Duration::from(clock.now().duration_since(t0)),
            Duration::from_secs(3)
        );
    }
}
