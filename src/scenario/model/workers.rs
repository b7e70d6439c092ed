//! `[[worker]]`: how a worker runs (task or process), what it does (its role), how it gets
//! its handle, and its failpoints and clock skew.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::is_default;
use crate::entrypoints::EntrypointKind;
use crate::failpoints::FailpointSpec;
use crate::thread::Scope;
use crate::timing::humantime_serde_compat as hs;

/// How a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    /// A tokio blocking task with its own `ProcessContext`.
    #[default]
    Task,
    /// A real OS process: the binary re-invoked with the hidden `worker` command.
    Process,
}

/// What a worker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Process startup: `init` with the backfill gate.
    Init,
    /// One backfill attempt without the gate.
    Backfill,
    /// Startup, then look threads up.
    Lookup,
    /// Startup, then list every page.
    List,
    /// Startup, then write new rollouts and index them while others read.
    Writer,
    /// Hold a write transaction on the DB for `hold`.
    LockHolder,
    /// Startup, then archive (or unarchive) one thread through the thread store.
    Archive,
    /// Commit one small write transaction (a racing writer).
    Commit,
    /// Run an entrypoint's consumer wiring over the home's threads.
    Entrypoint,
}

/// How a lookup/list worker obtains its handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandleMode {
    /// `init` (falls back to no handle when init fails, like the CLI).
    #[default]
    Init,
    /// `open_existing`.
    OpenOnly,
    /// No DB.
    None,
}

/// `[[worker]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: WorkerKind,
    pub role: Role,
    /// Failpoints of this worker, `NAME[@N]=ACTION`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failpoints: Vec<String>,
    /// This worker's clock runs ahead by this much (negative: behind), e.g. "2s", "-1s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub handle: HandleMode,
    /// Threads a lookup worker looks up (aliases).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub scope: Scope,
    /// Lookups per thread.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub repeat: u32,
    /// lock_holder: how long to hold the write lock.
    #[serde(with = "hs::option", default)]
    pub hold: Option<Duration>,
    /// writer: rollouts to write.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u32,
    /// list: page size.
    #[serde(default)]
    pub page_size: Option<usize>,
    /// entrypoint: which (`cli`, `exec`, `app_server`, `mcp_server`).
    #[serde(default)]
    pub entrypoint: Option<EntrypointKind>,
    /// Override this worker's wait timeout.
    #[serde(with = "hs::option", default)]
    pub wait_timeout: Option<Duration>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl WorkerSpec {
    pub fn parsed_failpoints(&self) -> Result<Vec<FailpointSpec>, String> {
        self.failpoints.iter().map(|f| f.parse()).collect()
    }

    pub fn skew_ms(&self) -> Result<i64, String> {
        match self.clock_skew.as_deref() {
            None => Ok(0),
            Some(text) => {
                let (neg, body) = match text.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, text),
                };
                let d = crate::timing::parse_duration(body)?;
                let ms = d.as_millis() as i64;
                Ok(if neg { -ms } else { ms })
            }
        }
    }
}
