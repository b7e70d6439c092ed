//! The wall clock of one (real or simulated) process, with an optional skew.
//!
//! Lease math reads time only through a `Clock` carried by the `ProcessContext`, so a
//! scenario can give two workers clocks that disagree (the "clock skew on lease expiry"
//! fault) without touching the system clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall clock plus a fixed skew in milliseconds (positive: this process runs ahead).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Clock {
    pub skew_ms: i64,
}

impl Clock {
    pub fn system() -> Self {
        Clock { skew_ms: 0 }
    }

    pub fn skewed(skew_ms: i64) -> Self {
        Clock { skew_ms }
    }

    /// Milliseconds since the Unix epoch as this process sees them.
    pub fn now_ms(&self) -> i64 {
        real_now_ms() + self.skew_ms
    }

    /// Whole seconds since the Unix epoch as this process sees them.
    pub fn now_s(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// Unskewed wall-clock milliseconds, for event timestamps shared by all workers.
pub fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_shifts_the_reading() {
        let ahead = Clock::skewed(60_000);
        let now = real_now_ms();
        let seen = ahead.now_ms();
        assert!(
            seen >= now + 60_000 && seen < now + 61_000,
            "{seen} vs {now}"
        );
    }
}
