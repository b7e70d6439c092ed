//! The metadata backfill: index every rollout under `sessions/` and `archived_sessions/`
//! into `threads`, guarded by the fenced lease.
//!
//! Claim the lease (or return at once if it is complete or someone else holds it), start a
//! heartbeat on a timer (its own connection, so a slow batch never starves it), scan both
//! roots in watermark order past the last checkpoint (`scan`, streamed: memory is bounded by
//! the batch, not the home), and commit each batch of rows
//! together with its checkpoint in one IMMEDIATE transaction — so a batch lands only while
//! the lease is still ours. A file that cannot be indexed is counted, recorded in
//! `statedb_harness_backfill_failures` and logged; it never fails the run. Files are read a few batches
//! ahead on one worker thread per core (`read_ahead`), so reading overlaps the writes. On an error the
//! lease is released; a simulated death (failpoint `kill`/`exit` in a task worker) leaves
//! it held, exactly as a killed process would.

mod dir_signatures;
mod dir_watch;
mod heartbeat;
mod read_ahead;
pub mod reconcile;
mod scan;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use serde_json::json;

use crate::events::kinds;
use crate::failpoints::Failpoint;
use crate::state::backfill_state::{
    self, fenced_write, report_fenced, BackfillStatus, FencedWrite, LeaseClaimant,
};
use crate::state::{threads, StateDbHandle, StateError};
use crate::timing::Timings;

use heartbeat::Heartbeat;
use read_ahead::ReadAhead;
use scan::{Entry, RolloutScan};

/// What one call of [`run_backfill`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackfillOutcome {
    /// This process claimed the lease and ran the scan.
    pub ran: bool,
    pub scanned: u64,
    pub upserted: u64,
    pub failed: u64,
}

/// Runs the backfill if this process can claim the lease. Never fails because of a single
/// rollout; fails only on DB errors, a lost lease or an injected failure.
pub fn run_backfill(rt: &StateDbHandle, timings: &Timings) -> Result<BackfillOutcome, StateError> {
    let ctx = rt.context().clone();
    let state = rt.backfill_state()?;
    if state.status == BackfillStatus::Complete {
        return Ok(BackfillOutcome::default());
    }
    if let BackfillStatus::Unknown(value) = &state.status {
        tracing::warn!(path = %rt.db_path().display(), status = %value,
            "unknown backfill_state.status; treating it as pending and re-running the backfill");
        ctx.emit(kinds::STATUS_UNKNOWN, json!({"status": value}));
    }
    let lease_ms = timings.lease.as_millis() as i64;
    let who = LeaseClaimant::fresh();
    if !rt.try_claim_backfill(&who, lease_ms)? {
        tracing::info!(home = %rt.codex_home().display(),
            "state db backfill already running; skipping duplicate worker");
        return Ok(BackfillOutcome::default());
    }
    let heartbeat = if ctx.decisions().heartbeat_per_batch() {
        None
    } else {
        Some(Heartbeat::start(rt.clone(), who.owner_id.clone(), timings)?)
    };
    let result = scan_and_index(rt, timings, &who, heartbeat.as_ref());
    let lost = heartbeat
        .as_ref()
        .is_some_and(|h| h.lost.load(Ordering::SeqCst));
    match &result {
        Err(e) if e.is_killed() => {
            // A dead process neither heartbeats nor releases.
            if let Some(h) = heartbeat {
                h.stop();
            }
        }
        Err(e) => {
            if let Some(h) = heartbeat {
                h.stop();
            }
            if !lost && !matches!(e, StateError::LeaseLost { .. }) {
                if let Err(release_err) =
                    rt.fenced(FencedWrite::Release, &who.owner_id, None, lease_ms)
                {
                    tracing::warn!(error = %release_err, "failed to release the backfill lease");
                } else {
                    ctx.emit(kinds::LEASE_RELEASED, json!({"owner": who.owner_id}));
                }
            }
        }
        Ok(_) => {
            if let Some(h) = heartbeat {
                h.stop();
            }
        }
    }
    if let Err(StateError::LeaseLost { .. }) = &result {
        ctx.emit(kinds::LEASE_LOST, json!({"owner": who.owner_id}));
    }
    result
}

