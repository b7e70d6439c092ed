//! Startup gate cost: what every process start pays once the backfill is complete.
//!
//! `state_db::try_init` on an already complete DB (open, pragmas, migration check, read of
//! the backfill state) against the floor of any DB-backed start: `rusqlite::Connection::open`
//! of the same file plus one trivial query (`SELECT count(*) FROM sqlite_master`, which
//! makes SQLite actually read the file header and schema). Samples alternate between the
//! two; the figure is the ratio of medians.

use rusqlite::Connection;

use super::stats::{micros, ratio, timed, Stat};
use super::workspace::{BenchHome, Workspace};
use super::Progress;
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
    for i in 0..samples {
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
    Ok(StartupGateFigures {
        size: home.size,
        ratio: ratio(try_init_us.median, open_query_us.median),
        try_init_us,
        open_query_us,
    })
}
