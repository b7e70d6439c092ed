//! Who owns the schema of `state_5.sqlite`, and the harness's own tables in it.
//!
//! Codex owns its schema through sqlx migrations recorded in `_sqlx_migrations` (version +
//! checksum). A DB that carries that table is **Codex-made**: the harness never creates,
//! alters or drops anything Codex owns there (a column added by us is a later Codex
//! migration's "duplicate column"); it only adds its own bookkeeping tables, all named
//! `statedb_harness_*`, which no Codex migration can collide with.
//!
//! A DB without `_sqlx_migrations` that the harness created is **harness-own**
//! (`statedb_harness_meta.db_owner = 'statedb-harness'`): it exists only in scenario and
//! test homes, carries Codex's `threads` / `backfill_state` columns so the same code reads
//! both, and is never handed to Codex (Codex would refuse it: its migration 1 would find
//! `threads` already there). Whether a DB may be created at all in a home is decided above
//! this module (`state::creation`).

use std::path::Path;

use rusqlite::{Connection, Transaction};

use super::error::StateError;
use super::runtime::write_txn;
use crate::variant::Variant;

/// Codex's (sqlx's) migrations table: its presence marks a Codex-made DB.
pub const CODEX_MIGRATIONS_TABLE: &str = "_sqlx_migrations";
/// Key/value table marking a harness-own DB.
pub const META_TABLE: &str = "statedb_harness_meta";
/// The fenced lease owner (Codex's lease is only `backfill_state.status` + `updated_at`).
pub const LEASE_TABLE: &str = "statedb_harness_lease";
/// Rollouts a backfill could not index.
pub const FAILURES_TABLE: &str = "statedb_harness_backfill_failures";
/// Value of `db_owner` in [`META_TABLE`] for a DB the harness created.
pub const HARNESS_OWNER: &str = "statedb-harness";

/// Who made a state DB file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbKind {
    /// No tables yet (a file just created).
    Empty,
    /// Codex created and migrated it (`_sqlx_migrations` present).
    CodexMade,
    /// The harness created it in a harness-own home.
    HarnessOwn,
    /// Tables, but neither marker: not ours to change.
    Foreign,
}

fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .query_row([table], |r| r.get::<_, i64>(0))
        .map(|n| n > 0)
}

/// Classifies an open DB by its markers (a plain read).
pub fn db_kind(conn: &Connection) -> rusqlite::Result<DbKind> {
    if table_exists(conn, CODEX_MIGRATIONS_TABLE)? {
        return Ok(DbKind::CodexMade);
    }
    // `statedb_harness_migrations` marked harness DBs before the meta table existed.
    if table_exists(conn, META_TABLE)? || table_exists(conn, "statedb_harness_migrations")? {
        return Ok(DbKind::HarnessOwn);
    }
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    Ok(if tables == 0 {
        DbKind::Empty
    } else {
        DbKind::Foreign
    })
}

/// Prepares an open DB for the reference: a Codex-made DB gets only the harness's own
/// tables; an empty one becomes a harness-own DB; a harness-own one gets any `threads`
/// column it lacks (it is ours). A foreign DB is refused unchanged.
///
/// A DB that already has everything is recognised by plain reads and takes no write
/// transaction, so opening never queues for the write lock behind another process's
/// backfill batches (a wait that the busy timeout would turn into a failed start).
pub fn migrate(conn: &mut Connection, db_path: &Path, variant: Variant) -> Result<(), StateError> {
    let sq = |e| StateError::sqlite(db_path, "migrate", e);
    let kind = db_kind(conn).map_err(sq)?;
    match kind {
        DbKind::Foreign => {
            return Err(StateError::ForeignSchema {
                path: db_path.to_path_buf(),
            })
        }
        DbKind::CodexMade => require_tables(conn, db_path)?,
        DbKind::Empty | DbKind::HarnessOwn => {}
    }
    if kind != DbKind::Empty && up_to_date(conn, kind).map_err(sq)? {
        return Ok(());
    }
    // Writing to a damaged file would change it before recovery can keep it as it was
    // (the write lands in the WAL, and closing checkpoints it into the damaged pages).
    if kind != DbKind::Empty {
        check_tables(conn, db_path)?;
    }
    write_txn(conn, db_path, "migrate", variant, |tx| {
        // Re-classify inside the write lock: another process may have created it meanwhile.
        let kind = db_kind(tx).map_err(sq)?;
        if matches!(kind, DbKind::Empty | DbKind::HarnessOwn) {
            create_harness_own(tx).map_err(sq)?;
        }
        create_harness_tables(tx).map_err(sq)?;
        Ok(())
    })
}

