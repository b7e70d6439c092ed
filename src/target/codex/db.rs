//! Reading and damaging Codex's own `state_5.sqlite` from a separate connection: the
//! backfill status, the rows, a "fresh" DB (migrated by Codex, not yet backfilled), and
//! lease faults in Codex's lease model (no owner; `running` with an `updated_at` younger
//! than 900 s is a live lease).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::support::CODEX_LEASE;
use crate::state::STATE_DB_FILENAME;

fn open(sqlite_dir: &Path, flags: OpenFlags) -> Result<Connection, String> {
    let db = sqlite_dir.join(STATE_DB_FILENAME);
    if !db.is_file() {
        return Err(format!("no state db at {}", db.display()));
    }
    let c =
        Connection::open_with_flags(&db, flags).map_err(|e| format!("{}: {e}", db.display()))?;
    c.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(c)
}

/// The backfill status; a missing singleton row reads as `pending` (nothing completed).
pub fn read_status(sqlite_dir: &Path) -> Result<String, String> {
    use rusqlite::OptionalExtension;
    open(sqlite_dir, OpenFlags::SQLITE_OPEN_READ_ONLY)?
        .query_row("SELECT status FROM backfill_state WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .map(|s| s.unwrap_or_else(|| "pending".to_string()))
        .map_err(|e| format!("cannot read backfill_state: {e}"))
}

pub fn count_rows(sqlite_dir: &Path) -> Result<i64, String> {
    open(sqlite_dir, OpenFlags::SQLITE_OPEN_READ_ONLY)?
        .query_row("SELECT count(*) FROM threads", [], |r| r.get(0))
        .map_err(|e| format!("cannot count threads: {e}"))
}

pub fn read_rows(sqlite_dir: &Path) -> Result<Vec<crate::thread::ThreadMetadata>, String> {
    let c = open(sqlite_dir, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    crate::state::threads::all(&c).map_err(|e| format!("cannot read threads: {e}"))
}

/// Turns a DB Codex built into one it has migrated but not backfilled.
pub fn reset_to_fresh(sqlite_dir: &Path) -> Result<(), String> {
    let c = open(sqlite_dir, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    c.execute_batch(
        "DELETE FROM threads;
         UPDATE backfill_state SET status = 'pending', last_watermark = NULL, last_success_at = NULL WHERE id = 1;",
    )
    .map_err(|e| format!("cannot reset the db to fresh: {e}"))
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A live lease: `running`, refreshed just now (Codex waits 30 s and gives up).
pub fn stuck_lease(sqlite_dir: &Path) -> Result<String, String> {
    let c = open(sqlite_dir, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let n = c
        .execute(
            "UPDATE backfill_state SET status = 'running', updated_at = ?1 WHERE id = 1",
            [now_secs()],
        )
        .map_err(|e| e.to_string())?;
    fired(
        n,
        "Codex lease live: status running, updated_at now (900 s lease)",
    )
}

/// An expired lease: `running`, last refreshed longer ago than Codex's 900 s lease, with
/// the watermark at `watermark` when given.
pub fn expired_lease(sqlite_dir: &Path, watermark: Option<String>) -> Result<String, String> {
    let c = open(sqlite_dir, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let then = now_secs() - CODEX_LEASE.as_secs() as i64 - 60;
    let n = c
        .execute(
            "UPDATE backfill_state SET status = 'running', updated_at = ?1,
                last_watermark = COALESCE(?2, last_watermark) WHERE id = 1",
            rusqlite::params![then, watermark],
        )
        .map_err(|e| e.to_string())?;
    fired(
        n,
        "Codex lease expired: status running, updated_at 960 s ago",
    )
}

fn fired(n: usize, what: &str) -> Result<String, String> {
    if n == 1 {
        Ok(what.to_string())
    } else {
        Err(format!("{what}: no backfill_state row"))
    }
}
