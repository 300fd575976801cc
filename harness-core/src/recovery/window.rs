//! A sliding time window cut into `N` slots, shared by the retry budget and the circuit breaker.
//!
//! Time is divided into epochs of `span / N`; each slot remembers which epoch it holds, so an old
//! slot is recognised and reset on its next use, without a timer. "The window" is the current slot
//! and the `N - 1` before it: between `span × (N-1)/N` and `span` of history.

use std::time::Duration;

use tokio::time::Instant;

/// A ring of `N` time slots of `T`.
#[derive(Debug)]
pub(crate) struct Ring<T, const N: usize> {
    start: Instant,
    slot_nanos: u64,
    slots: [(u64, T); N],
}

impl<T: Copy + Default, const N: usize> Ring<T, N> {
    /// A ring covering `span`, starting now.
    pub(crate) fn new(span: Duration) -> Self {
        let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        Ring {
            start: Instant::now(),
            slot_nanos: (nanos / N as u64).max(1),
            slots: [(0, T::default()); N],
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(elapsed).unwrap_or(u64::MAX) / self.slot_nanos
    }

    /// The slot for `now`, emptied first if it still holds an older epoch.
    pub(crate) fn current(&mut self, now: Instant) -> &mut T {
        let epoch = self.epoch(now);
        let slot = &mut self.slots[(epoch % N as u64) as usize];
        if slot.0 != epoch {
            *slot = (epoch, T::default());
        }
        &mut slot.1
    }

    /// The slots still inside the window at `now`.
    pub(crate) fn live(&self, now: Instant) -> impl Iterator<Item = &T> {
        let epoch = self.epoch(now);
        self.slots
            .iter()
            .filter(move |(e, _)| *e <= epoch && epoch - *e < N as u64)
            .map(|(_, t)| t)
    }

    /// Forgets everything. Zeroed slots count for nothing, whatever epoch they claim.
    pub(crate) fn clear(&mut self) {
        self.slots = [(0, T::default()); N];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_expire_after_the_span() {
        let mut ring: Ring<u32, 4> = Ring::new(Duration::from_secs(4));
        *ring.current(Instant::now()) += 1;
        tokio::time::advance(Duration::from_secs(2)).await;
        *ring.current(Instant::now()) += 10;
        assert_eq!(ring.live(Instant::now()).sum::<u32>(), 11);
        tokio::time::advance(Duration::from_secs(2)).await;
        // The first slot (epoch 0) has left the window; the second (epoch 2) has not.
        assert_eq!(ring.live(Instant::now()).sum::<u32>(), 10);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(ring.live(Instant::now()).sum::<u32>(), 0);
        *ring.current(Instant::now()) += 5;
        assert_eq!(ring.live(Instant::now()).sum::<u32>(), 5);
        ring.clear();
        assert_eq!(ring.live(Instant::now()).sum::<u32>(), 0);
    }
}
