//! Salvage of DB-only values from a damaged state DB, and writing them back after the
//! index was rebuilt from the rollouts.
//!
//! The damaged file is never opened in place: it (and its `-wal`) are copied into a
//! scratch directory and the copy is read. Rows are read in rowid order forwards until a
//! damaged page stops the scan, then backwards from the end, so rows on either side of
//! the damage survive. Only values the rollouts cannot give back are kept.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use crate::state::StateDbHandle;

/// The DB-only values of one thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SalvagedThread {
    /// An explicit name (a title that is not just the first user message).
    pub title: Option<String>,
    pub memory_mode: Option<String>,
    pub git_sha: Option<String>,
    pub git_branch: Option<String>,
    pub git_origin_url: Option<String>,
}

/// Everything read from a damaged DB.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Salvaged {
    pub threads: BTreeMap<Uuid, SalvagedThread>,
    /// Rows that could be read at all.
    pub rows_read: usize,
}

const COLUMNS: &str =
    "rowid, id, title, first_user_message, memory_mode, git_sha, git_branch, git_origin_url";

/// Reads what it can from a copy of the damaged DB at `backup`; never fails.
pub fn salvage(backup: &Path) -> Salvaged {
    let mut out = Salvaged::default();
    let Ok(scratch) = tempfile::tempdir() else {
        return out;
    };
    let copy = scratch.path().join("damaged.sqlite");
    if std::fs::copy(backup, &copy).is_err() {
        return out;
    }
    let wal = format!("{}-wal", backup.display());
    if Path::new(&wal).exists() {
        let _ = std::fs::copy(&wal, format!("{}-wal", copy.display()));
    }
    let Ok(conn) = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE) else {
        return out;
    };
    let mut seen = std::collections::BTreeSet::new();
    for order in ["ASC", "DESC"] {
        let sql = format!("SELECT {COLUMNS} FROM threads ORDER BY rowid {order}");
        let Ok(mut stmt) = conn.prepare(&sql) else {
            return out;
        };
        let Ok(mut rows) = stmt.query([]) else {
            continue;
        };
        // A damaged page ends the scan in this direction; what was read stays.
        while let Ok(Some(row)) = rows.next() {
            let Ok(rowid) = row.get::<_, i64>(0) else {
                break;
            };
            if !seen.insert(rowid) {
                break;
            }
            out.rows_read += 1;
            let text = |i: usize| row.get::<_, Option<String>>(i).ok().flatten();
            let Some(id) = text(1).and_then(|t| Uuid::parse_str(&t).ok()) else {
                continue;
            };
            let title = text(2).filter(|t| !t.is_empty() && Some(t) != text(3).as_ref());
            let memory_mode = text(4).filter(|m| m != crate::thread::DEFAULT_MEMORY_MODE);
            let thread = SalvagedThread {
                title,
                memory_mode,
                git_sha: text(5),
                git_branch: text(6),
                git_origin_url: text(7),
            };
            if thread != SalvagedThread::default() {
                out.threads.insert(id, thread);
            }
        }
    }
    out
}

/// Writes salvaged values onto the rebuilt rows: explicit names and memory modes replace
/// what the rollouts gave, git fields fill only what is still empty. Returns the number of
/// rows updated; errors are logged (the rebuilt index stands either way).
pub fn carry_over(rt: &StateDbHandle, salvaged: &Salvaged) -> usize {
    if !rt.context().decisions().recovery_carries_over() || salvaged.threads.is_empty() {
        return 0;
    }
    let result = rt.write("carry over salvaged values", |tx| {
        let mut n = 0;
        let mut stmt = tx
            .prepare(
                "UPDATE threads SET
                    title = COALESCE(?2, title),
                    memory_mode = COALESCE(?3, memory_mode),
                    git_sha = COALESCE(git_sha, ?4),
                    git_branch = COALESCE(git_branch, ?5),
                    git_origin_url = COALESCE(git_origin_url, ?6)
                 WHERE id = ?1",
            )
            .map_err(rt.err("carry over salvaged values"))?;
        for (id, t) in &salvaged.threads {
            n += stmt
                .execute(rusqlite::params![
                    id.to_string(),
                    t.title,
                    t.memory_mode,
                    t.git_sha,
                    t.git_branch,
                    t.git_origin_url
                ])
                .map_err(rt.err("carry over salvaged values"))?;
        }
        Ok(n)
    });
    match result {
        Ok(n) => n,
        Err(err) => {
            tracing::warn!("could not carry salvaged values into the rebuilt state db: {err}");
            0
        }
    }
}
