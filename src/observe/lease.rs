//! Lease checks derived from the backfill write log (`observe::writes`), i.e. from what
//! reached the DB, not from what the code under test reports.
//!
//! SQLite serialises writers, so the log is the order in which writes committed, and the
//! rows of one transaction are adjacent. Judged per write of the code under test (writes
//! inside a harness fault's markers only move the baseline):
//!
//! - **one completion**: the backfill is marked complete by exactly one write
//!   ([`completions`]; the `one_backfill_run` oracle). A completion is a write that sets
//!   the status `complete`, or one that sets `last_success_at` on a row complete already
//!   (the statement names the column, whatever the value: timestamps are in seconds); a
//!   write that only refreshes `updated_at` (a late heartbeat) is no completion and no
//!   progress;
//! - **no progress without the lease**: a checkpoint (the watermark moves) or a completion
//!   lands only on a `running` row: never on a `complete` one (a second completion, or
//!   progress after completion without a new claim), a `pending` or a missing one;
//! - **the watermark never goes backwards**, across takeovers too (each write's NEW against
//!   its OLD, so a takeover that restarts from scratch or a stale owner's older checkpoint
//!   shows);
//! - where the harness lease row is watched (the reference's DBs): a progress write lands
//!   only while that row names an owner whose lease was not ended (completed or released)
//!   and whose fence (`backfill_state.updated_at` as that owner last wrote it) is still the
//!   row's, i.e. nobody claimed since; and the row passes to a new owner only in a claim
//!   (the same transaction sets `backfill_state` running with that fence).
//!
//! Not judged: the lease's expiry against the time of a write. The expiry is written in the
//! claimant's clock (scenarios skew clocks on purpose), and the fence, not time, is what
//! makes a late write by the still-named owner legitimate. Nor who made a write: SQLite
//! gives a trigger no writer identity (see `observe::writes`). Codex's DB has no lease-owner
//! row (its lease is `status` + `updated_at` only), so only the first three apply there.

use super::writes::{BackfillImage, Change, Entry, LeaseImage, WriteLog};

const COMPLETE: &str = "complete";
const RUNNING: &str = "running";

/// The code under test's writes of the log: everything outside harness fault markers.
fn own_writes(log: &WriteLog) -> impl Iterator<Item = (Option<&Entry>, &Entry)> {
    let mut in_fault = false;
    let mut prev: Option<&Entry> = None;
    log.entries.iter().filter_map(move |e| {
        let before = prev.replace(e);
        match &e.change {
            Change::Fault { begin, .. } => {
                in_fault = *begin;
                None
            }
            _ if in_fault => None,
            _ => Some((before, e)),
        }
    })
}

fn status(image: &Option<BackfillImage>) -> Option<&str> {
    image.as_ref().and_then(|i| i.status.as_deref())
}

fn watermark(image: &Option<BackfillImage>) -> Option<&str> {
    image.as_ref().and_then(|i| i.watermark.as_deref())
}

/// Whether a write marks the backfill complete: it sets the status, or its statement sets
/// `last_success_at` on a row that was complete already.
fn sets_complete(
    old: &Option<BackfillImage>,
    new: &Option<BackfillImage>,
    sets_success: bool,
) -> bool {
    status(new) == Some(COMPLETE) && (status(old) != Some(COMPLETE) || sets_success)
}

/// The writes of the code under test that set the backfill complete.
pub fn completions(log: &WriteLog) -> Vec<&Entry> {
    own_writes(log)
        .map(|(_, e)| e)
        .filter(
            |e| matches!(&e.change, Change::Backfill { old, new, sets_success, .. } if sets_complete(old, new, *sets_success)),
        )
        .collect()
}

/// `#seq (+ms)` of an entry, relative to the log's first entry.
pub fn label(log: &WriteLog, e: &Entry) -> String {
    let t0 = log.entries.first().map_or(e.at_ms, |f| f.at_ms);
    format!("write #{} at +{}ms", e.seq, e.at_ms - t0)
}

fn show(v: Option<&str>) -> String {
    v.map_or_else(|| "none".into(), |v| format!("'{v}'"))
}

/// Every violation of the lease checks in the log.
pub fn violations(log: &WriteLog) -> Vec<String> {
    let mut f = Vec::new();
    for (prev, e) in own_writes(log) {
        match &e.change {
            Change::Backfill {
                old,
                new,
                lease,
                sets_success,
                ..
            } => {
                if let Some(v) = backfill_write(old, new, lease.as_ref(), *sets_success) {
                    f.push(format!("invariant violated: {v} ({})", label(log, e)));
                }
            }
            Change::Lease { old, new, .. } => {
                if let Some(v) = lease_write(prev, old.as_ref(), new.as_ref()) {
                    f.push(format!("invariant violated: {v} ({})", label(log, e)));
                }
            }
            Change::Fault { .. } => {}
        }
    }
    f
}

