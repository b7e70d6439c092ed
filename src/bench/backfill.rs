//! Backfill throughput: the reference startup backfill against two baselines on the same
//! home, in the same run.
//!
//! - **Reference**: `state_db::try_init` with production timings on a fresh sqlite home
//!   (open, migrate, claim the lease, scan, extract, upsert in batches with fenced
//!   checkpoints, complete).
//! - **Same-work baseline** (`same_work`): the same rows and columns, whole-file extraction
//!   on every core, one writer, one transaction per batch — the honest limit.
//! - **Head-only baseline**: the least work that builds an equivalent lookup index: walk both roots, read
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

use super::same_work::same_work_index;
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
    /// Wall time of one same-work baseline build, seconds.
    pub same_work_baseline_secs: Stat,
    /// Wall time of one head-only baseline build (7 columns from the head), seconds.
    pub head_only_baseline_secs: Stat,
    /// `size / median reference_secs`.
    pub reference_rollouts_per_sec: f64,
    /// `size / median same_work_baseline_secs`.
    pub same_work_baseline_rollouts_per_sec: f64,
    /// `size / median head_only_baseline_secs`.
    pub head_only_baseline_rollouts_per_sec: f64,
    /// Reference throughput / same-work throughput (goal: at least 0.8 at 100,000).
    pub same_work_ratio: Option<f64>,
    /// Reference throughput / head-only throughput (less work than the reference does).
    pub head_only_ratio: Option<f64>,
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
    remove_dir(&run_baseline(ws, home, Baseline::SameWork)?.1);
    remove_dir(&run_baseline(ws, home, Baseline::HeadOnly)?.1);
    let mut reference = Vec::new();
    let mut same_work = Vec::new();
    let mut head_only = Vec::new();
    let mut last_reference_db = warm_db;
    for repeat in 0..repeats {
        // Rotate the order so none of the three always runs first (or last) in a round.
        for slot in 0..3 {
            match (repeat + slot) % 3 {
                0 => {
                    let (took, db) = run_reference(ws, home)?;
                    reference.push(took.as_secs_f64());
                    remove_dir(&std::mem::replace(&mut last_reference_db, db));
                }
                1 => {
                    let (took, db) = run_baseline(ws, home, Baseline::SameWork)?;
                    same_work.push(took.as_secs_f64());
                    remove_dir(&db);
                }
                _ => {
                    let (took, db) = run_baseline(ws, home, Baseline::HeadOnly)?;
                    head_only.push(took.as_secs_f64());
                    remove_dir(&db);
                }
            }
        }
    }
    if let Some(old) = home.complete_db.replace(last_reference_db) {
        remove_dir(&old);
    }
    let reference_secs = Stat::from_samples(reference).ok_or("no reference samples")?;
    let same_work_baseline_secs = Stat::from_samples(same_work).ok_or("no same-work samples")?;
    let head_only_baseline_secs = Stat::from_samples(head_only).ok_or("no head-only samples")?;
    let size = home.size as f64;
    let reference_rollouts_per_sec = size / reference_secs.median;
    let same_work_baseline_rollouts_per_sec = size / same_work_baseline_secs.median;
    let head_only_baseline_rollouts_per_sec = size / head_only_baseline_secs.median;
    Ok(BackfillFigures {
        size: home.size,
        same_work_ratio: ratio(
            reference_rollouts_per_sec,
            same_work_baseline_rollouts_per_sec,
        ),
        head_only_ratio: ratio(
            reference_rollouts_per_sec,
            head_only_baseline_rollouts_per_sec,
        ),
        reference_rollouts_per_sec,
        same_work_baseline_rollouts_per_sec,
        head_only_baseline_rollouts_per_sec,
        reference_secs,
        same_work_baseline_secs,
        head_only_baseline_secs,
    })
}

#[derive(Debug, Clone, Copy)]
enum Baseline {
    SameWork,
    HeadOnly,
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
fn run_baseline(
    ws: &Workspace,
    home: &BenchHome,
    which: Baseline,
) -> Result<(Duration, PathBuf), String> {
    let dir = ws
        .fresh_dir(&format!("db-baseline-{}", home.size))
        .map_err(|e| format!("cannot create a DB directory: {e}"))?;
    ws.settle();
    let (rows, took) = match which {
        Baseline::SameWork => {
            timed(|| same_work_index(&home.codex_home, &dir, crate::timing::DEFAULT_BATCH_SIZE))
        }
        Baseline::HeadOnly => {
            timed(|| baseline_index(&home.codex_home, &dir.join("baseline.sqlite")))
        }
    };
    let rows = rows?;
    if rows != home.size {
        return Err(format!(
            "{which:?} baseline indexed {rows} of {} rollouts",
            home.size
        ));
    }
    Ok((took, dir))
}

/// The head-only baseline: walk, read heads, insert in one transaction. Returns the row count.
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
pub(super) fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
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
