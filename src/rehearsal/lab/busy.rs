//! Busy-time accounting: when the simulated installation is doing its own work.
//!
//! Every timed activity of the lab (an applied cluster operation, a snapshot, a restore, a
//! zeebe pod starting until Ready) records its `[start, end)` interval in simulated
//! milliseconds. The installation's own work within a window is the length of the *union* of
//! those intervals clipped to the window: two regions rolling their pods at once, or a rollout
//! overlapping a cluster change, count once.
use serde::Serialize;

/// Disjoint, sorted, non-adjacent `[start, end)` intervals (simulated milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BusyTime {
    intervals: Vec<(i64, i64)>,
}

impl BusyTime {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the installation works during `[start, end)`; empty intervals are ignored.
    pub fn record(&mut self, start: i64, end: i64) {
        if end <= start {
            return;
        }
        // first interval that ends at or after `start` (touching intervals merge)
        let i = self.intervals.partition_point(|&(_, e)| e < start);
        // one past the last interval that starts at or before `end`
        let j = self.intervals.partition_point(|&(s, _)| s <= end);
        if i == j {
            self.intervals.insert(i, (start, end));
            return;
        }
        let merged = (start.min(self.intervals[i].0), end.max(self.intervals[j - 1].1));
        self.intervals.splice(i..j, [merged]);
    }

    /// Milliseconds within `[from, to)` during which at least one recorded activity runs.
    pub fn within(&self, from: i64, to: i64) -> u64 {
        if to <= from {
            return 0;
        }
        let i = self.intervals.partition_point(|&(_, e)| e <= from);
        self.intervals[i..]
            .iter()
            .take_while(|&&(s, _)| s < to)
            .map(|&(s, e)| (e.min(to) - s.max(from)).max(0) as u64)
            .sum()
    }

    /// Milliseconds of the whole union.
    pub fn total(&self) -> u64 {
        self.intervals.iter().map(|&(s, e)| (e - s) as u64).sum()
    }

    /// The union as disjoint sorted intervals.
    pub fn intervals(&self) -> &[(i64, i64)] {
        &self.intervals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(iv: &[(i64, i64)]) -> BusyTime {
        let mut b = BusyTime::new();
        for &(s, e) in iv {
            b.record(s, e);
        }
        b
    }

    #[test]
    fn disjoint_intervals_add_up() {
        let b = busy(&[(30, 40), (0, 10), (15, 20)]);
        assert_eq!(b.intervals(), &[(0, 10), (15, 20), (30, 40)]);
        assert_eq!(b.total(), 25);
    }

    #[test]
    fn overlapping_intervals_count_once() {
        // two regions rolling at once, shifted by 5 ms
        let b = busy(&[(0, 20), (5, 25)]);
        assert_eq!(b.intervals(), &[(0, 25)]);
        assert_eq!(b.total(), 25);
        // a new interval bridging two existing ones
        let b = busy(&[(0, 10), (20, 30), (8, 22)]);
        assert_eq!(b.intervals(), &[(0, 30)]);
        assert_eq!(b.total(), 30);
    }

    #[test]
    fn nested_intervals_count_once() {
        let b = busy(&[(0, 100), (10, 20), (50, 60)]);
        assert_eq!(b.total(), 100);
        let b = busy(&[(10, 20), (50, 60), (0, 100)]);
        assert_eq!(b.intervals(), &[(0, 100)]);
    }

    #[test]
    fn touching_intervals_merge_and_empty_ones_are_ignored() {
        let b = busy(&[(0, 10), (10, 20), (5, 5), (30, 25)]);
        assert_eq!(b.intervals(), &[(0, 20)]);
    }

    #[test]
    fn a_window_cuts_intervals() {
        let b = busy(&[(0, 10), (20, 30), (40, 50)]);
        assert_eq!(b.within(5, 45), 5 + 10 + 5);
        assert_eq!(b.within(22, 28), 6, "window inside one interval");
        assert_eq!(b.within(10, 20), 0, "window in a gap");
        assert_eq!(b.within(-100, 100), 30);
        assert_eq!(b.within(50, 10), 0, "empty window");
        assert_eq!(b.within(9, 21), 2);
    }
}
