//! Recovery from a damaged state DB: one that is not a SQLite file at all, or still is one
//! but has torn or overwritten pages ("database disk image is malformed", a lost schema).
//!
//! Startup detects the damage at open or at its first queries (`probe` reads every row of
//! `threads`). Recovery then:
//! 1. sets the damaged file aside, untouched, as `state_5.sqlite.corrupt-<UTC time>` next to
//!    it (its `-wal` / `-shm` follow under the matching names, so the pair stays readable);
//! 2. salvages what only the DB knew — explicit thread names (titles that differ from the
//!    first user message), Codex's `name`, pins (`is_pinned`, section places and the
//!    sections themselves), memory modes, git fields — from a scratch copy of the backup,
//!    reading rows forwards and backwards around damaged pages (`salvage`);
//! 3. has a fresh DB made — by the harness in its own homes, by the installed Codex in any
//!    other home (the `recreate` hook of the startup config), so Codex can still open it —
//!    and rebuilds the index from the rollouts;
//! 4. writes the salvaged DB-only values back onto the rebuilt rows (`carry_over`).
//!
//! Nothing is deleted: if the file cannot be set aside (read-only directory), startup fails
//! with the original error and the file stays where it was. Rollouts are only read.

mod salvage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use crate::process::ProcessContext;
use crate::state::{ErrorClass, RuntimeOptions, StateDbHandle, StateError};

pub use salvage::{carry_over, salvage, Salvaged, SalvagedSection, SalvagedThread, SectionPlace};

/// What a recovery set aside and saved.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Where the damaged DB now is (bytes untouched).
    pub backup: PathBuf,
    /// DB-only values read from it.
    pub salvaged: Salvaged,
}

/// Whether `err` means the DB file itself is damaged (and recovery applies).
pub fn is_damage(err: &StateError) -> bool {
    err.class() == ErrorClass::Corrupt
}

/// Checks the structure and records of `threads` and `backfill_state` (`PRAGMA
/// quick_check` limited to those tables), so damage shows at startup rather than as
/// silently wrong rows later: a torn leaf page still reads, as NULL columns.
pub fn probe(rt: &StateDbHandle) -> Result<(), StateError> {
    let conn = rt.lock();
    crate::state::schema::check_tables(&conn, rt.db_path())
}

/// Sets the damaged DB aside next to itself and salvages its DB-only values. Fails (and
/// changes nothing) when the file cannot be renamed.
pub fn set_aside(ctx: &Arc<ProcessContext>, opts: &RuntimeOptions) -> Result<Recovery, StateError> {
    let db = opts.db_path();
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let backup = PathBuf::from(format!("{}.corrupt-{stamp}", db.display()));
    if !ctx.decisions().recovery_keeps_damaged() {
        remove_with_sidecars(&db)?;
        return Ok(Recovery {
            backup,
            salvaged: Salvaged::default(),
        });
    }
    std::fs::rename(&db, &backup).map_err(|source| StateError::Io {
        path: db.clone(),
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        let from = sidecar(&db, suffix);
        if from.exists() {
            let to = sidecar(&backup, suffix);
            if let Err(err) = std::fs::rename(&from, &to) {
                tracing::warn!("cannot move {} beside the backup: {err}", from.display());
            }
        }
    }
    let salvaged = salvage(&backup);
    tracing::warn!(
        "state db at {} was damaged; kept it as {} and rebuilding the index from the rollout files ({} thread(s) with DB-only values salvaged)",
        db.display(),
        backup.display(),
        salvaged.threads.len()
    );
    ctx.emit(
        "db_set_aside",
        json!({"backup": backup, "salvaged": salvaged.threads.len(), "rows_read": salvaged.rows_read}),
    );
    Ok(Recovery { backup, salvaged })
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", db.display()))
}

fn remove_with_sidecars(db: &Path) -> Result<(), StateError> {
    std::fs::remove_file(db).map_err(|source| StateError::Io {
        path: db.to_path_buf(),
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(sidecar(db, suffix));
    }
    Ok(())
}
