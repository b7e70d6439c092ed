//! The event log: what workers report to the scenario runner.
//!
//! Every worker (a tokio task or a real OS process) emits structured events — lease
//! claimed, batch done, failpoint fired, handle opened, lookup result — through an
//! `EventSink` owned by its `ProcessContext`. Task workers send them over a channel or into
//! memory; process workers print them as JSON lines on stdout. Invariant checks and the
//! determinism self-check read this log.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::real_now_ms;

/// One event. `at_ms` is the unskewed wall clock so events of all workers order together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: i64,
    pub worker: String,
    pub kind: String,
    #[serde(default)]
    pub data: Value,
}

/// Where a process context's events go.
#[derive(Clone, Default)]
pub enum EventSink {
    /// Dropped (the plain CLI commands).
    #[default]
    Null,
    /// Collected in memory (tests, the in-process runner).
    Memory(Arc<Mutex<Vec<Event>>>),
    /// Sent to a runner over a channel (task workers).
    Channel(tokio::sync::mpsc::UnboundedSender<Event>),
    /// One JSON object per line on stdout (process workers).
    Stdout,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            EventSink::Null => "Null",
            EventSink::Memory(_) => "Memory",
            EventSink::Channel(_) => "Channel",
            EventSink::Stdout => "Stdout",
        };
        f.write_str(name)
    }
}

impl EventSink {
    /// A sink collecting into memory, and the shared vector to read it from.
    pub fn memory() -> (Self, Arc<Mutex<Vec<Event>>>) {
        let store = Arc::new(Mutex::new(Vec::new()));
        (EventSink::Memory(store.clone()), store)
    }

    /// Whether events go anywhere (callers on hot paths skip building them otherwise).
    pub fn is_recording(&self) -> bool {
        !matches!(self, EventSink::Null)
    }

    pub fn emit(&self, worker: &str, kind: &str, data: Value) {
        let event = Event {
            at_ms: real_now_ms(),
            worker: worker.to_string(),
            kind: kind.to_string(),
            data,
        };
        match self {
            EventSink::Null => {}
            EventSink::Memory(store) => {
                if let Ok(mut events) = store.lock() {
                    events.push(event);
                }
            }
            EventSink::Channel(tx) => {
                // A closed channel means the runner stopped listening; nothing to do.
                let _ = tx.send(event);
            }
            EventSink::Stdout => {
                if let Ok(line) = serde_json::to_string(&event) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
        }
    }
}

/// Event kinds the reference emits; the invariant checks match on these names.
pub mod kinds {
    pub const HANDLE_OPENED: &str = "handle_opened";
    pub const DUPLICATE_OPEN: &str = "duplicate_open";
    pub const LEASE_CLAIMED: &str = "lease_claimed";
    pub const LEASE_CLAIM_REFUSED: &str = "lease_claim_refused";
    pub const LEASE_HEARTBEAT: &str = "lease_heartbeat";
    pub const LEASE_LOST: &str = "lease_lost";
    pub const LEASE_RELEASED: &str = "lease_released";
    pub const FENCED_WRITE: &str = "fenced_write";
    pub const FENCED_WRITE_REJECTED: &str = "fenced_write_rejected";
    pub const BATCH_DONE: &str = "batch_done";
    pub const BACKFILL_COMPLETE: &str = "backfill_complete";
    pub const BACKFILL_FILE_FAILED: &str = "backfill_file_failed";
    pub const GATE_WAITING: &str = "gate_waiting";
    pub const GATE_READY: &str = "gate_ready";
    pub const GATE_FAILED: &str = "gate_failed";
    pub const FAILPOINT_FIRED: &str = "failpoint_fired";
    pub const DISCREPANCY: &str = "discrepancy";
    /// A reconcile indexed rollouts the DB had no row for (`threads`: their ids).
    pub const RECONCILE_INDEXED: &str = "reconcile_indexed";
    pub const LOOKUP: &str = "lookup";
    pub const REPAIR: &str = "repair";
    pub const STATUS_UNKNOWN: &str = "backfill_status_unknown";
    pub const INIT_PHASE: &str = "init_phase";
    pub const LEGACY_DB_REMOVED: &str = "legacy_state_db_removed";
}
