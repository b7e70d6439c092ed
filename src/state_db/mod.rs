//! Process entry points to the state DB: `try_init` / `init` (open, migrate, run the
//! startup backfill gate) and `open_existing` (open-only).
//!
//! Only entrypoints call these, once per process; consumers receive the resulting
//! `Option<StateDbHandle>`. The gate follows Codex: read the state, run the backfill inline
//! if it can claim the lease, re-read, and otherwise poll until the status is `complete` or
//! the wait timeout passes. Unlike Codex the timings are values passed in, the last sleep
//! never overshoots the deadline, a dead owner's lease expires after `lease` (not 15
//! minutes of wedged starts) because the heartbeat keeps only live owners fresh, a waiter
//! wakes on the owner's commit instead of its next poll, and an owner that keeps making
//! progress is waited for up to a cap (see `gate` and `watch`).

mod gate;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::backfill::BackfillOutcome;
use crate::events::kinds;
use crate::failpoints::Failpoint;
use crate::process::ProcessContext;
use crate::state::backfill_state::{BackfillStatus, LeaseOwnerInfo};
use crate::state::creation::is_harness_home;
use crate::state::init_phase::{self, InitPhase, PhaseStatus};
use crate::state::legacy_files::remove_legacy_state_dbs;
use crate::state::{OpenMode, RuntimeOptions, StateDbHandle, StateError, StateRuntime};
use crate::timing::Timings;

use gate::wait_for_backfill_gate;

/// Everything an entrypoint needs to bring up the state DB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDbConfig {
    pub runtime: RuntimeOptions,
    pub timings: Timings,
}

impl StateDbConfig {
    pub fn new(codex_home: impl Into<PathBuf>, timings: Timings) -> Self {
        let mut runtime = RuntimeOptions::new(codex_home);
        runtime.busy_timeout = timings.busy_timeout;
        StateDbConfig { runtime, timings }
    }
}

/// Why startup could not produce a handle.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("failed to initialize state runtime at {sqlite_home}: {source}")]
    Open {
        sqlite_home: PathBuf,
        #[source]
        source: Box<StateError>,
    },
    #[error("failed to read backfill state at {codex_home}: {source}")]
    ReadState {
        codex_home: PathBuf,
        #[source]
        source: Box<StateError>,
    },
    /// Codex's text, then who holds the lease and which way the owner failed the wait
    /// (wedged, silent, or still progressing when the cap ran out).
    #[error("timed out waiting for state db backfill at {codex_home} after {timeout} (status: {status}){}{verdict}", owner_hint(.owner))]
    TimedOut {
        codex_home: PathBuf,
        timeout: String,
        status: String,
        owner: Option<Box<LeaseOwnerInfo>>,
        verdict: String,
    },
    #[error("the damaged state db at {db} was kept as {backup}, but no fresh one could be made: {reason}")]
    Rebuild {
        db: PathBuf,
        backup: PathBuf,
        reason: String,
    },
    #[error("state db backfill at {codex_home} stopped: {source}")]
    Backfill {
        codex_home: PathBuf,
        #[source]
        source: Box<StateError>,
    },
}

fn owner_hint(owner: &Option<Box<LeaseOwnerInfo>>) -> String {
    match owner {
        Some(o) => format!(
            "; lease held by owner {} (pid {}, host {})",
            o.owner_id,
            o.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            o.host.as_deref().unwrap_or("?")
        ),
        None => String::new(),
    }
}

impl InitError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, InitError::TimedOut { .. })
    }

    /// The DB file itself is damaged (not a database, malformed pages, lost schema).
    pub fn damaged_db(&self) -> bool {
        match self {
            InitError::Open { source, .. }
            | InitError::ReadState { source, .. }
            | InitError::Backfill { source, .. } => crate::recovery::is_damage(source),
            InitError::TimedOut { .. } | InitError::Rebuild { .. } => false,
        }
    }
}

/// What a successful startup did.
#[derive(Debug, Clone)]
pub struct InitReport {
    pub handle: StateDbHandle,
    pub status: BackfillStatus,
    /// Time spent in the gate (including this process's own backfill).
    pub waited: Duration,
    /// Sum over the gate's attempts of what this process's backfill did.
    pub backfill: BackfillOutcome,
    pub attempts: u32,
}

