//! A fixed-bucket histogram with OpenTelemetry's bucket semantics.

use serde::Serialize;

/// Counts of values in explicit buckets: bucket `i` holds values in `(bounds[i-1], bounds[i]]`,
/// the last bucket everything above the last bound (as OpenTelemetry's explicit-bucket histograms).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Histogram {
    /// Upper bounds of the buckets, ascending.
    pub bounds: &'static [f64],
    /// One count per bucket: `bounds.len() + 1` of them.
    pub counts: Vec<u64>,
    /// How many values.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest value, when there is one.
    pub min: Option<f64>,
    /// The largest value, when there is one.
    pub max: Option<f64>,
}

impl Histogram {
    /// An empty histogram.
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            count: 0,
            sum: 0.0,
            min: None,
            max: None,
        }
    }

    /// Adds a value.
    pub fn record(&mut self, value: f64) {
        let i = self.bounds.partition_point(|b| *b < value);
        self.counts[i] += 1;
        self.count += 1;
        self.sum += value;
        self.min = Some(self.min.map_or(value, |m| m.min(value)));
        self.max = Some(self.max.map_or(value, |m| m.max(value)));
    }

    /// The mean, when there are values.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_upper_inclusive() {
        let mut h = Histogram::new(&[1.0, 4.0]);
        for v in [0.5, 1.0, 1.5, 4.0, 9.0] {
            h.record(v);
        }
        assert_eq!(h.counts, vec![2, 2, 1]);
        assert_eq!(h.count, 5);
        assert_eq!(h.min, Some(0.5));
        assert_eq!(h.max, Some(9.0));
    }
}
