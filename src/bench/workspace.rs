//! The benchmark's scratch space: one temporary directory (under `--work-dir` when given)
//! holding the generated homes and every database the families create.
//!
//! Each size's home is generated once per run and shared by all families; families get
//! fresh, uniquely named directories for their databases (a fresh DB per run is a new
//! directory, never a re-generated home). Everything is deleted when the workspace drops.
//! Nothing is written outside it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::fixture::{generate_home, FixtureOptions, FixtureThread};
use crate::process::ProcessContext;
use crate::state_db::{try_init, StateDbConfig};
use crate::timing::Timings;

use super::stats::timed;

/// Seed of every benchmark home (the same seed writes the same bytes, run after run).
pub const BENCH_SEED: u64 = 20_561;

/// The temporary directory of one benchmark run.
pub struct Workspace {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl Workspace {
    /// Creates `statedb-bench-*` under `parent`, or under the system temp dir.
    pub fn new(parent: Option<&Path>) -> std::io::Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("statedb-bench-");
        let dir = match parent {
            Some(p) => builder.tempdir_in(p)?,
            None => builder.tempdir()?,
        };
        Ok(Workspace {
            dir,
            next: AtomicUsize::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new, empty directory `<label>-<n>` inside the workspace.
    pub fn fresh_dir(&self, label: &str) -> std::io::Result<PathBuf> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.path().join(format!("{label}-{n}"));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Generates the home of `size` active rollouts (once per run).
    pub fn generate(&self, size: usize) -> std::io::Result<BenchHome> {
        let codex_home = self.dir.path().join(format!("home-{size}"));
        let opts = FixtureOptions::sized(size, 0, BENCH_SEED);
        let (threads, took) = timed(|| generate_home(&codex_home, &opts));
        Ok(BenchHome {
            size,
            codex_home,
            threads: threads?,
            generate_time: took,
            generated_at: std::time::Instant::now(),
            complete_db: None,
        })
    }
}

/// One generated home and, once some family has produced one, a complete DB over it.
pub struct BenchHome {
    pub size: usize,
    pub codex_home: PathBuf,
    /// Newest first, as the fixture returns them.
    pub threads: Vec<FixtureThread>,
    pub generate_time: Duration,
    /// When generation finished: the home's directories last changed then.
    pub generated_at: std::time::Instant,
    /// A sqlite home whose `state_5.sqlite` is fully backfilled over this home.
    pub complete_db: Option<PathBuf>,
}

impl BenchHome {
    /// The reference config over this home with its DB in `sqlite_home` (production timings).
    pub fn config(&self, sqlite_home: &Path) -> StateDbConfig {
        bench_config(&self.codex_home, sqlite_home)
    }

    /// The sqlite home of a complete DB over this home, backfilling a new one if no family
    /// has left one.
    pub fn ensure_complete_db(&mut self, ws: &Workspace) -> Result<PathBuf, String> {
        if let Some(db) = &self.complete_db {
            return Ok(db.clone());
        }
        let dir = ws
            .fresh_dir(&format!("db-complete-{}", self.size))
            .map_err(|e| format!("cannot create a DB directory: {e}"))?;
        let ctx: Arc<ProcessContext> = ProcessContext::plain("bench-setup");
        try_init(&ctx, &self.config(&dir))
            .map_err(|e| format!("backfill of the {}-rollout home failed: {e}", self.size))?;
        self.complete_db = Some(dir.clone());
        Ok(dir)
    }
}

/// The reference config over `codex_home` with its DB in `sqlite_home` (production timings).
pub fn bench_config(codex_home: &Path, sqlite_home: &Path) -> StateDbConfig {
    let mut cfg = StateDbConfig::new(codex_home, Timings::default());
    cfg.runtime.sqlite_home = sqlite_home.to_path_buf();
    cfg
}

impl Workspace {
    /// Flushes the workspace's filesystem (`syncfs`), untimed, so a measurement does not pay
    /// for the write-back of files an earlier step (generation, a previous run) left dirty.
    pub fn settle(&self) {
        if let Ok(dir) = std::fs::File::open(self.dir.path()) {
            use std::os::fd::AsRawFd;
            // SAFETY: `dir` is an open file descriptor for the duration of the call.
            let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
            if rc != 0 {
                tracing::debug!("bench: syncfs failed: {}", std::io::Error::last_os_error());
            }
        }
    }
}

/// Deletes a directory the benchmark created, ignoring a directory that is already gone.
pub fn remove_dir(dir: &Path) {
    if let Err(err) = std::fs::remove_dir_all(dir) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("bench: cannot remove {}: {err}", dir.display());
        }
    }
}
