//! `audit --repair`: back the DB up, fix only what Codex itself would accept, re-audit.
//!
//! The backup is a directory next to the DB holding copies of `state_5.sqlite` and its
//! `-wal` / `-shm`, taken while this process holds the write lock (no writer can change the
//! files mid-copy). Fixes, all in that one IMMEDIATE transaction, on the plain connection
//! (the harness's own tables are not added to the DB):
//! - a row naming another thread's file, a missing file, a file outside this home, or the
//!   wrong root: pointed at the thread's one verified file here (compare-and-swap), with the
//!   archived flag of its root;
//! - a rollout without a row: inserted, extracted as Codex's backfill would (never
//!   overwriting a row);
//! - an empty preview: set to the first user message (what Codex's preview migration does);
//! - an unknown backfill status: set to `pending`, so Codex backfills again.
//!
//! Not fixed (reported again by the re-audit): duplicate files, unverifiable heads, a thread
//! with no file here, an expired lease (the next Codex start takes it over).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

use super::inspect::{gather, Facts};
use super::{audit, AuditError, AuditReport, Finding};
use crate::rollout::metadata::extract_metadata;
use crate::state::thread_columns::ThreadColumns;
use crate::state::threads;

/// What a repair did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RepairReport {
    pub backup: PathBuf,
    pub fixed: Vec<String>,
    pub after: AuditReport,
}

fn sidecars(db: &Path) -> [PathBuf; 3] {
    let with = |s: &str| PathBuf::from(format!("{}{s}", db.display()));
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// Copies the DB and its sidecars into a new timestamped directory next to it.
fn backup(db: &Path, stamp: &str) -> Result<PathBuf, AuditError> {
    let dir = PathBuf::from(format!("{}.audit-backup-{stamp}", db.display()));
    let fail = |what: &Path, e: std::io::Error| {
        AuditError::Repair(format!("cannot back up to {}: {e}", what.display()))
    };
    std::fs::create_dir(&dir).map_err(|e| fail(&dir, e))?;
    for file in sidecars(db).iter().filter(|f| f.is_file()) {
        let name = file.file_name().unwrap_or_default();
        std::fs::copy(file, dir.join(name)).map_err(|e| fail(file, e))?;
    }
    Ok(dir)
}

/// Backs up, repairs what Codex accepts, and re-audits.
pub fn repair(
    codex_home: &Path,
    db: &Path,
    lease_ms: i64,
    now_ms: i64,
    stamp: &str,
) -> Result<RepairReport, AuditError> {
    let before = audit(codex_home, db, lease_ms, now_ms)?;
    let sq = |e: rusqlite::Error| AuditError::Db {
        path: db.to_path_buf(),
        detail: e.to_string(),
    };
    let mut conn =
        Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(sq)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sq)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sq)?;
    let backup_dir = backup(db, stamp)?;
    let facts = gather(&tx, codex_home).map_err(sq)?;
    let mut fixed = Vec::new();
    for finding in &before.findings {
        if let Some(done) = fix(&tx, &facts, finding).map_err(sq)? {
            fixed.push(done);
        }
    }
    tx.commit().map_err(sq)?;
    drop(conn);
    let after = audit(codex_home, db, lease_ms, now_ms)?;
    Ok(RepairReport {
        backup: backup_dir,
        fixed,
        after,
    })
}

fn fix(conn: &Connection, facts: &Facts, finding: &Finding) -> rusqlite::Result<Option<String>> {
    match finding {
        Finding::RowPointsAtOtherThread { thread, path, .. }
        | Finding::RowPointsAtMissingFile { thread, path }
        | Finding::RowPointsOutsideHome { thread, path }
        | Finding::WrongArchivedFlag { thread, path, .. } => {
            let Some((file, root)) = facts.only_file(*thread) else {
                return Ok(None);
            };
            let archived_at_ms = root.is_archived().then(|| mtime_ms(file));
            let done = threads::cas_rollout_path(conn, *thread, path, file, archived_at_ms)?;
            Ok(done.then(|| format!("{thread}: row now points at {}", file.display())))
        }
        Finding::RolloutWithoutRow { thread, path } => {
            if facts.only_file(*thread).map(|(p, _)| p) != Some(path) {
                return Ok(None);
            }
            let Ok(extraction) = extract_metadata(path, "openai") else {
                return Ok(None);
            };
            let mut meta = extraction.metadata;
            if facts
                .only_file(*thread)
                .is_some_and(|(_, r)| r.is_archived())
            {
                meta.archived_at_ms = Some(meta.updated_at_ms);
            }
            let inserted = threads::insert_if_absent(conn, &meta)?;
            Ok(inserted.then(|| format!("{thread}: row inserted for {}", path.display())))
        }
        Finding::HiddenFromCodexLists { thread } if ThreadColumns::of(conn)?.has("preview") => {
            let n = conn.execute(
                "UPDATE threads SET preview = first_user_message
                 WHERE id = ?1 AND preview = '' AND first_user_message <> ''",
                [thread.to_string()],
            )?;
            Ok((n == 1).then(|| format!("{thread}: preview restored")))
        }
        Finding::Backfill { status, .. }
            if !matches!(status.as_str(), "pending" | "running" | "complete") =>
        {
            conn.execute(
                "UPDATE backfill_state SET status = 'pending' WHERE id = 1",
                [],
            )?;
            Ok(Some(format!(
                "backfill status '{status}' reset to 'pending'"
            )))
        }
        _ => Ok(None),
    }
}

fn mtime_ms(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}
