//! Timing values of the state layer (lease, poll interval, wait timeout, busy timeout,
//! heartbeat) and the duration syntax the CLI and scenarios accept (`500ms`, `2s`, `15m`).
//!
//! Values are passed in explicitly; nothing here is a process-wide constant that tests
//! override behind `cfg(test)`.

use std::time::Duration;

/// Codex's production lease (`BACKFILL_LEASE_SECONDS`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(900);
/// Codex's production startup poll interval.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Codex's production startup wait timeout.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// SQLite busy timeout Codex uses on every connection.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows per backfill transaction (Codex's `BACKFILL_BATCH_SIZE`).
pub const DEFAULT_BATCH_SIZE: usize = 200;
/// The longest a startup gate waits for an owner that keeps making progress (our
/// addition: Codex gives up after `wait_timeout` however fast the owner moves).
pub const DEFAULT_WAIT_CAP: Duration = Duration::from_secs(600);

/// Timings of one process's state layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Timings {
    /// How long a backfill lease stays live without a heartbeat.
    #[serde(with = "humantime_serde_compat")]
    pub lease: Duration,
    /// How often a waiting startup gate re-reads the backfill state.
    #[serde(with = "humantime_serde_compat")]
    pub poll_interval: Duration,
    /// How long a startup gate waits for someone else's backfill before failing.
    #[serde(with = "humantime_serde_compat")]
    pub wait_timeout: Duration,
    /// SQLite busy timeout of every connection.
    #[serde(with = "humantime_serde_compat")]
    pub busy_timeout: Duration,
    /// Interval of the lease heartbeat; `None` means a third of the lease.
    #[serde(default, with = "humantime_serde_compat::option")]
    pub heartbeat: Option<Duration>,
    /// Rows per backfill transaction.
    pub batch_size: usize,
    /// How long a startup gate keeps waiting for an owner whose watermark keeps advancing.
    #[serde(default = "default_wait_cap", with = "humantime_serde_compat")]
    pub wait_cap: Duration,
    /// How long without progress (no checkpoint, no new owner) before the gate gives up on
    /// a live owner as wedged; `None` means `wait_timeout`, i.e. Codex's bounded wait.
    #[serde(default, with = "humantime_serde_compat::option")]
    pub stall: Option<Duration>,
}

fn default_wait_cap() -> Duration {
    DEFAULT_WAIT_CAP
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            lease: DEFAULT_LEASE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            heartbeat: None,
            batch_size: DEFAULT_BATCH_SIZE,
            wait_cap: DEFAULT_WAIT_CAP,
            stall: None,
        }
    }
}

impl Timings {
    /// Short timings for tests and scenarios: 500ms lease, 10ms poll, 1s wait, 1s busy,
    /// 10s cap for a progressing owner.
    pub fn short() -> Self {
        Timings {
            lease: Duration::from_millis(500),
            poll_interval: Duration::from_millis(10),
            wait_timeout: Duration::from_secs(1),
            busy_timeout: Duration::from_secs(1),
            heartbeat: None,
            batch_size: DEFAULT_BATCH_SIZE,
            wait_cap: Duration::from_secs(10),
            stall: None,
        }
    }

    /// How long without progress the gate tolerates: `stall`, or `wait_timeout`.
    pub fn stall_limit(&self) -> Duration {
        self.stall.unwrap_or(self.wait_timeout)
    }

    /// The longest the gate waits for a progressing owner (never less than `wait_timeout`).
    pub fn wait_cap_limit(&self) -> Duration {
        self.wait_cap.max(self.wait_timeout)
    }

    /// The heartbeat interval actually used: the configured one, or a third of the lease.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat
            .unwrap_or(self.lease / 3)
            .max(Duration::from_millis(1))
    }
}

/// Parses `500ms`, `2s`, `15m`, `1h 30m` (humantime syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|err| format!("invalid duration '{text}': {err} (examples: 500ms, 2s, 15m)"))
}

/// Formats a duration the way error texts and reports show it (`30s`, `1.5s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serde adapter: durations as humantime strings.
pub mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Duration>`.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&super::super::format_duration(*d)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let text: Option<String> = Option::deserialize(d)?;
            text.map(|t| super::super::parse_duration(&t).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_duration_forms() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
    }

    #[test]
    fn rejects_a_bare_number_with_an_example() {
        let err = parse_duration("500").unwrap_err();
        assert!(err.contains("examples"), "{err}");
    }

    #[test]
    fn defaults_match_codex_production_values() {
        let t = Timings::default();
        assert_eq!(t.lease, Duration::from_secs(900));
        assert_eq!(t.poll_interval, Duration::from_secs(1));
        assert_eq!(t.wait_timeout, Duration::from_secs(30));
        assert_eq!(t.heartbeat_interval(), Duration::from_secs(300));
    }

    #[test]
    fn formats_thirty_seconds_like_codex_error_text() {
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    }
}