fn up_to_date(conn: &Connection, kind: DbKind) -> rusqlite::Result<bool> {
    for table in [LEASE_TABLE, FAILURES_TABLE] {
        if !table_exists(conn, table)? {
            return Ok(false);
        }
    }
    if kind == DbKind::HarnessOwn {
        if !table_exists(conn, META_TABLE)? {
            return Ok(false);
        }
        for (column, _) in HARNESS_THREAD_COLUMNS {
            if !has_column(conn, "threads", column)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The harness's bookkeeping, the same in every kind of DB.
fn create_harness_tables(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {LEASE_TABLE} (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            owner_id TEXT,
            owner_pid INTEGER,
            owner_host TEXT,
            claimed_at_ms INTEGER,
            heartbeat_at_ms INTEGER,
            lease_expires_at_ms INTEGER,
            -- backfill_state.updated_at as this owner last wrote it: a claim by a Codex
            -- process (which knows nothing of this table) changes it and so ends our fence.
            state_updated_at INTEGER
        );
        CREATE TABLE IF NOT EXISTS {FAILURES_TABLE} (
            path TEXT PRIMARY KEY,
            error TEXT NOT NULL,
            failed_at_ms INTEGER NOT NULL
        );"
    ))
}

/// `threads` columns beyond migration 0001 that a harness-own DB carries (the ones the
/// reference reads or writes), with their declarations as Codex's migrations give them.
const HARNESS_THREAD_COLUMNS: &[(&str, &str)] = &[
    ("cli_version", "TEXT NOT NULL DEFAULT ''"),
    ("first_user_message", "TEXT NOT NULL DEFAULT ''"),
    ("agent_nickname", "TEXT"),
    ("agent_role", "TEXT"),
    ("memory_mode", "TEXT NOT NULL DEFAULT 'enabled'"),
    ("model", "TEXT"),
    ("reasoning_effort", "TEXT"),
    ("agent_path", "TEXT"),
    ("created_at_ms", "INTEGER"),
    ("updated_at_ms", "INTEGER"),
    ("thread_source", "TEXT"),
    ("preview", "TEXT NOT NULL DEFAULT ''"),
    ("recency_at", "INTEGER NOT NULL DEFAULT 0"),
    ("recency_at_ms", "INTEGER NOT NULL DEFAULT 0"),
    ("originator", "TEXT"),
];

/// Creates (or completes) the Codex-shaped tables of a harness-own DB and marks it.
fn create_harness_own(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO {META_TABLE} (key, value) VALUES ('db_owner', '{HARNESS_OWNER}')
            ON CONFLICT(key) DO NOTHING;
         CREATE TABLE IF NOT EXISTS threads (
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
         CREATE TABLE IF NOT EXISTS backfill_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            status TEXT NOT NULL,
            last_watermark TEXT,
            last_success_at INTEGER,
            updated_at INTEGER NOT NULL
         );
         INSERT INTO backfill_state (id, status, last_watermark, last_success_at, updated_at)
            VALUES (1, 'pending', NULL, NULL, CAST(strftime('%s', 'now') AS INTEGER))
            ON CONFLICT(id) DO NOTHING;"
    ))?;
    for (column, decl) in HARNESS_THREAD_COLUMNS {
        if !has_column(tx, "threads", column)? {
            tx.execute_batch(&format!("ALTER TABLE threads ADD COLUMN {column} {decl}"))?;
        }
    }
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS idx_threads_archived ON threads(archived);
         CREATE INDEX IF NOT EXISTS idx_threads_created_at_ms ON threads(created_at_ms DESC, id DESC);
         CREATE INDEX IF NOT EXISTS idx_threads_updated_at_ms ON threads(updated_at_ms DESC, id DESC);",
    )
}

/// Checks that an existing file carries the tables the reference reads (open-only path).
/// `PRAGMA quick_check` of the tables the reference reads (`threads`, `backfill_state`):
/// a torn leaf page still reads, as NULL columns, so damage must be looked for. A table
/// that is missing is not checked here ([`require_tables`] reports it).
pub fn check_tables(conn: &Connection, db_path: &Path) -> Result<(), StateError> {
    for table in ["threads", "backfill_state"] {
        let check = || -> rusqlite::Result<Vec<String>> {
            if !table_exists(conn, table)? {
                return Ok(vec!["ok".to_string()]);
            }
            let mut stmt = conn.prepare(&format!("PRAGMA quick_check({table})"))?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        };
        let problems = check().map_err(|e| StateError::sqlite(db_path, "probe", e))?;
        if problems != ["ok"] {
            return Err(StateError::sqlite(
                db_path,
                "probe",
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                    Some(format!("quick_check({table}): {}", problems.join("; "))),
                ),
            ));
        }
    }
    Ok(())
}

