//! Argument groups shared by several commands: the homes and the timings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::sqlite_home::resolve_sqlite_home;
use crate::state::{JournalMode, RuntimeOptions};
use crate::state_db::StateDbConfig;
use crate::timing::{parse_duration, Timings};
use crate::variant::Variant;

/// Where the rollouts and the DB live. There is no default: nothing ever falls back to the
/// user's real home.
#[derive(Debug, Clone, Args)]
pub struct HomeArgs {
    /// The codex home holding sessions/ and archived_sessions/ (or set CODEX_HOME).
    #[arg(long, env = "CODEX_HOME", value_name = "DIR")]
    pub codex_home: PathBuf,
    /// Where state_5.sqlite lives (or set CODEX_SQLITE_HOME; the flag wins). Default: `<codex_home>/sqlite/` when it holds the DB (desktop layout), else the codex home.
    #[arg(long, env = "CODEX_SQLITE_HOME", value_name = "DIR")]
    pub sqlite_home: Option<PathBuf>,
}

/// Absolute paths, so rows and outputs name files unambiguously.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl HomeArgs {
    /// The codex home as an absolute path, checked to exist and be a directory.
    pub fn checked_codex_home(&self) -> Result<PathBuf, String> {
        let home = self.codex_home.as_path();
        if !home.exists() {
            return Err(format!(
                "codex home {} does not exist; create it (or generate one with `statedb-harness fixture`) or pass the right --codex-home",
                home.display()
            ));
        }
        if !home.is_dir() {
            return Err(format!("codex home {} is not a directory", home.display()));
        }
        Ok(absolute(home))
    }

    /// Where the DB lives (absolute), with default connection settings.
    pub fn runtime_options(&self) -> RuntimeOptions {
        let codex_home = absolute(&self.codex_home);
        let mut runtime = RuntimeOptions::new(&codex_home);
        // --sqlite-home (which clap already prefers over CODEX_SQLITE_HOME), else the
        // desktop layout, else the codex home.
        let explicit = self.sqlite_home.as_deref().map(absolute);
        runtime.sqlite_home = resolve_sqlite_home(&codex_home, explicit.as_deref()).0;
        runtime
    }
}

/// Timings and DB settings of the state layer.
#[derive(Debug, Clone, Args)]
pub struct TimingArgs {
    /// Backfill lease length (e.g. 900s, 500ms).
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "15m")]
    pub lease: Duration,
    /// Startup gate poll interval.
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "1s")]
    pub poll_interval: Duration,
    /// How long startup waits for another process's backfill.
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "30s")]
    pub wait_timeout: Duration,
    /// SQLite busy timeout.
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "5s")]
    pub busy_timeout: Duration,
    /// Journal mode of a newly opened DB.
    #[arg(long, value_enum, default_value = "wal")]
    pub journal_mode: JournalMode,
    /// Implementation variant: `reference`, or a seeded-bug variant (see `mutants --list`).
    #[arg(long, default_value = "reference", value_parser = |s: &str| s.parse::<Variant>())]
    pub variant: Variant,
}

impl TimingArgs {
    pub fn timings(&self) -> Timings {
        Timings {
            lease: self.lease,
            poll_interval: self.poll_interval,
            wait_timeout: self.wait_timeout,
            busy_timeout: self.busy_timeout,
            ..Timings::default()
        }
    }

    pub fn config(&self, homes: &HomeArgs) -> StateDbConfig {
        let mut runtime = homes.runtime_options();
        runtime.journal_mode = self.journal_mode;
        runtime.busy_timeout = self.busy_timeout;
        StateDbConfig {
            runtime,
            timings: self.timings(),
        }
    }
}
