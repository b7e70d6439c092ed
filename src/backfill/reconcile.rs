//! Incremental reconcile: index rollouts that appeared after the backfill completed
//! (restored from a backup, copied from another machine, written by another tool or an
//! older binary). Codex indexes such files only when a lookup or a listing window happens
//! to touch them, so they stay missing from every DB listing.
//!
//! Cheap by construction: the harness keeps, in its own bookkeeping table
//! `statedb_harness_seen_dirs` (never a column in a Codex table), a signature of every
//! rollout directory it has listed — `(mtime, ctime)` in nanoseconds. Adding, removing or
//! renaming an entry changes both, and `ctime` cannot be set back by restore tools. A
//! reconcile only `stat`s directories; it lists a directory (and reads the heads of its
//! rollouts that no row points at) only when its signature changed, it is new, or it was
//! modified too recently for its timestamp to be trusted (the "racy" window, as in git's
//! index). A second table, `statedb_harness_seen_rows`, keeps the row count after the last
//! reconcile: fewer rows now means someone deleted rows (Codex drops rows whose file is
//! briefly missing), and every directory is listed again.
//!
//! Listing runs it thoroughly (the guarantee that a listing shows every rollout); startup
//! runs it incrementally, and on its first run only records the signatures (see
//! [`ReconcileMode`]).
//!
//! What it writes: a row for each rollout whose thread has no row (insert-if-absent, so a
//! live row is never overwritten); rows that exist but point elsewhere are left to
//! lookup's verified read-repair. Rollout files are only read.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use rustc_hash::FxHashSet;
use serde_json::json;
use uuid::Uuid;

use crate::rollout::head::read_session_meta_head;
use crate::rollout::layout::{parse_rollout_file_name, Root};
use crate::rollout::metadata::extract_metadata;
use crate::state::{threads, StateDbHandle, StateError};
use crate::thread::ThreadMetadata;

use super::dir_signatures::{self, DirRecord, SeenDirs, WalkPolicy};
use super::dir_watch::{DirWatch, Drained, ListingMemo, Unwatched};

/// The harness's own table of directory signatures (relative to the codex home).
pub const SEEN_DIRS_TABLE: &str = "statedb_harness_seen_dirs";
/// The harness's own singleton with the `threads` row count after the last reconcile.
pub const SEEN_ROWS_TABLE: &str = "statedb_harness_seen_rows";

/// A directory modified less than this long before it was listed is listed again next
/// time: a file added within the same filesystem timestamp tick would not change it.
const RACY_WINDOW_NS: i128 = 2_000_000_000;

/// Who reconciles, which decides how thorough it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileMode {
    /// The first page of a listing: the guarantee. Lists directories never seen, changed,
    /// or too recently modified to trust, and everything when rows disappeared or on the
    /// first run.
    Listing,
    /// Startup: incremental only. Lists directories never seen or whose signature changed;
    /// on the first run (no bookkeeping yet) it only records the signatures, so startup
    /// never re-indexes a whole home (the backfill and lookups own that).
    Startup,
}

/// What one reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileOutcome {
    /// Directories whose signature was checked.
    pub dirs_checked: usize,
    /// Directories listed (new, changed, racy, or everything after rows vanished).
    pub dirs_listed: usize,
    /// Rollouts no row pointed at whose head was read.
    pub candidates: usize,
    /// Rows inserted for threads the DB did not know.
    pub inserted: Vec<Uuid>,
    /// Every directory was listed because rows disappeared (or this is the first run).
    pub full: bool,
}

/// Creates the harness's bookkeeping tables if missing (its own tables only).
fn ensure_tables(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {SEEN_DIRS_TABLE} (
            dir TEXT PRIMARY KEY,
            parent TEXT,
            mtime_ns TEXT,
            ctime_ns TEXT
        );
        CREATE TABLE IF NOT EXISTS {SEEN_ROWS_TABLE} (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            rows INTEGER NOT NULL
        );"
    ))
}

fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The stored signatures and row count, or `None` before the first reconcile.
fn load_seen(conn: &Connection) -> rusqlite::Result<Option<(SeenDirs, i64)>> {
    if !table_exists(conn, SEEN_DIRS_TABLE)? || !table_exists(conn, SEEN_ROWS_TABLE)? {
        return Ok(None);
    }
    let rows: Option<i64> = conn
        .query_row(
            &format!("SELECT rows FROM {SEEN_ROWS_TABLE} WHERE id = 1"),
            [],
            |r| r.get(0),
        )
        .optional()?;
    let Some(rows) = rows else { return Ok(None) };
    let mut stmt = conn.prepare(&format!(
        "SELECT dir, parent, mtime_ns, ctime_ns FROM {SEEN_DIRS_TABLE}"
    ))?;
    let mut map = SeenDirs::default();
    let iter = stmt.query_map([], |r| {
        let m: Option<String> = r.get(2)?;
        let c: Option<String> = r.get(3)?;
        let sig = match (
            m.and_then(|m| m.parse().ok()),
            c.and_then(|c| c.parse().ok()),
        ) {
            (Some(m), Some(c)) => Some((m, c)),
            _ => None,
        };
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, sig))
    })?;
    for item in iter {
        let (dir, parent, sig) = item?;
        map.insert(dir, DirRecord { parent, sig });
    }
    Ok(Some((map, rows)))
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Indexes rollouts the DB has not seen. Writes nothing when nothing changed.
pub fn reconcile_new_rollouts(
    rt: &StateDbHandle,
    mode: ReconcileMode,
) -> Result<ReconcileOutcome, StateError> {
    reconcile_as_of(rt, mode, now_ns())
}

/// [`reconcile_new_rollouts`] with the time the racy window is measured from passed in, so
/// a test can judge trusted signatures without waiting the window out.
fn reconcile_as_of(
    rt: &StateDbHandle,
    mode: ReconcileMode,
    started_ns: i128,
) -> Result<ReconcileOutcome, StateError> {
    if !rt.context().decisions().index_new_rollouts() {
        return Ok(ReconcileOutcome::default());
    }
    let policy = WalkPolicy {
        list_everything: false,
        files_of_racy_dirs: mode == ReconcileMode::Listing,
        no_files: false,
        started_ns,
        racy_window_ns: RACY_WINDOW_NS,
    };
    let mut arm = false;
    if mode == ReconcileMode::Listing {
        if let Some(memo) = rt.take_listing_memo() {
            match memo.downcast::<ListingMemo>() {
                Ok(mut memo) => {
                    if let Some(outcome) = reconcile_watched(rt, &mut memo, policy)? {
                        rt.put_listing_memo(memo);
                        return Ok(outcome);
                    }
                    // The watch could not vouch: walk, and watch afresh.
                    arm = true;
                }
                Err(other) => {
                    arm = other
                        .downcast_ref::<Unwatched>()
                        .is_some_and(|u| !u.refused);
                }
            }
        }
    }
    reconcile_walking(rt, mode, policy, arm)
}

/// The reconcile that `stat`s every directory; with `arm` (a listing) it also watches them,
/// for the next listings of this process to use instead.
fn reconcile_walking(
    rt: &StateDbHandle,
    mode: ReconcileMode,
    policy: WalkPolicy,
    arm: bool,
) -> Result<ReconcileOutcome, StateError> {
    let mut outcome = ReconcileOutcome::default();
    let home = rt.codex_home().to_path_buf();
    let mut watch = if arm {
        DirWatch::new(&home, root_names())
    } else {
        None
    };
    // Only a watch needs it; read before anything else, so that a commit by another
    // connection after this point shows in the next listing.
    let data_version = match watch {
        Some(_) => rt.data_version()?,
        None => 0,
    };
    let seen = rt.read("reconcile", load_seen)?;
    let rows_now = rt.thread_count()?;
    let first_run = seen.is_none();
    let (stored, full) = match seen {
        Some((map, rows_seen)) => (map, mode == ReconcileMode::Listing && rows_now < rows_seen),
        None => (SeenDirs::default(), mode == ReconcileMode::Listing),
    };
    // On its first run, startup only records what is there.
    let prime_only = first_run && mode == ReconcileMode::Startup;
    outcome.full = full;
    let walked = dir_signatures::walk(
        &home,
        &stored,
        WalkPolicy {
            list_everything: prime_only || full,
            no_files: prime_only,
            ..policy
        },
        watch.as_mut(),
    );
    outcome.dirs_checked = walked.dirs_checked;
    outcome.dirs_listed = walked.dirs_listed;
    let new_rows = rows_to_index(rt, &walked.candidates, &mut outcome)?;
    let mut rows_seen = rows_now;
    if !new_rows.is_empty() || walked.changed || full {
        let (inserted, rows) = persist(rt, &new_rows, Records::Replace(&walked.dirs))?;
        report(rt, &inserted);
        outcome.inserted = inserted;
        rows_seen = rows;
    }
    match watch.filter(|_| !walked.watch_incomplete) {
        Some(watch) => {
            let seen: SeenDirs = walked.dirs.into_iter().collect();
            let untrusted = untrusted_of(&seen);
            rt.put_listing_memo(Box::new(ListingMemo {
                watch,
                seen,
                untrusted,
                rows_seen,
                data_version,
            }));
        }
        None if mode == ReconcileMode::Listing => {
            if arm {
                tracing::info!(
                    "reconcile: the kernel refused a directory watch; every listing walks"
                );
            }
            rt.put_listing_memo(Box::new(Unwatched { refused: arm }));
        }
        None => {}
    }
    Ok(outcome)
}