pub fn require_tables(conn: &Connection, db_path: &Path) -> Result<(), StateError> {
    for table in ["threads", "backfill_state"] {
        let present = table_exists(conn, table)
            .map_err(|e| StateError::sqlite(db_path, "schema check", e))?;
        if !present {
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

/// Whether the harness's own tables exist (a Codex DB the harness never wrote lacks them).
pub fn has_harness_tables(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(table_exists(conn, LEASE_TABLE)? && table_exists(conn, FAILURES_TABLE)?)
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

    fn schema_of(conn: &Connection, table: &str) -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// A damaged DB that needs a migration is refused before anything is written to it, so
    /// that recovery can keep it exactly as it was. Catches a migration that checks the
    /// tables of an empty DB only.
    #[test]
    fn a_damaged_db_needing_a_migration_is_refused_unwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state_5.sqlite");
        let (root, page_size) = {
            let mut conn = open(&path);
            migrate(&mut conn, &path, Variant::Reference).unwrap();
            conn.execute_batch(&format!("DROP TABLE {LEASE_TABLE}"))
                .unwrap();
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
            let root: usize = conn
                .query_row(
                    "SELECT rootpage FROM sqlite_master WHERE name = 'threads'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let size: usize = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap();
            (root, size)
        };
        let mut bytes = std::fs::read(&path).unwrap();
        let start = (root - 1) * page_size;
        bytes[start..start + page_size].fill(0xAB);
        std::fs::write(&path, &bytes).unwrap();

        let mut conn = open(&path);
        let err = migrate(&mut conn, &path, Variant::Reference)
            .expect_err("a damaged threads table was migrated");
        drop(conn);
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the damaged DB was written"
        );
    }

    #[test]
    fn an_up_to_date_db_migrates_without_taking_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state_5.sqlite");
        let mut first = open(&path);
        migrate(&mut first, &path, Variant::Reference).unwrap();
        assert_eq!(db_kind(&first).unwrap(), DbKind::HarnessOwn);

        // Another connection holds the write lock (a backfill batch in progress).
        let writer = open(&path);
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut late = open(&path);
        migrate(&mut late, &path, Variant::Reference)
            .expect("an up-to-date DB must not wait for the write lock");
        writer.execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn a_codex_made_db_gets_only_prefixed_tables_and_no_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state_5.sqlite");
        let mut conn = open(&path);
        // The shape of a Codex DB from before the millisecond columns (enough for the test).
        conn.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
                installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL,
                checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);
             CREATE TABLE threads (id TEXT PRIMARY KEY, rollout_path TEXT NOT NULL,
                created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
             CREATE TABLE backfill_state (id INTEGER PRIMARY KEY CHECK (id = 1),
                status TEXT NOT NULL, last_watermark TEXT, last_success_at INTEGER,
                updated_at INTEGER NOT NULL);",
        )
        .unwrap();
        let before = (
            schema_of(&conn, "threads"),
            schema_of(&conn, "backfill_state"),
        );
        migrate(&mut conn, &path, Variant::Reference).unwrap();
        let after = (
            schema_of(&conn, "threads"),
            schema_of(&conn, "backfill_state"),
        );
        assert_eq!(before, after, "a Codex-owned table changed");
        assert_eq!(db_kind(&conn).unwrap(), DbKind::CodexMade);
        assert!(has_harness_tables(&conn).unwrap());
        let ours: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .filter(|n: &String| {
                !["threads", "backfill_state", "_sqlx_migrations"].contains(&n.as_str())
            })
            .collect();
        assert!(
            ours.iter().all(|n| n.starts_with("statedb_harness_")),
            "{ours:?}"
        );
    }

    #[test]
    fn a_foreign_db_is_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state_5.sqlite");
        let mut conn = open(&path);
        conn.execute_batch("CREATE TABLE threads (id TEXT)")
            .unwrap();
        let err = migrate(&mut conn, &path, Variant::Reference).unwrap_err();
        assert!(matches!(err, StateError::ForeignSchema { .. }), "{err}");
        assert!(!has_harness_tables(&conn).unwrap());
    }
}