/// Makes a fresh, empty state DB for the runtime's sqlite home after a damaged one was set
/// aside in a home that is not the harness's own (the CLI lets the installed Codex create
/// it, so Codex can still open it). `Err` is the reason it could not.
pub type DbCreator<'a> = &'a (dyn Fn(&RuntimeOptions) -> Result<(), String> + 'a);

/// Opens and migrates the state DB, then runs the backfill gate. Blocking.
///
/// A damaged DB (found at open or by the first queries) is set aside untouched as a
/// timestamped backup, the index is rebuilt from the rollouts and the DB-only values that
/// could be read are carried over (`crate::recovery`). Only in a harness-own home: in any
/// other home the damaged DB stays where it is and the error is returned, since a DB the
/// harness made there would stop Codex from starting (see [`try_init_with`]).
pub fn try_init(ctx: &Arc<ProcessContext>, cfg: &StateDbConfig) -> Result<InitReport, InitError> {
    try_init_with(ctx, cfg, None)
}

/// [`try_init`] that, in a home that is not the harness's own, recovers a damaged DB by
/// having `creator` make the fresh one (after the damaged file was set aside).
pub fn try_init_with(
    ctx: &Arc<ProcessContext>,
    cfg: &StateDbConfig,
    creator: Option<DbCreator<'_>>,
) -> Result<InitReport, InitError> {
    match try_init_once(ctx, cfg) {
        Err(err) if err.damaged_db() => {
            let harness_home = is_harness_home(&cfg.runtime.codex_home);
            if !harness_home && creator.is_none() {
                return Err(err);
            }
            let Ok(recovery) = crate::recovery::set_aside(ctx, &cfg.runtime) else {
                return Err(err);
            };
            if let (false, Some(create)) = (harness_home, creator) {
                create(&cfg.runtime).map_err(|reason| InitError::Rebuild {
                    db: cfg.runtime.db_path(),
                    backup: recovery.backup.clone(),
                    reason,
                })?;
            }
            let report = try_init_once(ctx, cfg)?;
            crate::recovery::carry_over(&report.handle, &recovery.salvaged);
            Ok(report)
        }
        other => other,
    }
}

fn try_init_once(ctx: &Arc<ProcessContext>, cfg: &StateDbConfig) -> Result<InitReport, InitError> {
    let opened =
        StateRuntime::open(ctx, cfg.runtime.clone(), OpenMode::CreateAndMigrate).and_then(|rt| {
            let probed = crate::recovery::probe(&rt);
            init_phase::record(ctx, InitPhase::PostInitQuery, phase_status(&probed));
            probed.map(|()| rt)
        });
    let rt = opened.map_err(|source| InitError::Open {
        sqlite_home: cfg.runtime.sqlite_home.clone(),
        source: Box::new(source),
    })?;
    // The current DB is open and sound: only now may older state DB files go, and only in a
    // harness-own home. Codex 0.169.0 keeps them in a user's home (tests/interop shows it),
    // so the reference deletes nothing there that the user's own Codex would keep.
    let legacy = if is_harness_home(&cfg.runtime.codex_home) {
        remove_legacy_state_dbs(rt.sqlite_home())
    } else {
        Default::default()
    };
    if !legacy.removed.is_empty() {
        ctx.emit(kinds::LEGACY_DB_REMOVED, json!({"removed": legacy.removed}));
    }
    init_phase::record(
        ctx,
        InitPhase::RemoveLegacyStateDbs,
        if legacy.failed.is_empty() {
            PhaseStatus::Success
        } else {
            PhaseStatus::Failed(crate::state::ErrorClass::Io)
        },
    );
    ctx.failpoint(Failpoint::InitAfterOpen)
        .map_err(|e| InitError::Backfill {
            codex_home: cfg.runtime.codex_home.clone(),
            source: Box::new(e.into()),
        })?;
    let gated = wait_for_backfill_gate(&rt, cfg);
    init_phase::record(
        ctx,
        InitPhase::BackfillGate,
        match &gated {
            Ok(_) => PhaseStatus::Success,
            Err(InitError::TimedOut { .. }) => PhaseStatus::Failed(crate::state::ErrorClass::Lease),
            Err(InitError::Rebuild { .. }) => PhaseStatus::Failed(crate::state::ErrorClass::Io),
            Err(InitError::Open { source, .. })
            | Err(InitError::ReadState { source, .. })
            | Err(InitError::Backfill { source, .. }) => PhaseStatus::Failed(source.class()),
        },
    );
    match gated {
        Ok(report) => {
            // On a DB whose backfill completed before this process started, rollouts that
            // appeared since get their rows now. A process that found the backfill
            // unfinished (it ran it, or waited while another process completed it) starts
            // on an index as fresh as that backfill's scan, and leaves what appeared
            // meanwhile to the listings' reconcile, as the owner does: N processes started
            // together then do not each walk the home once the owner completes.
            if report.attempts == 0 {
                crate::backfill::reconcile::reconcile_or_warn(
                    &report.handle,
                    crate::backfill::reconcile::ReconcileMode::Startup,
                    "startup",
                );
            }
            init_phase::record(ctx, InitPhase::Ready, PhaseStatus::Success);
            ctx.emit(
                kinds::GATE_READY,
                json!({"waited_ms": report.waited.as_millis() as u64, "ran": report.backfill.ran}),
            );
            Ok(report)
        }
        Err(err) => {
            ctx.emit(kinds::GATE_FAILED, json!({"error": err.to_string()}));
            Err(err)
        }
    }
}

fn phase_status(result: &Result<(), StateError>) -> PhaseStatus {
    match result {
        Ok(()) => PhaseStatus::Success,
        Err(err) => PhaseStatus::Failed(err.class()),
    }
}

/// [`try_init`] that logs the error (and prints it to stderr) and returns `None`, for
/// entrypoints that run without a DB when it cannot be had.
pub fn init(ctx: &Arc<ProcessContext>, cfg: &StateDbConfig) -> Option<StateDbHandle> {
    match try_init(ctx, cfg) {
        Ok(report) => Some(report.handle),
        Err(err) => {
            tracing::warn!("failed to initialize state runtime: {err}");
            eprintln!("warning: failed to initialize state runtime: {err}");
            None
        }
    }
}

/// [`try_init`] on a blocking thread, for async entrypoints.
pub async fn try_init_async(
    ctx: Arc<ProcessContext>,
    cfg: StateDbConfig,
) -> Result<InitReport, InitError> {
    let home = cfg.runtime.codex_home.clone();
    tokio::task::spawn_blocking(move || try_init(&ctx, &cfg))
        .await
        .unwrap_or_else(|join| {
            Err(InitError::Backfill {
                codex_home: home.clone(),
                source: Box::new(StateError::Io {
                    path: home,
                    source: std::io::Error::other(format!("init task failed: {join}")),
                }),
            })
        })
}

/// Open-only: a handle on an existing, fully backfilled DB, or `None`. Never creates a
/// file or directory, never migrates, never backfills, writes nothing. A missing file is
/// `Ok(None)`; a file that is not a state DB is an error naming it.
pub fn open_existing(
    ctx: &Arc<ProcessContext>,
    cfg: &StateDbConfig,
) -> Result<Option<StateDbHandle>, StateError> {
    if ctx.decisions().open_only_runs_init() {
        return Ok(try_init(ctx, cfg).ok().map(|r| r.handle));
    }
    let db_path = cfg.runtime.db_path();
    if !db_path.is_file() {
        tracing::info!(path = %db_path.display(), "state db not present; running without it");
        return Ok(None);
    }
    let rt = StateRuntime::open(ctx, cfg.runtime.clone(), OpenMode::ExistingOnly)?;
    let state = rt.backfill_state()?;
    if state.status == BackfillStatus::Complete {
        Ok(Some(rt))
    } else {
        tracing::warn!(
            "state db backfill not complete at {} (status: {})",
            cfg.runtime.codex_home.display(),
            state.status
        );
        Ok(None)
    }
}