/// A listing's reconcile through the watch: lists only the directories the kernel reported
/// changed and those still racy. `None` when the watch cannot vouch for the rest (events
/// lost, rows gone, a directory gone): the caller walks everything.
fn reconcile_watched(
    rt: &StateDbHandle,
    memo: &mut ListingMemo,
    policy: WalkPolicy,
) -> Result<Option<ReconcileOutcome>, StateError> {
    let changed = match memo.watch.drain() {
        Drained::Changed(changed) => changed,
        Drained::Lost(why) => {
            tracing::debug!("reconcile: directory watch dropped ({why}); walking every directory");
            return Ok(None);
        }
    };
    let data_version = rt.data_version()?;
    if data_version != memo.data_version {
        // Another connection committed: rows it deleted would need every directory listed.
        let rows = rt.thread_count()?;
        if rows < memo.rows_seen {
            return Ok(None);
        }
        memo.rows_seen = rows;
        memo.data_version = data_version;
    }
    let mut outcome = ReconcileOutcome::default();
    let mut dirty: Vec<String> = changed
        .into_iter()
        .chain(memo.untrusted.iter().cloned())
        .collect();
    if dirty.is_empty() {
        return Ok(Some(outcome));
    }
    dirty.sort_unstable();
    dirty.dedup();
    let home = rt.codex_home().to_path_buf();
    let Some(walked) = dir_signatures::relist(&home, &memo.seen, dirty, &mut memo.watch, policy)
    else {
        return Ok(None);
    };
    if walked.watch_incomplete {
        return Ok(None);
    }
    outcome.dirs_checked = walked.dirs_checked;
    outcome.dirs_listed = walked.dirs_listed;
    let new_rows = rows_to_index(rt, &walked.candidates, &mut outcome)?;
    if !new_rows.is_empty() || walked.changed {
        let (inserted, rows) = persist(rt, &new_rows, Records::Upsert(&walked.dirs))?;
        report(rt, &inserted);
        outcome.inserted = inserted;
        memo.rows_seen = rows;
    }
    for (key, record) in walked.dirs {
        if record.sig.is_some() {
            memo.untrusted.remove(&key);
        } else {
            memo.untrusted.insert(key.clone());
        }
        memo.seen.insert(key, record);
    }
    Ok(Some(outcome))
}

/// The rollout roots' names under the home (what the home's own watch cares about).
fn root_names() -> Vec<String> {
    Root::ALL.iter().map(|r| r.subdir().to_owned()).collect()
}

fn untrusted_of(seen: &SeenDirs) -> FxHashSet<String> {
    seen.iter()
        .filter(|(_, r)| r.sig.is_none())
        .map(|(k, _)| k.clone())
        .collect()
}

