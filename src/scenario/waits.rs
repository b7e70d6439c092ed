//! Declared waits of one scenario run, measured on the critical path.
//!
//! A scenario waits on purpose (a `sleep` step, an expected gate timeout, a failpoint
//! sleep). Several of those can run at once — seven workers timing out together wait one
//! timeout, not seven — so each wait is kept as a wall-clock interval and the total is the
//! length of their union. `run` time minus this total is what the runner itself costs.

use std::time::Duration;

/// Wall-clock intervals (epoch milliseconds) the scenario declared as deliberate waiting.
#[derive(Debug, Clone, Default)]
pub struct DeclaredWaits {
    spans: Vec<(i64, i64)>,
}

impl DeclaredWaits {
    /// A wait of `length` that began at `start_ms`.
    pub fn starting_at(&mut self, start_ms: i64, length: Duration) {
        if !length.is_zero() {
            self.spans
                .push((start_ms, start_ms + length.as_millis() as i64));
        }
    }

    /// A wait of `length` that ended at `end_ms` (an expectation seen when its step returned).
    pub fn ending_at(&mut self, end_ms: i64, length: Duration) {
        self.starting_at(end_ms - length.as_millis() as i64, length);
    }

    /// The length of the union of all spans: overlapping waits count once.
    pub fn critical_path(&self) -> Duration {
        let mut spans = self.spans.clone();
        spans.sort_unstable();
        let mut total = 0i64;
        let mut current: Option<(i64, i64)> = None;
        for (start, end) in spans {
            current = match current {
                Some((s, e)) if start <= e => Some((s, e.max(end))),
                Some((s, e)) => {
                    total += e - s;
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        if let Some((s, e)) = current {
            total += e - s;
        }
        Duration::from_millis(total.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn parallel_waits_count_once() {
        let mut w = DeclaredWaits::default();
        for _ in 0..7 {
            w.starting_at(10_000, SEC);
        }
        assert_eq!(w.critical_path(), SEC);
    }

    #[test]
    fn overlapping_waits_count_their_union() {
        let mut w = DeclaredWaits::default();
        w.starting_at(0, SEC); // 0..1000
        w.starting_at(500, SEC); // 500..1500
        w.ending_at(1200, Duration::from_millis(200)); // 1000..1200, inside
        assert_eq!(w.critical_path(), Duration::from_millis(1500));
    }

    #[test]
    fn sequential_waits_add_up() {
        let mut w = DeclaredWaits::default();
        w.starting_at(0, SEC);
        w.starting_at(2_000, SEC);
        w.starting_at(5_000, Duration::ZERO);
        assert_eq!(w.critical_path(), 2 * SEC);
    }
}
