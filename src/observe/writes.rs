//! The backfill write log: SQL triggers the harness installs into a scenario's DB after
//! setup, recording every INSERT/UPDATE/DELETE of Codex's `backfill_state` row (the lease
//! and progress of the backfill on both targets) and of the harness's lease-owner row
//! ([`LEASE_TABLE`], present only in DBs the reference prepared) into
//! [`WRITE_LOG_TABLE`]: sequence, time in ms from SQLite's own clock, the OLD and NEW
//! status, watermark and `updated_at`, and the lease row (owner, expiry, fence) as it stood
//! at that moment. The log is written by SQLite inside the writer's own transaction, so it
//! holds what reached the DB, whatever the writer says about itself.
//!
//! Only scenario and test homes get the log (it takes a [`HomeModel`], which only the
//! runners and tests build; never a user's home). Everything it adds is in the harness's
//! namespace (`statedb_harness_*`): one table and triggers; no column of a Codex-owned
//! table is added or altered, and a trigger changes no schema Codex migrates (proven with
//! the real Codex in `tests/interop_codex.rs`).
//!
//! **No writer identity.** SQLite gives a trigger no connection identity (no pid, no
//! connection id; a trigger in the main schema cannot see a connection's temp objects),
//! and attributing a write from outside (`/proc/locks` shows who holds the WAL write lock
//! at the instant it is sampled, not which process committed a given row) would be a race,
//! not an observation; task workers share one process anyway. So the checks built on this
//! log (`observe::lease`) judge the protocol's observable effects on the rows, in the
//! order SQLite serialised them, not who wrote them.
//!
//! Faults the harness injects while the log is on are bracketed by marker rows, so the
//! checks can tell the harness's own writes from the code under test's.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::faults::HomeModel;
use crate::state::schema::LEASE_TABLE;

/// The harness's log table in a scenario's DB.
pub const WRITE_LOG_TABLE: &str = "statedb_harness_write_log";
/// Prefix of the triggers that fill it.
const TRIGGER_PREFIX: &str = "statedb_harness_log_";
/// `tbl` of the row [`success_trigger`] adds.
const SUCCESS_MARK: &str = "backfill_success";
/// Milliseconds since the epoch from SQLite's clock (constant within one statement).
const NOW_MS: &str = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

/// The row operation a log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    const ALL: [Op; 3] = [Op::Insert, Op::Update, Op::Delete];

    fn sql(self) -> &'static str {
        match self {
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == s)
    }

    /// The trigger's (old, new) row references.
    fn images(self) -> (Option<&'static str>, Option<&'static str>) {
        match self {
            Op::Insert => (None, Some("NEW")),
            Op::Update => (Some("OLD"), Some("NEW")),
            Op::Delete => (Some("OLD"), None),
        }
    }
}

/// `backfill_state` as one side of a write saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackfillImage {
    pub status: Option<String>,
    pub watermark: Option<String>,
    /// `last_success_at`: a completion sets it; a heartbeat on a complete row does not.
    pub success_at: Option<i64>,
    pub updated_at: Option<i64>,
}

/// The harness lease row: who it names, until when (owner's clock), and the
/// `backfill_state.updated_at` that owner last wrote (its fence).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LeaseImage {
    pub owner: Option<String>,
    pub expires_ms: Option<i64>,
    pub fence: Option<i64>,
}

/// What one log row records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum Change {
    /// A write of `backfill_state`, with the lease row as it stood at that moment (`None`
    /// where the DB has no harness lease table, e.g. Codex's own).
    Backfill {
        op: Op,
        old: Option<BackfillImage>,
        new: Option<BackfillImage>,
        lease: Option<LeaseImage>,
        /// Whether the statement set `last_success_at` (as a completion does; a heartbeat
        /// does not), whatever the value: from an `UPDATE OF last_success_at` trigger.
        sets_success: bool,
    },
    /// A write of the harness lease row.
    Lease {
        op: Op,
        old: Option<LeaseImage>,
        new: Option<LeaseImage>,
    },
    /// The harness starts (`begin`) or ends injecting fault `id`.
    Fault { id: String, begin: bool },
}

