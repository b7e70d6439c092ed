//! Schema and migrations of `state_5.sqlite`.
//!
//! The `threads` columns and the `backfill_state` table follow Codex's migrations (0001,
//! 0005, 0007, 0008, 0013, 0018, 0020, 0025) so a DB Codex wrote is understood and ours is
//! readable by Codex. Our own additions (the fenced-lease columns and the failure list) are
//! extra columns and tables that Codex ignores. Applied migrations are recorded in
//! `statedb_harness_migrations`; every step is idempotent (`IF NOT EXISTS`, add-column-if-
//! missing), so a DB that Codex created, or a newer version of this tool migrated, opens
//! without error.

use std::path::Path;

use rusqlite::{params, Connection, Transaction};

use super::error::StateError;
use super::runtime::write_txn;
use crate::variant::Variant;

/// Table recording applied migrations.
pub const MIGRATIONS_TABLE: &str = "statedb_harness_migrations";

/// One migration step.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    apply: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// All migrations this version knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "threads",
        apply: m_threads,
    },
    Migration {
        version: 5,
        name: "threads_cli_version",
        apply: m_cli_version,
    },
    Migration {
        version: 7,
        name: "threads_first_user_message",
        apply: m_first_user_message,
    },
    Migration {
        version: 8,
        name: "backfill_state",
        apply: m_backfill_state,
    },
    Migration {
        version: 13,
        name: "threads_agent_nickname",
        apply: m_agent,
    },
    Migration {
        version: 18,
        name: "threads_memory_mode",
        apply: m_memory_mode,
    },
    Migration {
        version: 20,
        name: "threads_model_reasoning_effort",
        apply: m_model,
    },
    Migration {
        version: 25,
        name: "thread_timestamps_millis",
        apply: m_millis,
    },
    Migration {
        version: 1001,
        name: "harness_fenced_lease",
        apply: m_fenced_lease,
    },
    Migration {
        version: 1002,
        name: "harness_backfill_failures",
        apply: m_failures,
    },
];

/// Highest version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Applies missing migrations in one write transaction. Versions newer than this build's
/// are tolerated (a newer tool wrote the DB); they are logged, not rejected.
///
/// An up-to-date DB (the common case at every start) is recognised by a plain read and
/// takes no write transaction, so opening never queues for the write lock behind another
/// process's backfill batches (a wait that the busy timeout would turn into a failed start).
pub fn migrate(conn: &mut Connection, db_path: &Path, variant: Variant) -> Result<(), StateError> {
    let applied = applied_versions(conn).map_err(|e| StateError::sqlite(db_path, "migrate", e))?;
    if let Some(applied) = applied {
        if MIGRATIONS.iter().all(|m| applied.contains(&m.version)) {
            log_newer(db_path, &applied);
            return Ok(());
        }
    }
    write_txn(conn, db_path, "migrate", variant, |tx| {
        let sq = |e| StateError::sqlite(db_path, "migrate", e);
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at_ms INTEGER NOT NULL
            )"
        ))
        .map_err(sq)?;
        let applied: Vec<i64> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT version FROM {MIGRATIONS_TABLE} ORDER BY version"
                ))
                .map_err(sq)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(sq)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sq)?
        };
        log_newer(db_path, &applied);
        for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
            (m.apply)(tx).map_err(sq)?;
            tx.execute(
                &format!("INSERT INTO {MIGRATIONS_TABLE} (version, name, applied_at_ms) VALUES (?1, ?2, ?3)"),
                params![m.version, m.name, crate::clock::real_now_ms()],
            )
            .map_err(sq)?;
        }
        Ok(())
    })
}

/// The versions recorded in the migrations table (ascending), or `None` without the table.
fn applied_versions(conn: &Connection) -> rusqlite::Result<Option<Vec<i64>>> {
    let present: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [MIGRATIONS_TABLE],
        |r| r.get(0),
    )?;
    if present == 0 {
        return Ok(None);
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT version FROM {MIGRATIONS_TABLE} ORDER BY version"
    ))?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect::<rusqlite::Result<_>>().map(Some)
}

fn log_newer(db_path: &Path, applied: &[i64]) {
    if let Some(newest) = applied.last().filter(|v| **v > latest_version()) {
        tracing::info!(path = %db_path.display(), newest, known = latest_version(),
            "state db has migrations from a newer version; continuing with the known schema");
    }
}

/// Checks that an existing file carries the tables the reference reads (open-only path).
pub fn require_tables(conn: &Connection, db_path: &Path) -> Result<(), StateError> {
    for table in ["threads", "backfill_state"] {
        let present: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(|e| StateError::sqlite(db_path, "schema check", e))?;
        if present == 0 {
            return Err(StateError::MissingSchema {
                path: db_path.to_path_buf(),
                table,
            });
        }
    }
    Ok(())
}

/// Whether `table` has `column`.
pub fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

fn add_column(tx: &Transaction<'_>, table: &str, column: &str, decl: &str) -> rusqlite::Result<()> {
    if !has_column(tx, table, column)? {
        tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
    }
    Ok(())
}

