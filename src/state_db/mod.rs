//! Process entry points to the state DB: `try_init` / `init` (open, migrate, run the
//! startup backfill gate) and `open_existing` (open-only).
//!
//! Only entrypoints call these, once per process; consumers receive the resulting
//! `Option<StateDbHandle>`. The gate follows Codex: read the state, run the backfill inline
//! if it can claim the lease, re-read, and otherwise poll until the status is `complete` or
//! the wait timeout passes. Unlike Codex the timings are values passed in, the last sleep
//! never overshoots the deadline, and a dead owner's lease expires after `lease` (not 15
//! minutes of wedged starts) because the heartbeat keeps only live owners fresh.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::backfill::{run_backfill, BackfillOutcome};
use crate::events::kinds;
use crate::failpoints::Failpoint;
use crate::process::ProcessContext;
use crate::state::backfill_state::{BackfillState, BackfillStatus, LeaseOwnerInfo};
use crate::state::{OpenMode, RuntimeOptions, StateDbHandle, StateError, StateRuntime};
use crate::timing::{format_duration, Timings};

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
    #[error("timed out waiting for state db backfill at {codex_home} after {timeout} (status: {status}){}", owner_hint(.owner))]
    TimedOut {
        codex_home: PathBuf,
        timeout: String,
        status: String,
        owner: Option<Box<LeaseOwnerInfo>>,
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

/// Opens and migrates the state DB, then runs the backfill gate. Blocking.
pub fn try_init(ctx: &Arc<ProcessContext>, cfg: &StateDbConfig) -> Result<InitReport, InitError> {
    let rt = StateRuntime::open(ctx, cfg.runtime.clone(), OpenMode::CreateAndMigrate).map_err(
        |source| InitError::Open {
            sqlite_home: cfg.runtime.sqlite_home.clone(),
            source: Box::new(source),
        },
    )?;
    ctx.failpoint(Failpoint::InitAfterOpen)
        .map_err(|e| InitError::Backfill {
            codex_home: cfg.runtime.codex_home.clone(),
            source: Box::new(e.into()),
        })?;
    match wait_for_backfill_gate(&rt, cfg) {
        Ok(report) => {
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

fn wait_for_backfill_gate(
    rt: &StateDbHandle,
    cfg: &StateDbConfig,
) -> Result<InitReport, InitError> {
    let ctx = rt.context().clone();
    let home = cfg.runtime.codex_home.clone();
    let timings = &cfg.timings;
    let started = Instant::now();
    let mut total = BackfillOutcome::default();
    let mut attempts = 0u32;
    let mut warned = false;
    let read_state = |rt: &StateDbHandle| {
        rt.backfill_state().map_err(|source| InitError::ReadState {
            codex_home: home.clone(),
            source: Box::new(source),
        })
    };
    loop {
        ctx.failpoint(Failpoint::GateBeforePoll)
            .map_err(|e| InitError::Backfill {
                codex_home: home.clone(),
                source: Box::new(e.into()),
            })?;
        let state = read_state(rt)?;
        let done = |state: BackfillState, total: BackfillOutcome, attempts| InitReport {
            handle: rt.clone(),
            status: state.status,
            waited: started.elapsed(),
            backfill: total,
            attempts,
        };
        if state.status == BackfillStatus::Complete {
            return Ok(done(state, total, attempts));
        }
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
        let state = read_state(rt)?;
        if state.status == BackfillStatus::Complete {
            return Ok(done(state, total, attempts));
        }
        let elapsed = started.elapsed();
        let deadline = ctx.decisions().gate_deadline(timings.wait_timeout);
        let timed_out = deadline.is_some_and(|d| elapsed >= d);
        if timed_out {
            return Err(InitError::TimedOut {
                codex_home: home,
                timeout: format_duration(timings.wait_timeout),
                status: state.status.to_string(),
                owner: state.owner.map(Box::new),
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
            tracing::info!("{message}");
        }
        // The last nap ends at the deadline, never past it.
        let remaining = deadline.map_or(timings.poll_interval, |d| d.saturating_sub(elapsed));
        let nap = timings.poll_interval.min(remaining);
        std::thread::sleep(nap.max(Duration::from_millis(1)));
    }
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
