//! The startup backfill as a real `statedb-harness init` process on a fresh DB, observed
//! from outside: wall time, the process's peak resident memory (its `VmHWM` read as it
//! exits, see [`super::peak_rss`] for why not `wait4`'s `ru_maxrss`) and the size of the
//! DB it left behind (the file plus its `-wal`/`-shm`).
//!
//! The memory goal is that the peak is bounded by the batch, not by the home: the scan
//! streams the roots one directory at a time, the read-ahead holds a few batches.

use std::path::Path;
use std::process::{Command, Stdio};

use super::peak_rss::run_traced;
use super::workspace::{remove_dir, BenchHome, Workspace};

/// What one `init` process on a fresh DB did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitProcessFigures {
    pub size: usize,
    /// Spawn to exit, seconds.
    pub backfill_secs: f64,
    /// Peak resident set of the process (`VmHWM` at its exit), MiB.
    pub rss_peak_mb: f64,
    /// The DB's files after the backfill, MiB.
    pub db_size_mb: f64,
}

/// Runs one `init --json` process of `binary` on `home` with a fresh sqlite home.
pub fn measure(
    ws: &Workspace,
    home: &BenchHome,
    binary: &Path,
) -> Result<InitProcessFigures, String> {
    let dir = ws
        .fresh_dir(&format!("db-init-process-{}", home.size))
        .map_err(|e| format!("cannot create a DB directory: {e}"))?;
    ws.settle();
    let result = run(binary, &home.codex_home, &dir).map(|(secs, rss_kb)| InitProcessFigures {
        size: home.size,
        backfill_secs: secs,
        rss_peak_mb: rss_kb as f64 / 1024.0,
        db_size_mb: dir_bytes(&dir) as f64 / (1024.0 * 1024.0),
    });
    remove_dir(&dir);
    result
}

/// Runs the process traced; returns (seconds, peak RSS in KiB read as it exits).
fn run(binary: &Path, codex_home: &Path, sqlite_home: &Path) -> Result<(f64, u64), String> {
    let mut cmd = Command::new(binary);
    cmd.arg("init")
        .arg("--codex-home")
        .arg(codex_home)
        .arg("--sqlite-home")
        .arg(sqlite_home)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let exit = run_traced(cmd)?;
    if !exit.success() {
        return Err(format!(
            "the init process failed (wait status {})",
            exit.status
        ));
    }
    let rss = exit
        .peak_rss_kb
        .ok_or("the init process's exit was not observed; no peak RSS")?;
    Ok((exit.wall.as_secs_f64(), rss))
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