/// One row of the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub seq: i64,
    pub at_ms: i64,
    pub change: Change,
}

/// The whole log, in SQLite's commit order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteLog {
    pub entries: Vec<Entry>,
    /// Whether the harness lease row was watched (the DB had [`LEASE_TABLE`] at install).
    pub lease_watched: bool,
}

fn open(db: &Path, flags: OpenFlags) -> Result<Connection, String> {
    let c = Connection::open_with_flags(db, flags).map_err(|e| format!("{}: {e}", db.display()))?;
    c.busy_timeout(Duration::from_secs(5))
        .map_err(|e| format!("{}: {e}", db.display()))?;
    Ok(c)
}

fn table_exists(c: &Connection, table: &str) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn col(image: Option<&str>, column: &str) -> String {
    image.map_or_else(|| "NULL".into(), |r| format!("{r}.{column}"))
}

fn backfill_trigger(op: Op, lease: bool) -> String {
    let (old, new) = op.images();
    let snap = |column: &str| {
        if lease {
            format!("(SELECT {column} FROM {LEASE_TABLE} WHERE id = 1)")
        } else {
            "NULL".into()
        }
    };
    format!(
        "CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}backfill_{name} AFTER {sql} ON backfill_state
         BEGIN
            INSERT INTO {WRITE_LOG_TABLE} (at_ms, tbl, op, old_status, new_status, old_watermark,
                new_watermark, old_updated_at, new_updated_at, lease_owner, lease_expires_ms,
                lease_fence, old_success_at, new_success_at)
            VALUES ({NOW_MS}, 'backfill_state', '{name}', {os}, {ns}, {ow}, {nw}, {ou}, {nu},
                {lo}, {le}, {lf}, {osa}, {nsa});
         END;",
        name = op.name(),
        sql = op.sql(),
        os = col(old, "status"),
        ns = col(new, "status"),
        ow = col(old, "last_watermark"),
        nw = col(new, "last_watermark"),
        ou = col(old, "updated_at"),
        nu = col(new, "updated_at"),
        osa = col(old, "last_success_at"),
        nsa = col(new, "last_success_at"),
        lo = snap("owner_id"),
        le = snap("lease_expires_at_ms"),
        lf = snap("state_updated_at"),
    )
}

/// Marks an UPDATE whose SET names `last_success_at` (fires next to the update's own row).
fn success_trigger() -> String {
    format!(
        "CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}backfill_success
         AFTER UPDATE OF last_success_at ON backfill_state
         BEGIN
            INSERT INTO {WRITE_LOG_TABLE} (at_ms, tbl, op, new_status, new_watermark,
                new_updated_at, new_success_at)
            VALUES ({NOW_MS}, '{SUCCESS_MARK}', 'update', NEW.status, NEW.last_watermark,
                NEW.updated_at, NEW.last_success_at);
         END;"
    )
}

fn lease_trigger(op: Op) -> String {
    let (old, new) = op.images();
    format!(
        "CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}lease_{name} AFTER {sql} ON {LEASE_TABLE}
         BEGIN
            INSERT INTO {WRITE_LOG_TABLE} (at_ms, tbl, op, old_owner, new_owner,
                old_expires_ms, new_expires_ms, old_fence, new_fence)
            VALUES ({NOW_MS}, 'lease', '{name}', {oo}, {no}, {oe}, {ne}, {of}, {nf});
         END;",
        name = op.name(),
        sql = op.sql(),
        oo = col(old, "owner_id"),
        no = col(new, "owner_id"),
        oe = col(old, "lease_expires_at_ms"),
        ne = col(new, "lease_expires_at_ms"),
        of = col(old, "state_updated_at"),
        nf = col(new, "state_updated_at"),
    )
}