/// Extraction threads of the read-ahead: one per core.
fn read_ahead_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn scan_and_index(
    rt: &StateDbHandle,
    timings: &Timings,
    who: &LeaseClaimant,
    heartbeat: Option<&Heartbeat>,
) -> Result<BackfillOutcome, StateError> {
    let ctx = rt.context().clone();
    if heartbeat.is_none() {
        // The claim is the per-batch heartbeat's first refresh.
        ctx.decisions().refresh_at_batch(&ctx)?;
    }
    ctx.failpoint(Failpoint::BackfillAfterClaim)?;
    let lease_ms = timings.lease.as_millis() as i64;
    let state = rt.backfill_state()?;
    let home = rt.codex_home().to_path_buf();

    let mut outcome = BackfillOutcome {
        ran: true,
        ..Default::default()
    };
    let batch_size = timings.batch_size.max(1);
    let mut last_watermark: Option<String> = None;
    // The scan streams the roots in watermark order; the read-ahead extracts the next
    // batches on every core while this thread writes. A home of one batch gets no thread.
    let mut scan = RolloutScan::new(&home, state.last_watermark.clone());
    let mut queued: VecDeque<Vec<Entry>> = VecDeque::new();
    queued.extend([scan.next_batch(batch_size), scan.next_batch(batch_size)]);
    queued.retain(|b| !b.is_empty());
    let mut read_ahead = if queued.len() > 1 {
        ReadAhead::start(rt.default_provider(), read_ahead_workers())
    } else {
        ReadAhead::inline(rt.default_provider())
    };
    for batch in &queued {
        read_ahead.submit(batch.iter().map(|e| e.path.clone()).collect());
    }
    let ahead = read_ahead_workers() + 1;
    let mut batch_index = 0usize;
    while let Some(batch) = queued.pop_front() {
        if heartbeat.is_some_and(|h| h.lost.load(Ordering::SeqCst)) {
            return Err(StateError::LeaseLost {
                path: rt.db_path().to_path_buf(),
                owner: who.owner_id.clone(),
            });
        }
        if heartbeat.is_none() {
            ctx.decisions().refresh_at_batch(&ctx)?;
        }
        // Read files outside the transaction; hold the write lock only for the inserts.
        let extracted: Vec<_> = batch
            .iter()
            .zip(read_ahead.next_batch(batch.iter().map(|e| e.path.as_path())))
            .collect();
        // Keep the workers busy while this batch is written.
        while queued.len() < ahead {
            let next = scan.next_batch(batch_size);
            if next.is_empty() {
                break;
            }
            read_ahead.submit(next.iter().map(|e| e.path.clone()).collect());
            queued.push_back(next);
        }
        let batch_mark = batch.last().map(|e| e.watermark.clone());
        let now_ms = ctx.clock().now_ms();
        let variant = ctx.variant();
        let (upserted, failed, fenced) = rt
            .write("backfill batch", |tx| {
                let sq = rt.err("backfill batch");
                let mut upserted = 0u64;
                let mut failed = 0u64;
                for (entry, result) in &extracted {
                    match result {
                        Ok(extraction) => {
                            let mut meta = extraction.metadata.clone();
                            if entry.root.is_archived() && meta.archived_at_ms.is_none() {
                                meta.archived_at_ms = Some(meta.updated_at_ms);
                            }
                            threads::upsert(tx, &meta).map_err(&sq)?;
                            upserted += 1;
                        }
                        Err(err) => {
                            failed += 1;
                            backfill_state::record_failure(
                                tx,
                                &entry.watermark,
                                &err.to_string(),
                                now_ms,
                            )
                            .map_err(&sq)?;
                        }
                    }
                }
                let fenced = fenced_write(
                    tx,
                    FencedWrite::Checkpoint,
                    &who.owner_id,
                    batch_mark.as_deref(),
                    now_ms,
                    lease_ms,
                    variant,
                )
                .map_err(&sq)?;
                if !fenced.applied {
                    // Roll the batch back: its rows must not land once the lease is someone else's.
                    return Err(StateError::LeaseLost {
                        path: rt.db_path().to_path_buf(),
                        owner: who.owner_id.clone(),
                    });
                }
                Ok((upserted, failed, fenced))
            })
            .inspect_err(|e| {
                if matches!(e, StateError::LeaseLost { .. }) {
                    ctx.emit(
                        kinds::FENCED_WRITE_REJECTED,
                        json!({"write": "checkpoint", "owner": who.owner_id}),
                    );
                }
            })?;
        report_fenced(rt, FencedWrite::Checkpoint, &who.owner_id, &fenced)?;
        for (entry, result) in &extracted {
            if let Err(err) = result {
                tracing::warn!("failed to extract rollout {}: {err}", entry.path.display());
                ctx.emit(
                    kinds::BACKFILL_FILE_FAILED,
                    json!({"path": entry.watermark, "error": err.to_string()}),
                );
            }
        }
        outcome.scanned += batch.len() as u64;
        outcome.upserted += upserted;
        outcome.failed += failed;
        last_watermark = batch_mark;
        batch_index += 1;
        ctx.emit(
            kinds::BATCH_DONE,
            json!({"batch": batch_index, "rows": batch.len(), "owner": who.owner_id}),
        );
        ctx.failpoint(Failpoint::BackfillAfterBatch)?;
    }
    drop(read_ahead);
    ctx.failpoint(Failpoint::BackfillBeforeComplete)?;
    if heartbeat.is_some_and(|h| h.lost.load(Ordering::SeqCst)) {
        return Err(StateError::LeaseLost {
            path: rt.db_path().to_path_buf(),
            owner: who.owner_id.clone(),
        });
    }
    rt.fenced(
        FencedWrite::Complete,
        &who.owner_id,
        last_watermark.as_deref(),
        lease_ms,
    )?;
    tracing::info!(
        "state db backfill scanned={}, upserted={}, failed={}",
        outcome.scanned,
        outcome.upserted,
        outcome.failed
    );
    ctx.emit(
        kinds::BACKFILL_COMPLETE,
        json!({"owner": who.owner_id, "scanned": outcome.scanned, "upserted": outcome.upserted, "failed": outcome.failed}),
    );
    Ok(outcome)
}
