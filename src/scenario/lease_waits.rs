//! Leases a scenario waits out, read from the DB's write log (`observe::writes`).
//!
//! When an owner dies or stalls, its successor cannot take the lease over before it
//! expires: that time is deliberate waiting, not runner cost. A lease runs from its last
//! renewal (a claim, heartbeat or checkpoint naming the owner, at SQLite's clock) for the
//! scenario's lease length; a lease a harness fault wrote runs to the expiry the fault
//! wrote. It counts only when another owner took the row over afterwards, and only up to
//! that takeover (an early takeover is never stretched to the full lease). A lease that was
//! completed or released (its expiry cleared) or never taken over is no wait.

use std::time::Duration;

use crate::observe::writes::{Change, WriteLog};

/// The live lease as of some point of the log: who holds it, from when, until when.
struct Live {
    owner: String,
    from_ms: i64,
    until_ms: i64,
}

/// Wall-clock intervals (epoch ms) spent waiting for a live lease to expire before a new
/// owner claimed it, given the scenario's lease length.
pub fn lease_expiries(log: &WriteLog, lease: Duration) -> Vec<(i64, i64)> {
    let lease_ms = lease.as_millis() as i64;
    let mut spans = Vec::new();
    let mut live: Option<Live> = None;
    let mut in_fault = false;
    for e in &log.entries {
        let new = match &e.change {
            Change::Fault { begin, .. } => {
                in_fault = *begin;
                continue;
            }
            Change::Lease { new, .. } => new,
            Change::Backfill { .. } => continue,
        };
        let owner = new.as_ref().and_then(|n| n.owner.clone());
        let expires = new.as_ref().and_then(|n| n.expires_ms);
        if let (Some(held), Some(next)) = (&live, &owner) {
            if held.owner != *next {
                let end = held.until_ms.min(e.at_ms);
                if end > held.from_ms {
                    spans.push((held.from_ms, end));
                }
            }
        }
        live = match (owner, expires) {
            (Some(owner), Some(written_expiry)) => Some(Live {
                owner,
                from_ms: e.at_ms,
                until_ms: if in_fault {
                    written_expiry
                } else {
                    e.at_ms + lease_ms
                },
            }),
            _ => None,
        };
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::writes::{Entry, LeaseImage, Op};
    use crate::scenario::waits::DeclaredWaits;

    const LEASE: Duration = Duration::from_secs(1);

    fn lease(at_ms: i64, owner: Option<&str>, expires: Option<i64>) -> Change {
        Change::Lease {
            op: Op::Update,
            old: None,
            new: Some(LeaseImage {
                owner: owner.map(str::to_string),
                expires_ms: expires,
                fence: Some(at_ms / 1000),
            }),
        }
    }

    fn marker(id: &str, begin: bool) -> (i64, Change) {
        let id = id.to_string();
        (0, Change::Fault { id, begin })
    }

    fn log(changes: Vec<(i64, Change)>) -> WriteLog {
        WriteLog {
            entries: changes
                .into_iter()
                .enumerate()
                .map(|(i, (at_ms, change))| Entry {
                    seq: i as i64,
                    at_ms,
                    change,
                })
                .collect(),
            lease_watched: true,
        }
    }

    fn total(spans: &[(i64, i64)]) -> Duration {
        let mut w = DeclaredWaits::default();
        for &(s, e) in spans {
            w.between(s, e);
        }
        w.critical_path()
    }

    #[test]
    fn a_dead_owners_lease_runs_from_its_last_renewal_to_its_expiry() {
        // A claims at 0, heartbeats at 300 and dies; B takes over at 1_450.
        let l = log(vec![
            (0, lease(0, Some("A"), Some(9_999))),
            (300, lease(300, Some("A"), Some(300 + 9_999))),
            (1_450, lease(1_450, Some("B"), Some(2_450))),
        ]);
        // The scenario's lease length, not the expiry A wrote in its own clock.
        assert_eq!(lease_expiries(&l, LEASE), vec![(300, 1_300)]);
        // A takeover before the expiry counts only up to the takeover.
        let early = log(vec![
            (0, l.entries[0].change.clone()),
            (400, lease(400, Some("B"), None)),
        ]);
        assert_eq!(lease_expiries(&early, LEASE), vec![(0, 400)]);
    }

    #[test]
    fn no_takeover_no_wait() {
        // Completed (expiry cleared) then claimed again; released; renewed by itself only.
        let l = log(vec![
            (0, lease(0, Some("A"), Some(1_000))),
            (200, lease(200, Some("A"), Some(1_200))),
            (500, lease(500, Some("A"), None)),
            (5_000, lease(5_000, Some("B"), Some(6_000))),
            (5_100, lease(5_100, None, None)),
            (9_000, lease(9_000, Some("C"), Some(10_000))),
        ]);
        assert_eq!(lease_expiries(&l, LEASE), vec![]);
    }

    #[test]
    fn a_chain_of_takeovers_counts_each_expiry_and_overlaps_once() {
        // Three dead owners in a row; a fourth takes over. The union is 3 s, not more.
        let chain = log(vec![
            (0, lease(0, Some("A"), Some(1_000))),
            (1_100, lease(1_100, Some("B"), Some(2_100))),
            (2_200, lease(2_200, Some("C"), Some(3_200))),
            (3_300, lease(3_300, Some("D"), Some(4_300))),
        ]);
        let spans = lease_expiries(&chain, LEASE);
        assert_eq!(spans.len(), 3);
        assert_eq!(total(&spans), Duration::from_secs(3));
        // The same lease seen twice (e.g. a sleep step over the same interval) counts once.
        let mut w = DeclaredWaits::default();
        w.starting_at(0, LEASE);
        for (s, e) in spans {
            w.between(s, e);
        }
        assert_eq!(w.critical_path(), Duration::from_secs(3));
    }

    #[test]
    fn a_fault_written_lease_runs_to_the_expiry_the_fault_wrote() {
        let l = log(vec![
            marker("stuck", true),
            (0, lease(0, Some("injected"), Some(2_500))),
            marker("stuck", false),
            (2_600, lease(2_600, Some("A"), Some(3_600))),
        ]);
        assert_eq!(lease_expiries(&l, LEASE), vec![(0, 2_500)]);
        // An already-expired injected lease is no wait at all.
        let expired = log(vec![
            marker("old", true),
            (0, lease(-5_000, Some("injected"), Some(-5_000))),
            marker("old", false),
            (100, lease(100, Some("A"), Some(1_100))),
        ]);
        assert_eq!(lease_expiries(&expired, LEASE), vec![]);
    }
}