/// Installs the log table and its triggers into the scenario home's DB (idempotent).
/// Returns whether the harness lease row is watched too.
pub fn install(home: &HomeModel) -> Result<bool, String> {
    let db = home.db_path();
    install_at(&db)
}

/// [`install`] on a DB path; for the runners and tests, which hold a scenario home.
pub(crate) fn install_at(db: &Path) -> Result<bool, String> {
    if !db.is_file() {
        return Err(format!("no state db at {}", db.display()));
    }
    let c = open(db, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let fail =
        |e: rusqlite::Error| format!("cannot install the write log in {}: {e}", db.display());
    if !table_exists(&c, "backfill_state").map_err(fail)? {
        return Err(format!("{} has no backfill_state table", db.display()));
    }
    let lease = table_exists(&c, LEASE_TABLE).map_err(fail)?;
    let mut sql = format!(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS {WRITE_LOG_TABLE} (
            seq INTEGER PRIMARY KEY,
            at_ms INTEGER NOT NULL,
            tbl TEXT NOT NULL,
            op TEXT NOT NULL,
            old_status TEXT, new_status TEXT,
            old_watermark TEXT, new_watermark TEXT,
            old_updated_at INTEGER, new_updated_at INTEGER,
            lease_owner TEXT, lease_expires_ms INTEGER, lease_fence INTEGER,
            old_owner TEXT, new_owner TEXT,
            old_expires_ms INTEGER, new_expires_ms INTEGER,
            old_fence INTEGER, new_fence INTEGER,
            old_success_at INTEGER, new_success_at INTEGER
         );"
    );
    for op in Op::ALL {
        sql.push_str(&backfill_trigger(op, lease));
        if lease {
            sql.push_str(&lease_trigger(op));
        }
    }
    sql.push_str(&success_trigger());
    sql.push_str("COMMIT;");
    c.execute_batch(&sql).map_err(fail)?;
    Ok(lease)
}

/// Marks the start or end of a harness fault in the log (no-op where there is no log, and
/// once a fault has damaged the DB: its bytes are kept as the fault left them, and an
/// unclosed fault leaves the rest of the log unjudged).
pub fn mark_fault(home: &HomeModel, id: &str, begin: bool) -> Result<(), String> {
    let db = home.db_path();
    if !db.is_file() || home.damaged_db.is_some() {
        return Ok(());
    }
    let c = open(&db, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    if !table_exists(&c, WRITE_LOG_TABLE).map_err(|e| e.to_string())? {
        return Ok(());
    }
    let tbl = if begin { "fault_begin" } else { "fault_end" };
    c.execute(
        &format!("INSERT INTO {WRITE_LOG_TABLE} (at_ms, tbl, op) VALUES ({NOW_MS}, ?1, ?2)"),
        [tbl, id],
    )
    .map_err(|e| format!("cannot mark fault {id} in {}: {e}", db.display()))?;
    Ok(())
}

/// Reads the log of the scenario home's DB.
pub fn read(home: &HomeModel) -> Result<WriteLog, String> {
    read_at(&home.db_path())
}

/// [`read`] on a DB path.
pub fn read_at(db: &Path) -> Result<WriteLog, String> {
    if !db.is_file() {
        return Err(format!("no state db at {}", db.display()));
    }
    let c = open(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let fail = |e: rusqlite::Error| format!("cannot read the write log of {}: {e}", db.display());
    if !table_exists(&c, WRITE_LOG_TABLE).map_err(fail)? {
        return Err(format!(
            "{} has no write log (the DB was created or replaced after setup)",
            db.display()
        ));
    }
    let lease_watched = c
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
            [format!("{TRIGGER_PREFIX}lease_update")],
            |_| Ok(()),
        )
        .optional()
        .map_err(fail)?
        .is_some();
    let mut stmt = c
        .prepare(&format!(
            "SELECT seq, at_ms, tbl, op, old_status, new_status, old_watermark, new_watermark,
                old_updated_at, new_updated_at, lease_owner, lease_expires_ms, lease_fence,
                old_owner, new_owner, old_expires_ms, new_expires_ms, old_fence, new_fence,
                old_success_at, new_success_at
             FROM {WRITE_LOG_TABLE} ORDER BY seq"
        ))
        .map_err(fail)?;
    let rows = stmt
        .query_map([], |r| {
            let tbl: String = r.get(2)?;
            let op: String = r.get(3)?;
            let backfill = |s: usize| -> rusqlite::Result<BackfillImage> {
                Ok(BackfillImage {
                    status: r.get(s)?,
                    watermark: r.get(s + 2)?,
                    success_at: r.get(s + 15)?,
                    updated_at: r.get(s + 4)?,
                })
            };
            let lease = |o: usize, e: usize, f: usize| -> rusqlite::Result<LeaseImage> {
                Ok(LeaseImage {
                    owner: r.get(o)?,
                    expires_ms: r.get(e)?,
                    fence: r.get(f)?,
                })
            };
            let change = match (tbl.as_str(), Op::parse(&op)) {
                ("backfill_state", Some(op)) => {
                    let (old, new) = op.images();
                    Some(Change::Backfill {
                        op,
                        old: old.map(|_| backfill(4)).transpose()?,
                        new: new.map(|_| backfill(5)).transpose()?,
                        lease: lease_watched.then(|| lease(10, 11, 12)).transpose()?,
                        sets_success: false,
                    })
                }
                ("lease", Some(op)) => {
                    let (old, new) = op.images();
                    Some(Change::Lease {
                        op,
                        old: old.map(|_| lease(13, 15, 17)).transpose()?,
                        new: new.map(|_| lease(14, 16, 18)).transpose()?,
                    })
                }
                // Parsed as a backfill update with no OLD image; folded into its statement's
                // own row by `attach_success_marks`.
                (SUCCESS_MARK, _) => Some(Change::Backfill {
                    op: Op::Update,
                    old: None,
                    new: Some(backfill(5)?),
                    lease: None,
                    sets_success: true,
                }),
                ("fault_begin" | "fault_end", _) => Some(Change::Fault {
                    id: op,
                    begin: tbl == "fault_begin",
                }),
                _ => None,
            };
            Ok(change.map(|change| Entry {
                seq: r.get(0).unwrap_or_default(),
                at_ms: r.get(1).unwrap_or_default(),
                change,
            }))
        })
        .map_err(fail)?;
    let mut entries = Vec::new();
    for row in rows {
        if let Some(e) = row.map_err(fail)? {
            entries.push(e);
        }
    }
    Ok(WriteLog {
        entries: attach_success_marks(entries),
        lease_watched,
    })
}

/// Folds each `last_success_at` mark into the backfill update of the same statement: the
/// adjacent update row (SQLite fires a statement's triggers one after the other, in an
/// order it does not promise) with the same time and NEW image.
fn attach_success_marks(raw: Vec<Entry>) -> Vec<Entry> {
    let is_mark = |e: &Entry| {
        matches!(
            &e.change,
            Change::Backfill {
                op: Op::Update,
                old: None,
                sets_success: true,
                ..
            }
        )
    };
    let new_of = |e: &Entry| match &e.change {
        Change::Backfill { new, .. } => new.clone(),
        _ => None,
    };
    let mut flagged = vec![false; raw.len()];
    for i in (0..raw.len()).filter(|&i| is_mark(&raw[i])) {
        let same_statement = |j: usize| {
            !is_mark(&raw[j])
                && !flagged[j]
                && matches!(&raw[j].change, Change::Backfill { op: Op::Update, .. })
                && raw[j].at_ms == raw[i].at_ms
                && new_of(&raw[j]) == new_of(&raw[i])
        };
        let next = (i + 1 < raw.len()).then_some(i + 1);
        let prev = i.checked_sub(1);
        if let Some(j) = next.into_iter().chain(prev).find(|&j| same_statement(j)) {
            flagged[j] = true;
        }
    }
    raw.into_iter()
        .zip(flagged)
        .filter(|(e, _)| !is_mark(e))
        .map(|(mut e, flag)| {
            if let Change::Backfill { sets_success, .. } = &mut e.change {
                *sets_success = flag;
            }
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with(lease: bool) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state_5.sqlite");
        let c = Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE backfill_state (id INTEGER PRIMARY KEY CHECK (id = 1),
                status TEXT NOT NULL, last_watermark TEXT, last_success_at INTEGER,
                updated_at INTEGER NOT NULL);
             INSERT INTO backfill_state VALUES (1, 'pending', NULL, NULL, 0);",
        )
        .unwrap();
        if lease {
            c.execute_batch(&format!(
                "CREATE TABLE {LEASE_TABLE} (id INTEGER PRIMARY KEY, owner_id TEXT,
                    lease_expires_at_ms INTEGER, state_updated_at INTEGER)"
            ))
            .unwrap();
        }
        (dir, db)
    }

    #[test]
    fn every_write_of_both_rows_is_logged_in_order_with_the_lease_at_that_moment() {
        let (_dir, db) = db_with(true);
        assert!(install_at(&db).unwrap());
        assert!(install_at(&db).unwrap(), "installing twice is harmless");
        let c = Connection::open(&db).unwrap();
        c.execute_batch(&format!(
            "UPDATE backfill_state SET status = 'running', updated_at = 5;
             INSERT INTO {LEASE_TABLE} VALUES (1, 'a', 9000, 5);
             UPDATE backfill_state SET last_watermark = 'w1', updated_at = 6;
             DELETE FROM {LEASE_TABLE};"
        ))
        .unwrap();
        let log = read_at(&db).unwrap();
        assert!(log.lease_watched);
        let seqs: Vec<i64> = log.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        assert!(
            log.entries[0].at_ms > 1_700_000_000_000,
            "{:?}",
            log.entries[0]
        );
        match &log.entries[2].change {
            Change::Backfill {
                op,
                old,
                new,
                lease,
                sets_success,
            } => {
                assert_eq!(*op, Op::Update);
                assert!(!sets_success);
                assert_eq!(old.as_ref().unwrap().watermark, None);
                assert_eq!(new.as_ref().unwrap().watermark.as_deref(), Some("w1"));
                let lease = lease.as_ref().unwrap();
                assert_eq!(
                    (lease.owner.as_deref(), lease.expires_ms, lease.fence),
                    (Some("a"), Some(9000), Some(5))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &log.entries[3].change,
            Change::Lease {
                op: Op::Delete,
                old: Some(_),
                new: None
            }
        ));
    }

    #[test]
    fn a_db_without_the_lease_table_logs_backfill_state_only_and_keeps_working() {
        let (_dir, db) = db_with(false);
        assert!(!install_at(&db).unwrap());
        let c = Connection::open(&db).unwrap();
        // A completion names last_success_at (even with an unchanged value); a heartbeat
        // on the complete row does not.
        c.execute_batch(
            "UPDATE backfill_state SET status = 'complete', last_success_at = 7, updated_at = 7;
             UPDATE backfill_state SET updated_at = 8;
             UPDATE backfill_state SET last_success_at = 7, updated_at = 8;",
        )
        .unwrap();
        let log = read_at(&db).unwrap();
        assert!(!log.lease_watched);
        let marks: Vec<bool> = log
            .entries
            .iter()
            .map(|e| match &e.change {
                Change::Backfill {
                    lease: None,
                    sets_success,
                    ..
                } => *sets_success,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(marks, vec![true, false, true]);
        let tables: Vec<String> = c
            .prepare("SELECT name FROM sqlite_master WHERE name <> 'backfill_state'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            tables.iter().all(|n| n.starts_with("statedb_harness_")),
            "{tables:?}"
        );
    }

    #[test]
    fn a_db_without_the_log_reads_as_an_error_naming_it() {
        let (_dir, db) = db_with(false);
        let err = read_at(&db).unwrap_err();
        assert!(err.contains("no write log"), "{err}");
    }
}
