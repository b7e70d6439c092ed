//! Declared waits of one scenario run, measured on the critical path.
//!
//! A scenario waits on purpose (a `sleep` step, an expected gate timeout, a failpoint
//! sleep). Several of those can run at once — seven workers timing out together wait one
//! timeout, not seven — so each wait is kept as a wall-clock interval and the total is the
//! length of their union. `run` time minus this total is what the runner itself costs.
//!
//! Waits come from the scenario's own parameters and from what was observed: a `sleep`
//! step, an expected timeout or elapsed floor, a failpoint sleep from when it fired, and a
//! lease that had to expire before a successor took it over (`scenario::lease_waits`), and
//! a busy timeout met under another process's write lock ([`busy_timeout_met`]).

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

    /// A wait over the wall-clock interval `start_ms..end_ms` (nothing if it is empty).
    pub fn between(&mut self, start_ms: i64, end_ms: i64) {
        if end_ms > start_ms {
            self.spans.push((start_ms, end_ms));
        }
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

/// The busy timeout a step waited out, if any: the step ran from `step_ms.0` to `step_ms.1`
/// while another process held the DB's write lock the whole time (from before the step
/// began to after it ended, as the runner saw it), and it lasted at least `busy_timeout`, so
/// SQLite's busy handler ran out on it. The wait is that one busy timeout, ending when the
/// step returned; the rest of the step is the step's own work. A step shorter than the
/// timeout, or not entirely under the lock, declares nothing.
pub fn busy_timeout_met(
    step_ms: (i64, i64),
    lock_held_since_ms: Option<i64>,
    still_held_at_end: bool,
    busy_timeout: Duration,
) -> Option<(i64, i64)> {
    let (start, end) = step_ms;
    let timeout = busy_timeout.as_millis() as i64;
    let held_throughout =
        lock_held_since_ms.is_some_and(|since| since <= start) && still_held_at_end;
    (held_throughout && timeout > 0 && end - start >= timeout).then_some((end - timeout, end))
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

    #[test]
    fn a_busy_timeout_counts_only_for_a_step_under_the_lock_throughout() {
        // Held since 0 and still held: a 1.2 s step waited out its 1 s busy timeout.
        assert_eq!(
            busy_timeout_met((100, 1_300), Some(0), true, SEC),
            Some((300, 1_300))
        );
        // Not invented: too short, lock taken after the step began, released before it
        // ended, no lock at all, no busy timeout.
        assert_eq!(busy_timeout_met((100, 900), Some(0), true, SEC), None);
        assert_eq!(busy_timeout_met((100, 1_300), Some(200), true, SEC), None);
        assert_eq!(busy_timeout_met((100, 1_300), Some(0), false, SEC), None);
        assert_eq!(busy_timeout_met((100, 1_300), None, true, SEC), None);
        assert_eq!(
            busy_timeout_met((100, 1_300), Some(0), true, Duration::ZERO),
            None
        );
    }

    #[test]
    fn busy_timeouts_overlapping_other_waits_count_once() {
        let mut w = DeclaredWaits::default();
        // Two steps meeting the lock one after the other: 2 s; a sleep inside one: no more.
        for step in [(0, 1_100), (1_100, 2_200)] {
            let (s, e) = busy_timeout_met(step, Some(-5), true, SEC).unwrap();
            w.between(s, e);
        }
        w.starting_at(500, Duration::from_millis(400));
        assert_eq!(w.critical_path(), 2 * SEC);
    }
}
