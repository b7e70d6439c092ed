//! Backfill throughput: the reference startup backfill against a raw baseline on the same
//! home, in the same run.
//!
//! - **Reference**: `state_db::try_init` with production timings on a fresh sqlite home
//!   (open, migrate, claim the lease, scan, extract, upsert in batches with fenced
//!   checkpoints, complete).
//! - **Baseline**: the least work that builds an equivalent index: walk both roots, read
//!   each rollout's head with `read_session_meta_head`, and insert one row per rollout into
//!   a fresh SQLite table in ONE transaction through ONE prepared statement. Nothing else:
//!   no lease, no secondary indexes, no pragmas, no batching.
//!
//! Page cache: both read the same files. Each is run once untimed to warm the cache, then
//! the timed repeats alternate which goes first, so neither is systematically the one that
//! finds a cold cache. Before every run the workspace's filesystem is flushed (untimed), so
//! neither pays for write-back the other (or the home's generation) left behind. The reference's last DB is kept as the size's complete DB, which the
//! other families reuse instead of backfilling again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection};

use super::stats::{ratio, timed, Stat};
use super::workspace::{remove_dir, BenchHome, Workspace};
use super::Progress;
use crate::process::ProcessContext;
use crate::rollout::head::read_session_meta_head;
use crate::rollout::layout::{is_rollout_file_name, Root};
use crate::state_db::try_init;

/// Backfill figures of one home size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackfillFigures {
    pub size: usize,
    /// Wall time of one reference backfill (`try_init` on a fresh DB), seconds.
    pub reference_secs: Stat,
    /// Wall time of one baseline index build, seconds.
    pub baseline_secs: Stat,
    /// `size / median reference_secs`.
    pub reference_rollouts_per_sec: f64,
    /// `size / median baseline_secs`.
    pub baseline_rollouts_per_sec: f64,
    /// Reference throughput / baseline throughput (goal: at least 0.5 at 100,000).
    pub ratio: Option<f64>,
}

/// Measures the backfill of `home` `repeats` times each (after one warm-up each).
pub fn measure(
    ws: &Workspace,
    home: &mut BenchHome,
    repeats: usize,
    progress: &Progress,
) -> Result<BackfillFigures, String> {
    progress.note(format!("backfill: {} rollouts", home.size));
    // Warm-up: one of each, untimed; the reference's DB becomes the home's complete DB.
    let warm_db = run_reference(ws, home)?.1;
    remove_dir(&run_baseline(ws, home)?.1);
    let mut reference = Vec::new();
    let mut baseline = Vec::new();
    let mut last_reference_db = warm_db;
    for repeat in 0..repeats {
        let mut one_reference = || -> Result<(), String> {
            let (took, db) = run_reference(ws, home)?;
            reference.push(took.as_secs_f64());
            remove_dir(&std::mem::replace(&mut last_reference_db, db));
            Ok(())
        };
        if repeat % 2 == 0 {
            one_reference()?;
        }
        let (took, db) = run_baseline(ws, home)?;
        baseline.push(took.as_secs_f64());
        remove_dir(&db);
        if repeat % 2 == 1 {
            one_reference()?;
        }
    }
    if let Some(old) = home.complete_db.replace(last_reference_db) {
        remove_dir(&old);
    }
    let reference_secs = Stat::from_samples(reference).ok_or("no reference samples")?;
    let baseline_secs = Stat::from_samples(baseline).ok_or("no baseline samples")?;
    let size = home.size as f64;
    let reference_rollouts_per_sec = size / reference_secs.median;
    let baseline_rollouts_per_sec = size / baseline_secs.median;
    Ok(BackfillFigures {
        size: home.size,
        ratio: ratio(reference_rollouts_per_sec, baseline_rollouts_per_sec),
        reference_rollouts_per_sec,
        baseline_rollouts_per_sec,
        reference_secs,
        baseline_secs,
    })
}

/// One reference backfill on a fresh DB; returns its time and the DB's sqlite home.
fn run_reference(ws: &Workspace, home: &BenchHome) -> Result<(Duration, PathBuf), String> {
    let dir = ws
        .fresh_dir(&format!("db-backfill-{}", home.size))
        .map_err(|e| format!("cannot create a DB directory: {e}"))?;
    ws.settle();
    let cfg = home.config(&dir);
    let ctx = ProcessContext::plain("bench-backfill");
    let (result, took) = timed(|| try_init(&ctx, &cfg));
    let report = result.map_err(|e| format!("reference backfill failed: {e}"))?;
    let b = &report.backfill;
    if !b.ran || b.upserted != home.size as u64 || b.failed != 0 {
        return Err(format!(
            "reference backfill of {} rollouts did not index them all: ran {}, upserted {}, failed {}",
            home.size, b.ran, b.upserted, b.failed
        ));
    }
    Ok((took, dir))
}

/// One baseline index build on a fresh DB; returns its time and the DB's directory.
fn run_baseline(ws: &Workspace, home: &BenchHome) -> Result<(Duration, PathBuf), String> {
    let dir = ws
        .fresh_dir(&format!("db-baseline-{}", home.size))
        .map_err(|e| format!("cannot create a DB directory: {e}"))?;
    let db_path = dir.join("baseline.sqlite");
    ws.settle();
    let (rows, took) = timed(|| baseline_index(&home.codex_home, &db_path));
    let rows = rows?;
    if rows != home.size {
        return Err(format!("baseline indexed {rows} of {} rollouts", home.size));
    }
    Ok((took, dir))
}

/// The baseline itself: walk, read heads, insert in one transaction. Returns the row count.
pub fn baseline_index(codex_home: &Path, db_path: &Path) -> Result<usize, String> {
    let sq = |e: rusqlite::Error| format!("baseline sqlite error at {}: {e}", db_path.display());
    let mut files = Vec::new();
    for root in Root::ALL {
        walk(&root.dir(codex_home), &mut files);
    }
    let mut conn = Connection::open(db_path).map_err(sq)?;
    conn.execute_batch(
        "CREATE TABLE threads (
            id TEXT PRIMARY KEY,
            rollout_path TEXT NOT NULL,
            created_at TEXT,
            cwd TEXT,
            model_provider TEXT,
            source TEXT,
            cli_version TEXT
        )",
    )
    .map_err(sq)?;
    let tx = conn.transaction().map_err(sq)?;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO threads (id, rollout_path, created_at, cwd, model_provider, source,
                    cli_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sq)?;
        for path in &files {
            let head = read_session_meta_head(path).map_err(|e| e.to_string())?;
            insert
                .execute(params![
                    head.id,
                    path.to_string_lossy(),
                    head.timestamp,
                    head.cwd,
                    head.model_provider,
                    head.source.map(|s| s.to_string()),
                    head.cli_version,
                ])
                .map_err(sq)?;
        }
    }
    tx.commit().map_err(sq)?;
    Ok(files.len())
}

/// Plain recursive listing of `rollout-*.jsonl` regular files (no sorting, no warnings).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&entry.path(), out);
        } else if kind.is_file() && entry.file_name().to_str().is_some_and(is_rollout_file_name) {
            out.push(entry.path());
        }
    }
}
