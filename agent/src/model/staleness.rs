//! Staleness markers for series a source stopped producing.

use std::collections::HashSet;

use super::{Labels, Sample, stale_nan};

/// Remembers the series a source emitted last cycle and produces stale markers for the ones it
/// did not emit this cycle, as Prometheus does when a series disappears from a scrape.
#[derive(Debug, Default)]
pub struct StalenessTracker {
    previous: HashSet<Labels>,
    current: HashSet<Labels>,
}

impl StalenessTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a series emitted in the cycle under way.
    pub fn observe(&mut self, labels: &Labels) {
        if !self.current.contains(labels) {
            self.current.insert(labels.clone());
        }
    }

    /// Ends the cycle: appends a stale marker at `timestamp_ms` for every series seen last
    /// cycle and not this one.
    pub fn finish_cycle(&mut self, timestamp_ms: i64, out: &mut Vec<Sample>) {
        for gone in self.previous.difference(&self.current) {
            out.push(Sample {
                labels: gone.clone(),
                timestamp_ms,
                value: stale_nan(),
            });
        }
        std::mem::swap(&mut self.previous, &mut self.current);
        self.current.clear();
    }

    /// Ends the source: every series it still had becomes stale.
    pub fn finish_all(&mut self, timestamp_ms: i64, out: &mut Vec<Sample>) {
        self.current.clear();
        self.finish_cycle(timestamp_ms, out);
    }

    pub fn tracked(&self) -> usize {
        self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::is_stale_nan;

    #[test]
    fn a_series_missing_from_a_cycle_gets_one_stale_marker() {
        let a = Labels::from_pairs([("__name__", "a")]);
        let b = Labels::from_pairs([("__name__", "b")]);
        let mut t = StalenessTracker::new();
        let mut out = Vec::new();
        t.observe(&a);
        t.observe(&b);
        t.finish_cycle(1, &mut out);
        assert!(out.is_empty());
        t.observe(&a);
        t.finish_cycle(2, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].labels, b);
        assert!(is_stale_nan(out[0].value));
        out.clear();
        t.observe(&a);
        t.finish_cycle(3, &mut out);
        assert!(out.is_empty(), "a series is marked stale once");
    }
}