fn m_threads(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS threads (
            id TEXT PRIMARY KEY,
            rollout_path TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            source TEXT NOT NULL,
            model_provider TEXT NOT NULL,
            cwd TEXT NOT NULL,
            title TEXT NOT NULL,
            sandbox_policy TEXT NOT NULL,
            approval_mode TEXT NOT NULL,
            tokens_used INTEGER NOT NULL DEFAULT 0,
            has_user_event INTEGER NOT NULL DEFAULT 0,
            archived INTEGER NOT NULL DEFAULT 0,
            archived_at INTEGER,
            git_sha TEXT,
            git_branch TEXT,
            git_origin_url TEXT
        );
        CREATE INDEX IF NOT EXISTS idx_threads_created_at ON threads(created_at DESC, id DESC);
        CREATE INDEX IF NOT EXISTS idx_threads_updated_at ON threads(updated_at DESC, id DESC);
        CREATE INDEX IF NOT EXISTS idx_threads_archived ON threads(archived);
        CREATE INDEX IF NOT EXISTS idx_threads_source ON threads(source);
        CREATE INDEX IF NOT EXISTS idx_threads_provider ON threads(model_provider);",
    )
}

fn m_cli_version(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    add_column(tx, "threads", "cli_version", "TEXT NOT NULL DEFAULT ''")
}

fn m_first_user_message(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    add_column(
        tx,
        "threads",
        "first_user_message",
        "TEXT NOT NULL DEFAULT ''",
    )
}

fn m_backfill_state(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS backfill_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            status TEXT NOT NULL,
            last_watermark TEXT,
            last_success_at INTEGER,
            updated_at INTEGER NOT NULL
        );",
    )?;
    tx.execute(
        "INSERT INTO backfill_state (id, status, last_watermark, last_success_at, updated_at)
         VALUES (1, 'pending', NULL, NULL, CAST(strftime('%s', 'now') AS INTEGER))
         ON CONFLICT(id) DO NOTHING",
        [],
    )?;
    Ok(())
}

fn m_agent(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    add_column(tx, "threads", "agent_nickname", "TEXT")?;
    add_column(tx, "threads", "agent_role", "TEXT")
}

fn m_memory_mode(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    add_column(
        tx,
        "threads",
        "memory_mode",
        "TEXT NOT NULL DEFAULT 'enabled'",
    )
}

fn m_model(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    add_column(tx, "threads", "model", "TEXT")?;
    add_column(tx, "threads", "reasoning_effort", "TEXT")
}

fn m_millis(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    add_column(tx, "threads", "created_at_ms", "INTEGER")?;
    add_column(tx, "threads", "updated_at_ms", "INTEGER")?;
    tx.execute_batch(
        "UPDATE threads SET created_at_ms = created_at * 1000 WHERE created_at_ms IS NULL;
         UPDATE threads SET updated_at_ms = updated_at * 1000 WHERE updated_at_ms IS NULL;
         CREATE INDEX IF NOT EXISTS idx_threads_created_at_ms ON threads(created_at_ms DESC, id DESC);
         CREATE INDEX IF NOT EXISTS idx_threads_updated_at_ms ON threads(updated_at_ms DESC, id DESC);",
    )
}

fn m_fenced_lease(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    add_column(tx, "backfill_state", "owner_id", "TEXT")?;
    add_column(tx, "backfill_state", "owner_pid", "INTEGER")?;
    add_column(tx, "backfill_state", "owner_host", "TEXT")?;
    add_column(tx, "backfill_state", "claimed_at_ms", "INTEGER")?;
    add_column(tx, "backfill_state", "heartbeat_at_ms", "INTEGER")?;
    add_column(tx, "backfill_state", "lease_expires_at_ms", "INTEGER")
}

fn m_failures(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS backfill_failures (
            path TEXT PRIMARY KEY,
            error TEXT NOT NULL,
            failed_at_ms INTEGER NOT NULL
        );",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn open(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();
        let _: String = conn
            .query_row("PRAGMA journal_mode = wal", [], |r| r.get(0))
            .unwrap();
        conn
    }

    fn versions(conn: &Connection) -> Vec<i64> {
        applied_versions(conn).unwrap().unwrap()
    }

    #[test]
    fn an_up_to_date_db_migrates_without_taking_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state_5.sqlite");
        let mut first = open(&path);
        migrate(&mut first, &path, Variant::Reference).unwrap();
        let all: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(versions(&first), all);

        // Another connection holds the write lock (a backfill batch in progress).
        let writer = open(&path);
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut late = open(&path);
        migrate(&mut late, &path, Variant::Reference)
            .expect("an up-to-date DB must not wait for the write lock");
        writer.execute_batch("COMMIT").unwrap();
        assert_eq!(versions(&late), all);
    }

    #[test]
    fn a_missing_migration_is_still_applied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state_5.sqlite");
        let mut conn = open(&path);
        assert_eq!(applied_versions(&conn).unwrap(), None);
        migrate(&mut conn, &path, Variant::Reference).unwrap();
        conn.execute(
            &format!("DELETE FROM {MIGRATIONS_TABLE} WHERE version = 1002"),
            [],
        )
        .unwrap();
        conn.execute_batch("DROP TABLE backfill_failures").unwrap();
        migrate(&mut conn, &path, Variant::Reference).unwrap();
        assert!(versions(&conn).contains(&1002));
        assert!(has_column(&conn, "backfill_failures", "path").unwrap());
    }
}
