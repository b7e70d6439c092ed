//! `[timing]`: the state layer's timings for every worker, the slack timing bounds allow,
//! and elapsed-time bounds (`wait_timeout+slack`) resolved against them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::timing::{humantime_serde_compat as hs, Timings};

/// `[timing]`: the state layer's timings for every worker, plus the slack timing bounds allow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingSpec {
    #[serde(with = "hs", default = "d_lease")]
    pub lease: Duration,
    #[serde(with = "hs", default = "d_poll")]
    pub poll: Duration,
    #[serde(with = "hs", default = "d_wait")]
    pub wait_timeout: Duration,
    #[serde(with = "hs", default = "d_busy")]
    pub busy_timeout: Duration,
    #[serde(with = "hs::option", default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Duration>,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Allowed lateness of timing bounds (`[wait_timeout, wait_timeout + slack]`).
    #[serde(with = "hs", default = "d_slack")]
    pub slack: Duration,
    /// The gate's cap for an owner that keeps making progress.
    #[serde(with = "hs", default = "d_wait_cap")]
    pub wait_cap: Duration,
    /// How long without progress before the gate calls a live owner wedged (default: wait_timeout).
    #[serde(with = "hs::option", default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<Duration>,
}

fn d_lease() -> Duration {
    Timings::short().lease
}
fn d_poll() -> Duration {
    Timings::short().poll_interval
}
fn d_wait() -> Duration {
    Timings::short().wait_timeout
}
fn d_busy() -> Duration {
    Timings::short().busy_timeout
}
fn d_batch() -> usize {
    Timings::short().batch_size
}
fn d_wait_cap() -> Duration {
    Timings::short().wait_cap
}
fn d_slack() -> Duration {
    Duration::from_millis(750)
}

impl Default for TimingSpec {
    fn default() -> Self {
        TimingSpec {
            lease: d_lease(),
            poll: d_poll(),
            wait_timeout: d_wait(),
            busy_timeout: d_busy(),
            heartbeat: None,
            batch_size: d_batch(),
            slack: d_slack(),
            wait_cap: d_wait_cap(),
            stall: None,
        }
    }
}

impl TimingSpec {
    pub fn timings(&self) -> Timings {
        Timings {
            lease: self.lease,
            poll_interval: self.poll,
            wait_timeout: self.wait_timeout,
            busy_timeout: self.busy_timeout,
            heartbeat: self.heartbeat,
            batch_size: self.batch_size,
            wait_cap: self.wait_cap,
            stall: self.stall,
        }
    }
}

/// Resolves an elapsed-time bound against the scenario's timings.
pub fn parse_bound(text: &str, timing: &TimingSpec) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    for part in text.split('+') {
        let part = part.trim();
        total += match part {
            "wait_timeout" => timing.wait_timeout,
            "lease" => timing.lease,
            "slack" => timing.slack,
            "poll" => timing.poll,
            "stall" => timing.stall.unwrap_or(timing.wait_timeout),
            "wait_cap" => timing.wait_cap.max(timing.wait_timeout),
            other => crate::timing::parse_duration(other).map_err(|_| {
                format!("invalid time bound '{text}' (a duration, or sums of wait_timeout, lease, slack, poll, stall, wait_cap)")
            })?,
        };
    }
    Ok(total)
}
