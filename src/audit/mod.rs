//! `audit`: what is wrong between a home's state DB and its rollout files, judged from the
//! files (the truth), for the user whose `resume` opens the wrong thread or whose picker
//! misses one.
//!
//! Read-only: the DB is opened read-only (`immutable` when it has no WAL to read, so not even
//! a `-shm` file appears), nothing is created, no lease is taken. [`repair`] is the separate,
//! explicit step that backs the DB up and fixes what Codex itself would accept.

mod inspect;
pub mod repair;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use uuid::Uuid;

pub use inspect::inspect;

/// One thing the audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The row's file belongs to another thread (`resume` would open the wrong one).
    RowPointsAtOtherThread {
        thread: Uuid,
        path: PathBuf,
        file_thread: String,
    },
    /// The row's file does not exist.
    RowPointsAtMissingFile { thread: Uuid, path: PathBuf },
    /// The row names a file outside this home's rollout roots (a moved or copied home).
    RowPointsOutsideHome { thread: Uuid, path: PathBuf },
    /// The row's archived flag disagrees with the root its file lies in.
    WrongArchivedFlag {
        thread: Uuid,
        path: PathBuf,
        row_archived: bool,
    },
    /// The file's head cannot be read as a `session_meta` (so it verifies nothing).
    UnverifiableHead {
        path: PathBuf,
        reason: String,
        row_thread: Option<Uuid>,
    },
    /// A rollout no row indexes (missing from every DB listing).
    RolloutWithoutRow { thread: Uuid, path: PathBuf },
    /// Several files claim one thread id.
    DuplicateFiles { thread: Uuid, paths: Vec<PathBuf> },
    /// A row with an empty preview although its thread has a first message: Codex's
    /// listings skip it.
    HiddenFromCodexLists { thread: Uuid },
    /// The backfill state: unknown status, or a `running` lease that expired.
    Backfill { status: String, detail: String },
}

impl Finding {
    /// The thread the finding is about, if one.
    pub fn thread(&self) -> Option<Uuid> {
        match self {
            Finding::RowPointsAtOtherThread { thread, .. }
            | Finding::RowPointsAtMissingFile { thread, .. }
            | Finding::RowPointsOutsideHome { thread, .. }
            | Finding::WrongArchivedFlag { thread, .. }
            | Finding::RolloutWithoutRow { thread, .. }
            | Finding::DuplicateFiles { thread, .. }
            | Finding::HiddenFromCodexLists { thread } => Some(*thread),
            Finding::UnverifiableHead { row_thread, .. } => *row_thread,
            Finding::Backfill { .. } => None,
        }
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            Finding::RowPointsAtOtherThread {
                thread,
                path,
                file_thread,
            } => format!(
                "{thread}: row points at {} whose head is thread {file_thread}",
                path.display()
            ),
            Finding::RowPointsAtMissingFile { thread, path } => {
                format!("{thread}: row points at missing file {}", path.display())
            }
            Finding::RowPointsOutsideHome { thread, path } => {
                format!("{thread}: row points outside this home: {}", path.display())
            }
            Finding::WrongArchivedFlag {
                thread,
                path,
                row_archived,
            } => format!(
                "{thread}: row says archived={row_archived} but the file is {}",
                path.display()
            ),
            Finding::UnverifiableHead {
                path,
                reason,
                row_thread,
            } => match row_thread {
                Some(t) => format!("{t}: head of {} unverifiable ({reason})", path.display()),
                None => format!("head of {} unverifiable ({reason})", path.display()),
            },
            Finding::RolloutWithoutRow { thread, path } => {
                format!("{thread}: rollout {} has no row", path.display())
            }
            Finding::DuplicateFiles { thread, paths } => format!(
                "{thread}: {} files claim this id: {}",
                paths.len(),
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Finding::HiddenFromCodexLists { thread } => {
                format!("{thread}: row has an empty preview; Codex's lists skip it")
            }
            Finding::Backfill { status, detail } => {
                format!("backfill state '{status}': {detail}")
            }
        }
    }
}

/// Everything the audit saw.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub db: PathBuf,
    pub rows: usize,
    pub rollouts: usize,
    pub backfill_status: String,
    pub findings: Vec<Finding>,
}

/// Why an audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("no state db at {0}; nothing to audit (pass --sqlite-home if it lives elsewhere)")]
    NoDb(PathBuf),
    #[error("cannot read the state db at {path}: {detail}")]
    Db { path: PathBuf, detail: String },
    #[error("{0}")]
    Repair(String),
}

/// Opens `db` for reading without creating anything next to it: `immutable` when there is
/// no WAL (no `-shm` is made), read-only over the WAL when both sidecars are there.
pub fn open_read_only(db: &Path) -> Result<Connection, AuditError> {
    if !db.is_file() {
        return Err(AuditError::NoDb(db.to_path_buf()));
    }
    let sidecar = |suffix: &str| PathBuf::from(format!("{}{suffix}", db.display()));
    let live_wal = sidecar("-wal").is_file() && sidecar("-shm").is_file();
    let mode = if live_wal { "mode=ro" } else { "immutable=1" };
    let uri = format!("file:{}?{mode}", db.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
    let err = |e: rusqlite::Error| AuditError::Db {
        path: db.to_path_buf(),
        detail: e.to_string(),
    };
    let conn = Connection::open_with_flags(uri, flags).map_err(err)?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(err)?;
    Ok(conn)
}

/// Audits the home: read-only, creates nothing.
pub fn audit(
    codex_home: &Path,
    db: &Path,
    lease_ms: i64,
    now_ms: i64,
) -> Result<AuditReport, AuditError> {
    let conn = open_read_only(db)?;
    inspect(&conn, codex_home, db, lease_ms, now_ms)
}
