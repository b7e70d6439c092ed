//! Injectors that damage the state DB's rows from a separate, plain SQLite connection
//! (the way another process or a manual edit would).

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection};

use super::home::HomeModel;
use crate::clock::real_now_ms;

fn connect(home: &HomeModel) -> Result<Connection, String> {
    let db = home.db_path();
    if !db.is_file() {
        return Err(format!("no state db at {} to damage", db.display()));
    }
    let conn = Connection::open(&db).map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn changed(n: usize, what: String) -> Result<String, String> {
    if n == 1 {
        Ok(what)
    } else {
        Err(format!("{what}: no such row (is the home indexed?)"))
    }
}

pub fn set_row_path(home: &HomeModel, alias: &str, path: &Path) -> Result<String, String> {
    let id = home.thread(alias)?.id;
    let conn = connect(home)?;
    let n = conn
        .execute(
            "UPDATE threads SET rollout_path = ?1 WHERE id = ?2",
            params![path.to_string_lossy(), id.to_string()],
        )
        .map_err(|e| e.to_string())?;
    changed(
        n,
        format!("row {alias} now points at {}", home.relative(path)),
    )
}

pub fn delete_row(home: &HomeModel, alias: &str) -> Result<String, String> {
    let id = home.thread(alias)?.id;
    let n = connect(home)?
        .execute("DELETE FROM threads WHERE id = ?1", [id.to_string()])
        .map_err(|e| e.to_string())?;
    changed(n, format!("row {alias} deleted"))
}

pub fn flip_archived(home: &HomeModel, alias: &str) -> Result<String, String> {
    let id = home.thread(alias)?.id;
    let n = connect(home)?
        .execute(
            "UPDATE threads SET archived = 1 - archived,
                archived_at = CASE WHEN archived = 0 THEN updated_at ELSE NULL END
             WHERE id = ?1",
            [id.to_string()],
        )
        .map_err(|e| e.to_string())?;
    changed(n, format!("row {alias} archived flag flipped"))
}

pub fn set_status(home: &HomeModel, status: &str) -> Result<String, String> {
    let n = connect(home)?
        .execute(
            "UPDATE backfill_state SET status = ?1 WHERE id = 1",
            [status],
        )
        .map_err(|e| e.to_string())?;
    changed(n, format!("backfill_state.status = '{status}'"))
}

/// Names a (fake) harness lease owner in the harness's lease table, as a real owner's
/// claim would have, with `backfill_state.updated_at` as of `at_ms`.
fn set_lease_owner(
    conn: &Connection,
    owner: &str,
    at_ms: i64,
    expires_at_ms: i64,
) -> Result<(), String> {
    // A DB the harness never wrote (Codex's own) has no owner table: Codex's lease is only
    // the status and `updated_at`, already set.
    if !crate::state::schema::has_harness_tables(conn).map_err(|e| e.to_string())? {
        return Ok(());
    }
    conn.execute(
        &format!(
            "INSERT INTO {} (id, owner_id, owner_pid, owner_host, claimed_at_ms, heartbeat_at_ms,
                lease_expires_at_ms, state_updated_at)
             VALUES (1, ?1, 0, 'injected', ?2, ?2, ?3, ?2 / 1000)
             ON CONFLICT(id) DO UPDATE SET owner_id = excluded.owner_id, owner_pid = 0,
                owner_host = 'injected', claimed_at_ms = ?2, heartbeat_at_ms = ?2,
                lease_expires_at_ms = ?3, state_updated_at = ?2 / 1000",
            crate::state::schema::LEASE_TABLE
        ),
        params![owner, at_ms, expires_at_ms],
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

pub fn stuck_lease(home: &HomeModel, expires_in: Duration) -> Result<String, String> {
    let now = real_now_ms();
    let conn = connect(home)?;
    let n = conn
        .execute(
            "UPDATE backfill_state SET status = 'running', updated_at = ?1 / 1000 WHERE id = 1",
            params![now],
        )
        .map_err(|e| e.to_string())?;
    set_lease_owner(
        &conn,
        "injected-stuck-owner",
        now,
        now + expires_in.as_millis() as i64,
    )?;
    changed(n, "lease held by a live foreign owner".to_string())
}

pub fn expired_lease(
    home: &HomeModel,
    age: Duration,
    checkpoint_after: Option<&str>,
) -> Result<String, String> {
    let then = real_now_ms() - age.as_millis() as i64;
    let watermark = match checkpoint_after {
        Some(alias) => Some(crate::rollout::layout::watermark_for(
            &home.codex_home,
            &home.thread(alias)?.path,
        )),
        None => None,
    };
    let conn = connect(home)?;
    let n = conn
        .execute(
            "UPDATE backfill_state SET status = 'running', updated_at = ?1 / 1000,
                last_watermark = COALESCE(?2, last_watermark)
             WHERE id = 1",
            params![then, watermark],
        )
        .map_err(|e| e.to_string())?;
    set_lease_owner(&conn, "injected-dead-owner", then, then)?;
    changed(
        n,
        format!(
            "lease of a silent owner, last seen {}ms ago",
            age.as_millis()
        ),
    )
}

pub fn same_timestamp(home: &HomeModel, aliases: &[String]) -> Result<String, String> {
    if aliases.len() < 2 {
        return Err("same_timestamp needs at least two threads".into());
    }
    let conn = connect(home)?;
    let mut n = 0;
    for alias in aliases {
        let id = home.thread(alias)?.id;
        n += conn
            .execute(
                "UPDATE threads SET created_at = 1769515200, updated_at = 1769515200,
                    created_at_ms = 1769515200000, updated_at_ms = 1769515200000 WHERE id = ?1",
                [id.to_string()],
            )
            .map_err(|e| e.to_string())?;
    }
    if n == aliases.len() {
        Ok(format!("{} rows share one timestamp", aliases.join(", ")))
    } else {
        Err(format!("only {n} of {} rows exist", aliases.len()))
    }
}

pub fn delete_backfill_row(home: &HomeModel) -> Result<String, String> {
    let n = connect(home)?
        .execute("DELETE FROM backfill_state WHERE id = 1", [])
        .map_err(|e| e.to_string())?;
    changed(n, "backfill_state row deleted".to_string())
}

/// A name the user gave the thread in the app: stored only in the DB's `title`.
pub fn set_title(home: &HomeModel, alias: &str, title: &str) -> Result<String, String> {
    let id = home.thread(alias)?.id;
    let n = connect(home)?
        .execute(
            "UPDATE threads SET title = ?1 WHERE id = ?2",
            params![title, id.to_string()],
        )
        .map_err(|e| e.to_string())?;
    changed(n, format!("row {alias} named '{title}' (DB only)"))
}