/// The rows to insert for `candidates` no row points at: each file's head must name the
/// thread its file name carries, and that thread must have no row yet.
fn rows_to_index(
    rt: &StateDbHandle,
    candidates: &[(PathBuf, Root)],
    outcome: &mut ReconcileOutcome,
) -> Result<Vec<ThreadMetadata>, StateError> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let known: HashMap<Uuid, PathBuf> = rt
        .all_threads()?
        .into_iter()
        .map(|r| (r.id, r.rollout_path))
        .collect();
    // A file is indexed when the row of the thread its name carries points at it (a row
    // of another thread pointing there — a stale row — does not count).
    let known_pairs: HashSet<(Uuid, &Path)> =
        known.iter().map(|(id, p)| (*id, p.as_path())).collect();
    let known_paths: HashSet<&Path> = known.values().map(PathBuf::as_path).collect();
    let is_indexed = |path: &Path| {
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_rollout_file_name)
            .map(|n| n.id);
        match named {
            Some(id) => known_pairs.contains(&(id, path)),
            None => known_paths.contains(path),
        }
    };
    let mut new_rows = Vec::new();
    let mut claimed: HashSet<Uuid> = HashSet::new();
    for (path, root) in candidates {
        if is_indexed(path) {
            continue;
        }
        outcome.candidates += 1;
        // Only threads without a row: a row that points elsewhere is lookup's to repair.
        let Some(id) = read_session_meta_head(path)
            .ok()
            .and_then(|h| h.thread_id())
        else {
            continue;
        };
        // Only a file named for the thread its head names: anything else is lookup's to
        // judge (a mismatched or foreign file is never indexed from here).
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_rollout_file_name)
            .map(|n| n.id);
        if named != Some(id) {
            continue;
        }
        if known.contains_key(&id) || !claimed.insert(id) {
            continue;
        }
        match extract_metadata(path, rt.default_provider()) {
            Ok(extraction) if extraction.metadata.id == id => {
                let mut meta = extraction.metadata;
                if root.is_archived() {
                    meta.archived_at_ms.get_or_insert(meta.updated_at_ms);
                } else {
                    meta.archived_at_ms = None;
                }
                new_rows.push(meta);
            }
            Ok(_) => {}
            Err(err) => tracing::info!("reconcile: cannot index {}: {err}", path.display()),
        }
    }
    Ok(new_rows)
}

/// How the directory records are written back.
enum Records<'a> {
    /// These are every directory there is.
    Replace(&'a [(String, DirRecord)]),
    /// These changed; the others stand.
    Upsert(&'a [(String, DirRecord)]),
}

/// Inserts `new_rows` (if absent) and writes the records and the row count, in one
/// transaction. Returns the threads inserted and the row count after.
fn persist(
    rt: &StateDbHandle,
    new_rows: &[ThreadMetadata],
    records: Records<'_>,
) -> Result<(Vec<Uuid>, i64), StateError> {
    rt.write("reconcile", |tx| {
        let sq = rt.err("reconcile");
        ensure_tables(tx).map_err(&sq)?;
        let mut inserted = Vec::new();
        for meta in new_rows {
            if threads::insert_if_absent(tx, meta).map_err(&sq)? {
                inserted.push(meta.id);
            }
        }
        let dirs = match records {
            Records::Replace(dirs) => {
                tx.execute(&format!("DELETE FROM {SEEN_DIRS_TABLE}"), [])
                    .map_err(&sq)?;
                dirs
            }
            Records::Upsert(dirs) => dirs,
        };
        let mut stmt = tx
            .prepare(&format!(
                "INSERT INTO {SEEN_DIRS_TABLE} (dir, parent, mtime_ns, ctime_ns)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(dir) DO UPDATE SET parent = excluded.parent,
                    mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns"
            ))
            .map_err(&sq)?;
        for (dir, rec) in dirs {
            let (m, c) = match rec.sig {
                Some((m, c)) => (Some(m.to_string()), Some(c.to_string())),
                None => (None, None),
            };
            stmt.execute(params![dir, rec.parent, m, c]).map_err(&sq)?;
        }
        let rows = threads::count(tx).map_err(&sq)?;
        tx.execute(
            &format!(
                "INSERT INTO {SEEN_ROWS_TABLE} (id, rows) VALUES (1, ?1)
                 ON CONFLICT(id) DO UPDATE SET rows = excluded.rows"
            ),
            [rows],
        )
        .map_err(&sq)?;
        Ok((inserted, rows))
    })
}

/// Says what a reconcile indexed: a warning (the DB had missed files) and an event.
fn report(rt: &StateDbHandle, inserted: &[Uuid]) {
    if inserted.is_empty() {
        return;
    }
    tracing::warn!(
        "state db discrepancy during reconcile: {} rollout(s) on disk had no row; indexed",
        inserted.len()
    );
    rt.context().emit(
        crate::events::kinds::RECONCILE_INDEXED,
        json!({"threads": inserted.iter().map(|i| i.to_string()).collect::<Vec<_>>()}),
    );
}

/// [`reconcile_new_rollouts`] for callers that must go on without it: errors are logged.
pub fn reconcile_or_warn(rt: &StateDbHandle, mode: ReconcileMode, during: &str) {
    if let Err(err) = reconcile_new_rollouts(rt, mode) {
        tracing::warn!("state db reconcile during {during} failed: {err}; continuing");
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
