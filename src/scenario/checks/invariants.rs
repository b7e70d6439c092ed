//! Invariants every scenario is held to at its end, beyond the outside checks of answers,
//! files and descriptors (`observe`): lease writes judged from the DB's own write log, and
//! a second DB handle a worker reports opening.

use crate::events::{kinds, Event};
use crate::observe::lease;
use crate::observe::writes::WriteLog;

/// A worker's own report of a second handle (the `/proc` count is the observed check).
pub fn event_invariants(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == kinds::DUPLICATE_OPEN)
        .map(|e| {
            format!(
                "invariant violated: process {} opened a second state db handle on {}",
                e.worker,
                e.data.get("db").and_then(|v| v.as_str()).unwrap_or("?")
            )
        })
        .collect()
}

/// The lease checks of `observe::lease` on the write log. A scenario without a log (no DB
/// at setup, or a DB replaced since) has no lease writes to judge here; the oracle that
/// needs the log says so.
pub fn write_invariants(writes: &Result<WriteLog, String>) -> Vec<String> {
    match writes {
        Ok(log) => lease::violations(log),
        Err(_) => Vec::new(),
    }
}
