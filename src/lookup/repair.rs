//! Read-repair: after the filesystem found a thread the DB did not know correctly, point
//! its row at the verified file.
//!
//! With a row, the repair is a compare-and-swap of `rollout_path` (and the archived flag,
//! which follows the root the file was found in) against the path the lookup read, so a
//! row another writer changed in between is never overwritten. Without a row, the row is
//! inserted from the file's metadata if still absent. Repairs are best effort: a busy DB or
//! a lost race is reported, never propagated.

use std::path::Path;

use serde_json::json;
use uuid::Uuid;

use crate::events::kinds;
use crate::failpoints::Failpoint;
use crate::rollout::layout::Root;
use crate::rollout::metadata::extract_metadata;
use crate::state::{threads, StateDbHandle, StateError};
use crate::thread::ThreadMetadata;

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    Written,
    NotNeeded,
    Skipped(String),
}

/// Repairs the row of `id` to point at `hit`, found under `root`. `row_read` is the row as
/// the lookup read it (the compare-and-swap expectation).
pub fn read_repair(
    rt: &StateDbHandle,
    id: Uuid,
    row_read: Option<&ThreadMetadata>,
    hit: &Path,
    root: Root,
) -> RepairOutcome {
    let ctx = rt.context().clone();
    let outcome = match row_read {
        Some(row) => repair_existing(rt, id, row, hit, root),
        None => insert_missing(rt, id, hit, root),
    };
    let outcome = outcome.unwrap_or_else(|err| {
        tracing::warn!(
            "state db read-repair upsert failed for {}: {err}",
            hit.display()
        );
        RepairOutcome::Skipped(format!("repair failed: {err}"))
    });
    let (written, detail) = match &outcome {
        RepairOutcome::Written => (true, None),
        RepairOutcome::NotNeeded => (false, None),
        RepairOutcome::Skipped(why) => (false, Some(why.clone())),
    };
    ctx.emit(
        kinds::REPAIR,
        json!({"thread_id": id, "path": hit, "written": written, "skipped": detail}),
    );
    outcome
}

fn target_archived_at(row: Option<&ThreadMetadata>, hit: &Path, root: Root) -> Option<i64> {
    if !root.is_archived() {
        return None;
    }
    row.and_then(|r| r.archived_at_ms).or_else(|| {
        std::fs::metadata(hit)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
    })
}

fn repair_existing(
    rt: &StateDbHandle,
    id: Uuid,
    row_read: &ThreadMetadata,
    hit: &Path,
    root: Root,
) -> Result<RepairOutcome, StateError> {
    let ctx = rt.context().clone();
    let archived_at = target_archived_at(Some(row_read), hit, root);
    if let Some(copy) = ctx.decisions().whole_row_repair(row_read, hit, archived_at) {
        rt.write("read repair", |tx| {
            ctx.failpoint(Failpoint::RepairAfterRead)?;
            threads::upsert(tx, &copy).map_err(rt.err("read repair"))
        })?;
        return Ok(RepairOutcome::Written);
    }
    rt.write("read repair", |tx| {
        let current = threads::get(tx, id).map_err(rt.err("read repair"))?;
        ctx.failpoint(Failpoint::RepairAfterRead)?;
        let Some(current) = current else {
            return Ok(RepairOutcome::Skipped(
                "row was deleted concurrently; not recreated".into(),
            ));
        };
        if current.rollout_path == hit && current.is_archived() == archived_at.is_some() {
            return Ok(RepairOutcome::NotNeeded);
        }
        tracing::warn!(
            "state db discrepancy during read_repair_rollout_path: upsert_needed (fast path)"
        );
        let swapped = threads::cas_rollout_path(tx, id, &row_read.rollout_path, hit, archived_at)
            .map_err(rt.err("read repair"))?;
        Ok(if swapped {
            RepairOutcome::Written
        } else {
            RepairOutcome::Skipped("row changed concurrently; not overwritten".into())
        })
    })
}

fn insert_missing(
    rt: &StateDbHandle,
    id: Uuid,
    hit: &Path,
    root: Root,
) -> Result<RepairOutcome, StateError> {
    let ctx = rt.context().clone();
    let extraction = match extract_metadata(hit, rt.default_provider()) {
        Ok(e) => e,
        Err(err) => {
            return Ok(RepairOutcome::Skipped(format!(
                "cannot index {}: {err}",
                hit.display()
            )))
        }
    };
    let mut meta = extraction.metadata;
    if meta.id != id {
        return Ok(RepairOutcome::Skipped(format!(
            "{} holds thread {}, not {id}",
            hit.display(),
            meta.id
        )));
    }
    meta.archived_at_ms = target_archived_at(None, hit, root).or(if root.is_archived() {
        Some(meta.updated_at_ms)
    } else {
        None
    });
    tracing::warn!(
        "state db discrepancy during read_repair_rollout_path: upsert_needed (slow path)"
    );
    rt.write("read repair", |tx| {
        let _ = threads::get(tx, id).map_err(rt.err("read repair"))?;
        ctx.failpoint(Failpoint::RepairAfterRead)?;
        let inserted = threads::insert_if_absent(tx, &meta).map_err(rt.err("read repair"))?;
        Ok(if inserted {
            RepairOutcome::Written
        } else {
            RepairOutcome::Skipped("row appeared concurrently; not overwritten".into())
        })
    })
}