fn backfill_write(
    old: &Option<BackfillImage>,
    new: &Option<BackfillImage>,
    lease: Option<&LeaseImage>,
    sets_success: bool,
) -> Option<String> {
    let (was, now) = (watermark(old), watermark(new));
    if let Some(was) = was {
        if now.is_none_or(|now| now < was) {
            return Some(format!(
                "the backfill watermark went backwards from '{was}' to {}",
                show(now)
            ));
        }
    }
    let completes = sets_complete(old, new, sets_success);
    let checkpoints = now.is_some() && now != was;
    if !completes && !checkpoints {
        return None;
    }
    let what = if completes {
        "completion"
    } else {
        "checkpoint"
    };
    match status(old) {
        Some(RUNNING) => {}
        Some(COMPLETE) if completes => return Some(
            "a second write marked the backfill complete (it was complete already; no new claim)"
                .into(),
        ),
        Some(COMPLETE) => {
            return Some(format!(
                "backfill {what} written after the backfill was complete, without a new claim"
            ))
        }
        other => {
            return Some(format!(
                "backfill {what} written while no lease was held (status was {})",
                show(other)
            ))
        }
    }
    let lease = lease?;
    let Some(owner) = lease.owner.as_deref() else {
        return Some(format!(
            "backfill {what} written while the lease row named no owner"
        ));
    };
    if lease.expires_ms.is_none() {
        return Some(format!(
            "backfill {what} written after owner {owner}'s lease was ended (completed or released)"
        ));
    }
    let fence = old.as_ref().and_then(|o| o.updated_at);
    if lease.fence != fence {
        return Some(format!(
            "backfill {what} written while owner {owner} no longer held the lease \
             (backfill_state.updated_at {} is not the {} the owner last wrote: someone claimed since)",
            fence.map_or_else(|| "none".into(), |v| v.to_string()),
            lease.fence.map_or_else(|| "none".into(), |v| v.to_string()),
        ));
    }
    None
}

fn lease_write(
    prev: Option<&Entry>,
    old: Option<&LeaseImage>,
    new: Option<&LeaseImage>,
) -> Option<String> {
    let new = new?;
    let owner = new.owner.as_deref()?;
    if old.and_then(|o| o.owner.as_deref()) == Some(owner) {
        return None;
    }
    let claimed = prev.is_some_and(|p| match &p.change {
        Change::Backfill { new: Some(b), .. } => {
            b.status.as_deref() == Some(RUNNING) && b.updated_at == new.fence
        }
        _ => false,
    });
    (!claimed).then(|| {
        format!("the lease passed to owner {owner} without a claim of backfill_state in the same transaction")
    })
}

#[cfg(test)]
mod tests {
    use super::super::writes::Op;
    use super::*;

    fn bf(status: &str, wm: Option<&str>, at: i64) -> Option<BackfillImage> {
        Some(BackfillImage {
            status: Some(status.into()),
            watermark: wm.map(String::from),
            success_at: (status == COMPLETE).then_some(at),
            updated_at: Some(at),
        })
    }

    fn lease(owner: Option<&str>, expires: Option<i64>, fence: i64) -> Option<LeaseImage> {
        Some(LeaseImage {
            owner: owner.map(String::from),
            expires_ms: expires,
            fence: Some(fence),
        })
    }

    fn log(changes: Vec<Change>) -> WriteLog {
        WriteLog {
            entries: changes
                .into_iter()
                .enumerate()
                .map(|(i, change)| Entry {
                    seq: i as i64 + 1,
                    at_ms: 1000 + i as i64,
                    change,
                })
                .collect(),
            lease_watched: true,
        }
    }

    fn write(
        old: Option<BackfillImage>,
        new: Option<BackfillImage>,
        l: Option<LeaseImage>,
    ) -> Change {
        // The statement set `last_success_at` when the value moved (as a completion does).
        let success = |i: &Option<BackfillImage>| i.as_ref().and_then(|i| i.success_at);
        let sets_success = success(&new) != success(&old);
        Change::Backfill {
            op: Op::Update,
            old,
            new,
            lease: l,
            sets_success,
        }
    }

