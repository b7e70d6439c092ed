//! What a scenario may ask of the real Codex: the scenario-level gaps (failpoints, clock
//! skew, consumer wiring, reference-only roles and handle modes) that skip a scenario with
//! the reason, and the expectation fields only the reference reports (`source`,
//! `fallback_reason`, `repaired`, startup-gate details...) that are removed from an
//! expectation and listed as not observed. Nothing is passed silently.

use std::time::Duration;

use crate::faults::Fault;
use crate::scenario::model::{Expect, HandleMode, Role, Scenario, Step, TimingSpec, WorkerKind};
use crate::state::JournalMode;

/// Codex 0.169.0's fixed timings (reference/codex-state-db.md): a 900 s lease, a 30 s
/// startup wait, 1 s polls.
pub const CODEX_LEASE: Duration = Duration::from_secs(900);
pub const CODEX_WAIT: Duration = Duration::from_secs(30);
pub const CODEX_POLL: Duration = Duration::from_secs(1);

/// The scenario's timing spec with Codex's own values (slack and busy timeout stay).
pub fn codex_timing(t: &TimingSpec) -> TimingSpec {
    let mut c = t.clone();
    c.lease = CODEX_LEASE;
    c.wait_timeout = CODEX_WAIT;
    c.poll = CODEX_POLL;
    c
}

/// Why this scenario cannot run on Codex, if it cannot.
pub fn unsupported(sc: &Scenario, has_worker_binary: bool) -> Option<String> {
    let gap = |what: &str| Some(format!("not observable on this target: {what}"));
    if sc.workers.iter().any(|w| !w.failpoints.is_empty()) {
        return gap("failpoints (Codex has none)");
    }
    if sc.workers.iter().any(|w| w.clock_skew.is_some()) {
        return gap("clock skew (Codex reads the system clock)");
    }
    if sc.workers.iter().any(|w| w.role == Role::Entrypoint)
        || sc
            .steps
            .iter()
            .any(|s| matches!(s, Step::Entrypoint { .. }))
    {
        return gap("consumer wiring inside one process (entrypoints)");
    }
    for w in &sc.workers {
        match w.role {
            Role::Writer => {
                return gap("a rollout writer (Codex writes rollouts only in a live model session)")
            }
            Role::LockHolder | Role::Commit
                if w.kind == WorkerKind::Process && !has_worker_binary =>
            {
                return Some("process workers need the statedb-harness binary".into())
            }
            _ => {}
        }
        if w.handle != HandleMode::Init {
            return gap("handle modes (Codex always opens its DB)");
        }
    }
    if sc.home.journal_mode != JournalMode::default() {
        return gap("the journal mode (Codex's own config)");
    }
    for s in &sc.steps {
        match s {
            Step::WaitFor { event, .. } => {
                return gap(&format!(
                    "the reference's event '{event}' (Codex emits none)"
                ))
            }
            Step::Release { .. } => return gap("failpoint release"),
            Step::List { prune: true, .. } => {
                return gap("list --prune (a reference option; later rows depend on it)")
            }
            _ => {}
        }
    }
    let exercised = sc.steps.iter().any(|s| match s {
        Step::Lookup { handle, .. } | Step::List { handle, .. } => *handle == HandleMode::Init,
        Step::Init { .. } | Step::Start { .. } => true,
        _ => false,
    });
    if !exercised {
        return gap("every step uses a reference-only handle mode (Codex always opens its DB)");
    }
    None
}

/// Why one step is not run on Codex (the scenario goes on without it; its effect on a
/// reference run is a read that changes nothing the later steps depend on).
pub fn step_gap(step: &Step) -> Option<String> {
    match step {
        Step::Lookup { handle, .. } | Step::List { handle, .. } if *handle != HandleMode::Init => {
            Some(format!(
                "step '{}' (handle mode {handle:?}: Codex always opens its DB)",
                crate::scenario::runner::step_label(step)
            ))
        }
        Step::Archive { .. } => Some(format!(
            "step '{}' (archive is not driven through the app-server yet)",
            crate::scenario::runner::step_label(step)
        )),
        Step::List {
            cursor: Some(_), ..
        } => Some("step 'list' from a given cursor (not driven yet)".to_string()),
        Step::Lookup {
            ask_other_home: true,
            ..
        }
        | Step::List {
            ask_other_home: true,
            ..
        } => Some(format!(
            "step '{}' asking about another home (one app-server serves one home)",
            crate::scenario::runner::step_label(step)
        )),
        _ => None,
    }
}

