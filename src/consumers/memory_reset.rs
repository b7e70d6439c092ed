//! Memory reset (an app-server request): set every thread's `memory_mode` back to
//! `enabled`. DB-only: without a handle it returns `state db unavailable for memory reset`
//! and never opens one of its own (the modelled system once did).

use super::error::ConsumerError;
use crate::state::StateDbHandle;
use crate::thread::DEFAULT_MEMORY_MODE;

/// Resets `memory_mode` on all rows in one write; returns how many rows it set.
pub fn reset_memory(state_db: Option<&StateDbHandle>) -> Result<u64, ConsumerError> {
    let rt = state_db.ok_or_else(|| ConsumerError::unavailable("memory reset"))?;
    let changed = rt.write("memory reset", |tx| {
        tx.execute("UPDATE threads SET memory_mode = ?1", [DEFAULT_MEMORY_MODE])
            .map_err(rt.err("memory reset"))
    })?;
    Ok(changed as u64)
}