    fn claim(owner: &str, at: i64) -> Vec<Change> {
        vec![
            write(bf("pending", None, 0), bf("running", None, at), None),
            Change::Lease {
                op: Op::Insert,
                old: None,
                new: lease(Some(owner), Some(9), at),
            },
        ]
    }

    /// One owner claims, checkpoints twice and completes: the reference's shape.
    fn good() -> Vec<Change> {
        let held = || lease(Some("a"), Some(9), 1);
        let mut c = claim("a", 1);
        c.push(write(
            bf("running", None, 1),
            bf("running", Some("w1"), 1),
            held(),
        ));
        c.push(write(
            bf("running", Some("w1"), 1),
            bf("running", Some("w2"), 1),
            held(),
        ));
        c.push(write(
            bf("running", Some("w2"), 1),
            bf(COMPLETE, Some("w2"), 1),
            held(),
        ));
        c
    }

    #[test]
    fn a_clean_run_has_one_completion_and_no_violation() {
        let l = log(good());
        assert_eq!(violations(&l), Vec::<String>::new());
        assert_eq!(completions(&l).len(), 1);
    }

    #[test]
    fn a_stale_write_after_completion_and_a_second_completion_are_violations() {
        let mut c = good();
        let ended = || lease(Some("a"), None, 1);
        c.push(write(
            bf(COMPLETE, Some("w2"), 1),
            bf("running", Some("w3"), 1),
            ended(),
        ));
        c.push(write(
            bf("running", Some("w3"), 1),
            bf(COMPLETE, Some("w3"), 1),
            ended(),
        ));
        // A late heartbeat on the complete row: neither a completion nor progress.
        let mut beat = bf(COMPLETE, Some("w3"), 1);
        beat.as_mut().unwrap().updated_at = Some(2);
        c.push(write(bf(COMPLETE, Some("w3"), 1), beat, ended()));
        c.push(write(
            bf(COMPLETE, Some("w3"), 1),
            bf(COMPLETE, Some("w3"), 2),
            ended(),
        ));
        let l = log(c);
        let v = violations(&l);
        assert!(
            v[0].contains("checkpoint written after the backfill was complete"),
            "{v:?}"
        );
        assert!(v[1].contains("after owner a's lease was ended"), "{v:?}");
        assert!(
            v[2].contains("a second write marked the backfill complete"),
            "{v:?}"
        );
        assert_eq!(completions(&l).len(), 3);
    }

    #[test]
    fn a_watermark_that_goes_backwards_is_a_violation() {
        let mut c = good();
        c.insert(
            4,
            write(
                bf("running", Some("w2"), 1),
                bf("running", Some("w1"), 1),
                lease(Some("a"), Some(9), 1),
            ),
        );
        let v = violations(&log(c));
        assert!(v[0].contains("went backwards from 'w2' to 'w1'"), "{v:?}");
    }

    #[test]
    fn progress_past_a_newer_claim_or_on_a_pending_row_is_a_violation() {
        let mut c = claim("a", 1);
        // The row's updated_at (2) is not the fence owner a wrote (1).
        c.push(write(
            bf("running", None, 2),
            bf("running", Some("w1"), 2),
            lease(Some("a"), Some(9), 1),
        ));
        c.push(write(
            bf("pending", None, 2),
            bf("running", Some("w2"), 2),
            lease(Some("a"), Some(9), 1),
        ));
        let v = violations(&log(c));
        assert!(v[0].contains("no longer held the lease"), "{v:?}");
        assert!(
            v[1].contains("while no lease was held (status was 'pending')"),
            "{v:?}"
        );
    }

    #[test]
    fn an_owner_change_outside_a_claim_is_a_violation() {
        let mut c = good();
        c.insert(
            2,
            Change::Lease {
                op: Op::Update,
                old: lease(Some("a"), Some(9), 1),
                new: lease(Some("b"), Some(9), 1),
            },
        );
        let v = violations(&log(c));
        assert!(v[0].contains("passed to owner b without a claim"), "{v:?}");
    }

    #[test]
    fn writes_inside_a_fault_only_move_the_baseline() {
        let mut c = good();
        c.push(Change::Fault {
            id: "reset".into(),
            begin: true,
        });
        c.push(write(
            bf(COMPLETE, Some("w2"), 1),
            bf("pending", None, 1),
            None,
        ));
        c.push(Change::Fault {
            id: "reset".into(),
            begin: false,
        });
        let l = log(c);
        assert_eq!(violations(&l), Vec::<String>::new());
        assert_eq!(completions(&l).len(), 1);
    }
}
