//! The startup backfill as a real `statedb-harness init` process on a fresh DB, observed
//! from outside: wall time, the process's peak resident memory (`ru_maxrss` from `wait4`,
//! so it covers the whole life of the process, not a sample) and the size of the DB it
//! left behind (the file plus its `-wal`/`-shm`).
//!
//! The memory goal is that the peak is bounded by the batch, not by the home: the scan
//! holds one path per rollout, the read-ahead at most two batches of extracted rows.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::workspace::{remove_dir, BenchHome, Workspace};

/// What one `init` process on a fresh DB did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitProcessFigures {
    pub size: usize,
    /// Spawn to exit, seconds.
    pub backfill_secs: f64,
    /// Peak resident set of the process, MiB.
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

/// Spawns and reaps the process with `wait4`; returns (seconds, peak RSS in KiB).
fn run(binary: &Path, codex_home: &Path, sqlite_home: &Path) -> Result<(f64, i64), String> {
    let started = Instant::now();
    let child = Command::new(binary)
        .arg("init")
        .arg("--codex-home")
        .arg(codex_home)
        .arg("--sqlite-home")
        .arg(sqlite_home)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std's Child never waited for it);
    // the pointers are to live locals.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = started.elapsed().as_secs_f64();
    if rc != pid {
        return Err(format!(
            "cannot wait for the init process: {}",
            std::io::Error::last_os_error()
        ));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("the init process failed (wait status {status})"));
    }
    Ok((secs, usage.ru_maxrss))
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