/// Scenarios that must wait out Codex's 30 s startup wait (a live lease).
pub fn is_slow(sc: &Scenario) -> bool {
    sc.faults
        .iter()
        .any(|f| matches!(f.fault, Fault::StuckLease { .. }))
}

/// Which worker the expectation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Init,
    Lookup,
    List,
    Other,
}

impl Subject {
    pub fn of_role(role: Role) -> Subject {
        match role {
            Role::Init => Subject::Init,
            Role::Lookup => Subject::Lookup,
            // Codex backfills only at startup: a backfill worker is a starting process.
            Role::Backfill => Subject::Init,
            Role::List => Subject::List,
            _ => Subject::Other,
        }
    }
}

/// Removes what Codex does not expose; returns the rest and the names removed.
pub fn observable(e: &Expect, subject: Subject) -> (Expect, Vec<&'static str>) {
    let mut e = e.clone();
    let mut gone = Vec::new();
    let mut drop = |name: &'static str, present: bool| {
        if present {
            gone.push(name);
        }
    };
    drop("source", e.source.take().is_some());
    drop("fallback_reason", e.fallback_reason.take().is_some());
    drop("repaired", e.repaired.take().is_some());
    drop(
        "error_contains (the reference's wording)",
        e.error_contains.take().is_some(),
    );
    drop("backfill_ran", e.backfill_ran.take().is_some());
    drop("upserted", e.upserted.take().is_some());
    drop("failed", e.failed.take().is_some());
    drop("stale (the reference's report)", e.stale.take().is_some());
    drop("exit_code (failpoint exits)", e.exit_code.take().is_some());
    drop("db_opens", e.db_opens.take().is_some());
    drop("refused_opens", e.refused_opens.take().is_some());
    drop("consumers_ok", e.consumers_ok.take().is_some());
    // `timed_out` is the reference's startup gate giving up (for a lookup too: its startup
    // timed out); Codex has no such report.
    drop(
        "timed_out (the reference's gate report)",
        e.timed_out.take().is_some(),
    );
    // A failed `init` is the reference's strict gate (`try_init`) refusing while its other
    // roles go on without the DB; a Codex process either answers or exits, and the steps
    // that need it to answer judge that. Only an init that must succeed is comparable.
    if subject == Subject::Init && e.ok == Some(false) {
        e.ok = None;
        gone.push("ok = false (the reference's strict gate; Codex is judged by the steps that need an answer)");
    }
    (e, gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_only_fields_are_removed_and_named() {
        let e = Expect {
            ok: Some(true),
            source: Some(crate::scenario::model::OrNone::Some(
                crate::lookup::LookupSource::Db,
            )),
            repaired: Some(false),
            path: Some("t0".into()),
            ..Expect::default()
        };
        let (kept, gone) = observable(&e, Subject::Lookup);
        assert_eq!(kept.path.as_deref(), Some("t0"));
        assert_eq!(kept.ok, Some(true));
        assert!(kept.source.is_none() && kept.repaired.is_none());
        assert_eq!(gone, vec!["source", "repaired"]);
    }

    #[test]
    fn a_refused_start_is_not_comparable() {
        let e = Expect {
            ok: Some(false),
            timed_out: Some(true),
            ..Expect::default()
        };
        let (kept, gone) = observable(&e, Subject::Init);
        assert!(kept.ok.is_none() && kept.timed_out.is_none());
        assert_eq!(gone.len(), 2);
        // A lookup that must answer stays comparable; its gate's timeout does not.
        let e = Expect {
            ok: Some(true),
            timed_out: Some(true),
            ..Expect::default()
        };
        let (kept, _) = observable(&e, Subject::Lookup);
        assert_eq!((kept.ok, kept.timed_out), (Some(true), None));
    }
}
