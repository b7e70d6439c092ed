//! The startup backfill gate: return once the backfill is complete, running it inline when
//! this process can claim the lease, and otherwise wait for the owner.
//!
//! Codex's loop (read, try the backfill, re-read, sleep the poll interval, give up after the
//! wait timeout) with three changes: a waiter tries to claim only when the lease is not
//! live (so fast wake-ups never queue for the write lock behind the owner's batches); it
//! sleeps until the DB changes ([`ChangeWatch`]) rather than a whole poll interval; and its
//! deadline follows the owner's progress ([`OwnerWatch`]): `stall` without progress ends the
//! wait (by default `wait_timeout`, Codex's bound), progress extends it up to `wait_cap`.

use std::time::{Duration, Instant};

use serde_json::json;

use super::watch::{ChangeWatch, OwnerWatch};
use super::{InitError, InitReport, StateDbConfig};
use crate::backfill::{run_backfill, BackfillOutcome};
use crate::events::kinds;
use crate::failpoints::Failpoint;
use crate::state::backfill_state::{BackfillState, BackfillStatus};
use crate::state::StateDbHandle;
use crate::timing::format_duration;

pub(super) fn wait_for_backfill_gate(
    rt: &StateDbHandle,
    cfg: &StateDbConfig,
) -> Result<InitReport, InitError> {
    let ctx = rt.context().clone();
    let home = cfg.runtime.codex_home.clone();
    let timings = &cfg.timings;
    let lease_ms = timings.lease.as_millis() as i64;
    let started = Instant::now();
    let mut owner = OwnerWatch::new(started);
    let mut changes = ChangeWatch::new(rt);
    let mut total = BackfillOutcome::default();
    let mut attempts = 0u32;
    let mut warned = false;
    let read_state = |rt: &StateDbHandle| {
        rt.backfill_state().map_err(|source| InitError::ReadState {
            codex_home: home.clone(),
            source: Box::new(source),
        })
    };
    let done = |state: BackfillState, total: BackfillOutcome, attempts| InitReport {
        handle: rt.clone(),
        status: state.status,
        waited: started.elapsed(),
        backfill: total,
        attempts,
    };
    loop {
        ctx.failpoint(Failpoint::GateBeforePoll)
            .map_err(|e| InitError::Backfill {
                codex_home: home.clone(),
                source: Box::new(e.into()),
            })?;
        let mut state = read_state(rt)?;
        if state.status == BackfillStatus::Complete {
            return Ok(done(state, total, attempts));
        }
        // The first attempt always runs (Codex runs the backfill inline at once); later
        // ones only when the lease looks claimable. The claim re-checks inside its
        // IMMEDIATE transaction, so a stale look costs one refused claim, never two owners.
        if attempts == 0 || !state.lease_is_live(ctx.clock().now_ms(), lease_ms) {
            attempts += 1;
            match run_backfill(rt, timings) {
                Ok(outcome) => {
                    total.ran |= outcome.ran;
                    total.scanned += outcome.scanned;
                    total.upserted += outcome.upserted;
                    total.failed += outcome.failed;
                }
                Err(err) if err.is_killed() => {
                    return Err(InitError::Backfill {
                        codex_home: home,
                        source: Box::new(err),
                    })
                }
                Err(err) => {
                    tracing::warn!(home = %home.display(), error = %err, "state db backfill attempt failed");
                }
            }
            state = read_state(rt)?;
            if state.status == BackfillStatus::Complete {
                return Ok(done(state, total, attempts));
            }
        }
        let now = Instant::now();
        owner.observe(&state, now);
        let deadline =
            ctx.decisions()
                .gate_deadline(started, owner.deadline(timings), timings.wait_timeout);
        let timed_out = deadline.is_some_and(|d| now >= d);
        if timed_out {
            let why = owner.give_up(now, timings);
            return Err(InitError::TimedOut {
                codex_home: home,
                timeout: format_duration(why.limit(timings)),
                status: state.status.to_string(),
                owner: state.owner.map(Box::new),
                verdict: why.explain(),
            });
        }
        let message = format!(
            "state db backfill is {} at {}; waiting up to {} before retrying startup initialization",
            state.status,
            home.display(),
            format_duration(timings.wait_timeout)
        );
        if !warned {
            tracing::warn!("{message}");
            ctx.emit(
                kinds::GATE_WAITING,
                json!({"status": state.status.to_string()}),
            );
            warned = true;
        } else {
            tracing::debug!("{message}");
        }
        changes.wait(rt, next_wake(now, timings.poll_interval, deadline));
    }
}

/// When a waiting gate reads the row again if the DB does not change first: after the poll
/// interval, or at the deadline if that comes sooner (the last wait never runs past it),
/// and never sooner than a millisecond from now (no spinning at the deadline).
fn next_wake(now: Instant, poll_interval: Duration, deadline: Option<Instant>) -> Instant {
    let next_poll = now + poll_interval;
    let until = deadline.map_or(next_poll, |d| next_poll.min(d));
    until.max(now + Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_wake_is_the_poll_or_the_deadline_and_never_now() {
        let now = Instant::now();
        let poll = Duration::from_secs(1);
        assert_eq!(next_wake(now, poll, None), now + poll);
        let soon = now + Duration::from_millis(300);
        assert_eq!(next_wake(now, poll, Some(soon)), soon);
        assert_eq!(next_wake(now, poll, Some(now + poll * 5)), now + poll);
        assert_eq!(
            next_wake(now, poll, Some(now)),
            now + Duration::from_millis(1)
        );
    }
}
