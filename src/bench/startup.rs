//! Startup gate cost: what every process start pays once the backfill is complete.
//!
//! `state_db::try_init` on an already complete DB (open, pragmas, migration check, the
//! `quick_check` probe of the tables, read of the backfill state, the startup reconcile)
//! against the floor of any DB-backed start: `rusqlite::Connection::open` of the same file
//! plus one trivial query (`SELECT count(*) FROM sqlite_master`, which makes SQLite
//! actually read the file header and schema). Samples alternate between the two; the
//! figure is the ratio of medians. The two parts of that cost that grow with the home are
//! also timed alone on the same DB: the probe (`recovery::probe`, a `quick_check` of
//! `threads` and `backfill_state`, which reads every page of them) and the startup
//! reconcile (a `stat` of every rollout directory). A family stops sampling after
//! [`BUDGET`] once it has [`MIN_SAMPLES`], so a million-rollout home stays affordable.

use rusqlite::Connection;

use std::time::{Duration, Instant};

use super::stats::{micros, ratio, timed, Stat};
use super::workspace::{BenchHome, Workspace};
use super::Progress;
use crate::backfill::reconcile::{reconcile_new_rollouts, ReconcileMode};
use crate::process::ProcessContext;
use crate::state::backfill_state::BackfillStatus;
use crate::state_db::try_init;

/// Startup gate figures of one home size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StartupGateFigures {
    pub size: usize,
    /// `try_init` on a complete DB, µs.
    pub try_init_us: Stat,
    /// `Connection::open` + one trivial query on the same file, µs.
    pub open_query_us: Stat,
    /// `try_init_us / open_query_us` (medians).
    pub ratio: Option<f64>,
    /// The `quick_check` probe alone, µs (part of `try_init_us`).
    pub quick_check_us: Stat,
    /// The startup reconcile alone on an unchanged home, µs (part of `try_init_us`).
    pub reconcile_us: Stat,
}

/// Sampling time a family stops at (once it has [`MIN_SAMPLES`]).
const BUDGET: Duration = Duration::from_secs(30);
const MIN_SAMPLES: usize = 5;

/// Whether a family that started at `started` and has `n` samples should stop.
fn over_budget(started: Instant, n: usize) -> bool {
    n >= MIN_SAMPLES && started.elapsed() > BUDGET
}

pub fn measure(
    ws: &Workspace,
    home: &mut BenchHome,
    samples: usize,
    progress: &Progress,
) -> Result<StartupGateFigures, String> {
    progress.note(format!("startup gate: {} rollouts", home.size));
    let sqlite_home = home.ensure_complete_db(ws)?;
    let cfg = home.config(&sqlite_home);
    let db_path = cfg.runtime.db_path();
    let gate = || -> Result<std::time::Duration, String> {
        let ctx = ProcessContext::plain("bench-gate");
        let (report, took) = timed(|| try_init(&ctx, &cfg));
        let report = report.map_err(|e| format!("try_init on a complete DB failed: {e}"))?;
        if report.status != BackfillStatus::Complete || report.backfill.ran {
            return Err(format!(
                "try_init on a complete DB did work: status {}, ran {}",
                report.status, report.backfill.ran
            ));
        }
        Ok(took)
    };
    let open = || -> Result<std::time::Duration, String> {
        let (count, took) = timed(|| {
            let conn = Connection::open(&db_path)?;
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
        });
        count.map_err(|e| format!("cannot open {}: {e}", db_path.display()))?;
        Ok(took)
    };
    // Warm-up, untimed.
    gate()?;
    open()?;
    let mut gate_us = Vec::with_capacity(samples);
    let mut open_us = Vec::with_capacity(samples);
    let started = Instant::now();
    for i in 0..samples {
        if over_budget(started, i) {
            break;
        }
        if i % 2 == 0 {
            gate_us.push(micros(gate()?));
            open_us.push(micros(open()?));
        } else {
            open_us.push(micros(open()?));
            gate_us.push(micros(gate()?));
        }
    }
    let try_init_us = Stat::from_samples(gate_us).ok_or("no try_init samples")?;
    let open_query_us = Stat::from_samples(open_us).ok_or("no open samples")?;

    let ctx = ProcessContext::plain("bench-gate-parts");
    let handle = try_init(&ctx, &cfg)
        .map_err(|e| format!("try_init on a complete DB failed: {e}"))?
        .handle;
    let quick_check_us = sample_for(samples, || {
        crate::recovery::probe(&handle).map_err(|e| format!("quick_check probe failed: {e}"))
    })?;
    let reconcile_us = sample_for(samples, || {
        let outcome = reconcile_new_rollouts(&handle, ReconcileMode::Startup)
            .map_err(|e| format!("startup reconcile failed: {e}"))?;
        match outcome.inserted.len() {
            0 => Ok(()),
            n => Err(format!(
                "the startup reconcile of an unchanged home indexed {n} rollouts"
            )),
        }
    })?;
    Ok(StartupGateFigures {
        size: home.size,
        ratio: ratio(try_init_us.median, open_query_us.median),
        try_init_us,
        open_query_us,
        quick_check_us,
        reconcile_us,
    })
}

/// Up to `samples` timings of `f` in µs (after one untimed run), within the budget.
fn sample_for(samples: usize, mut f: impl FnMut() -> Result<(), String>) -> Result<Stat, String> {
    f()?;
    let started = Instant::now();
    let mut us = Vec::with_capacity(samples);
    while us.len() < samples.max(1) && !over_budget(started, us.len()) {
        let (result, took) = timed(&mut f);
        result?;
        us.push(micros(took));
    }
    Stat::from_samples(us).ok_or_else(|| "no samples".to_string())
}
