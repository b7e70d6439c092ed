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

use rusqlite::{params, Connection, Transaction};
use serde_json::json;
use uuid::Uuid;

use crate::rollout::head::read_session_meta_head;
use crate::rollout::layout::parse_rollout_file_name;
use crate::rollout::metadata::extract_metadata;
use crate::state::{threads, StateDbHandle, StateError};

use super::dir_signatures::{self, DirRecord, SeenDirs, WalkPolicy};

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
        .ok();
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
    let ctx = rt.context().clone();
    let mut outcome = ReconcileOutcome::default();
    if !ctx.decisions().index_new_rollouts() {
        return Ok(outcome);
    }
    let home = rt.codex_home().to_path_buf();
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
            files_of_racy_dirs: mode == ReconcileMode::Listing,
            no_files: prime_only,
            started_ns,
            racy_window_ns: RACY_WINDOW_NS,
        },
    );
    outcome.dirs_checked = walked.dirs_checked;
    outcome.dirs_listed = walked.dirs_listed;
    let candidates = walked.candidates;

    let known: HashMap<Uuid, PathBuf> = if candidates.is_empty() {
        HashMap::new()
    } else {
        rt.all_threads()?
            .into_iter()
            .map(|r| (r.id, r.rollout_path))
            .collect()
    };
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
    for (path, root) in &candidates {
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

    let dirs_changed = walked.changed;
    if new_rows.is_empty() && !dirs_changed && !full {
        return Ok(outcome);
    }
    let inserted = rt.write("reconcile", |tx| {
        let sq = rt.err("reconcile");
        ensure_tables(tx).map_err(&sq)?;
        let mut inserted = Vec::new();
        for meta in &new_rows {
            if threads::insert_if_absent(tx, meta).map_err(&sq)? {
                inserted.push(meta.id);
            }
        }
        tx.execute(&format!("DELETE FROM {SEEN_DIRS_TABLE}"), [])
            .map_err(&sq)?;
        let mut stmt = tx
            .prepare(&format!(
                "INSERT INTO {SEEN_DIRS_TABLE} (dir, parent, mtime_ns, ctime_ns) VALUES (?1, ?2, ?3, ?4)"
            ))
            .map_err(&sq)?;
        for (dir, rec) in &walked.dirs {
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
        Ok(inserted)
    })?;
    if !inserted.is_empty() {
        tracing::warn!(
            "state db discrepancy during reconcile: {} rollout(s) on disk had no row; indexed",
            inserted.len()
        );
        ctx.emit(
            "reconcile_indexed",
            json!({"threads": inserted.iter().map(|i| i.to_string()).collect::<Vec<_>>()}),
        );
    }
    outcome.inserted = inserted;
    Ok(outcome)
}

/// [`reconcile_new_rollouts`] for callers that must go on without it: errors are logged.
pub fn reconcile_or_warn(rt: &StateDbHandle, mode: ReconcileMode, during: &str) {
    if let Err(err) = reconcile_new_rollouts(rt, mode) {
        tracing::warn!("state db reconcile during {during} failed: {err}; continuing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{generate_home, FixtureOptions};
    use crate::process::ProcessContext;
    use crate::rollout::layout::Root;
    use crate::state_db::{try_init, StateDbConfig};
    use crate::timing::Timings;
    use std::fs;

    /// An hour after now: every directory of the home is out of the racy window.
    fn an_hour_later() -> i128 {
        now_ns() + 3_600 * 1_000_000_000
    }

    fn home(seed: u64, threads: usize) -> (tempfile::TempDir, Vec<crate::fixture::FixtureThread>) {
        let dir = tempfile::tempdir().unwrap();
        let opts = FixtureOptions {
            threads,
            archived: 0,
            seed,
            ..FixtureOptions::default()
        };
        let threads = generate_home(dir.path(), &opts).unwrap();
        (dir, threads)
    }

    /// Sets every directory under the rollout roots a day back, so a file added later
    /// changes its mtime whatever the filesystem's timestamp granularity.
    fn backdate_dirs(dir: &Path) {
        let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                }
            }
            fs::File::open(&d).unwrap().set_modified(day_ago).unwrap();
        }
    }

    /// Once a directory's signature is trusted, an unchanged directory is not listed again
    /// and a rollout added to a directory is indexed. Catches signatures that never change
    /// (the added rollout is missed for good) and signatures never trusted (every
    /// directory listed on every reconcile).
    #[test]
    fn a_trusted_unchanged_directory_is_skipped_and_a_changed_one_is_listed() {
        let (dir, threads) = home(7, 3);
        let ctx = ProcessContext::plain("reconcile-test");
        let rt = try_init(&ctx, &StateDbConfig::new(dir.path(), Timings::short()))
            .unwrap()
            .handle;
        backdate_dirs(&Root::Active.dir(dir.path()));
        let first = reconcile_as_of(&rt, ReconcileMode::Listing, an_hour_later()).unwrap();
        assert!(
            first.dirs_listed > 0,
            "the first listing reconcile lists: {first:?}"
        );
        let again = reconcile_as_of(&rt, ReconcileMode::Listing, an_hour_later()).unwrap();
        assert!(again.dirs_checked > 0);
        assert_eq!(again.dirs_listed, 0, "nothing changed: {again:?}");
        assert!(again.inserted.is_empty());

        // A file that is no rollout changes the directory: listed once, then trusted again
        // (its new signature is recorded although no row was added).
        let target_dir = threads[0].path.parent().unwrap();
        fs::write(target_dir.join("notes.txt"), b"not a rollout").unwrap();
        let changed = reconcile_as_of(&rt, ReconcileMode::Listing, an_hour_later()).unwrap();
        assert!(
            changed.dirs_listed >= 1 && changed.inserted.is_empty(),
            "{changed:?}"
        );
        let settled = reconcile_as_of(&rt, ReconcileMode::Listing, an_hour_later()).unwrap();
        assert_eq!(
            settled.dirs_listed, 0,
            "the new signature was not kept: {settled:?}"
        );

        // A rollout of another home, restored into a directory this home already has.
        let (other, others) = home(8, 1);
        let added = target_dir.join(others[0].path.file_name().unwrap());
        fs::copy(&others[0].path, &added).unwrap();
        drop(other);
        let after = reconcile_as_of(&rt, ReconcileMode::Listing, an_hour_later()).unwrap();
        assert!(after.dirs_listed >= 1, "{after:?}");
        assert_eq!(after.inserted, vec![others[0].id], "{after:?}");
    }

    /// `PRAGMA data_version` seen from another connection: it moves when any other
    /// connection commits.
    fn data_version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap()
    }

    /// A reconcile that finds nothing new commits nothing, and one that finds a directory
    /// gone records that. Catches a change test that always says "changed" (a write on
    /// every listing) or never notices a removed directory (its record kept for good).
    #[test]
    fn an_unchanged_home_writes_nothing_and_a_removed_directory_is_recorded() {
        let (dir, threads) = home(9, 3);
        let ctx = ProcessContext::plain("reconcile-quiet");
        let rt = try_init(&ctx, &StateDbConfig::new(dir.path(), Timings::short()))
            .unwrap()
            .handle;
        backdate_dirs(&Root::Active.dir(dir.path()));
        reconcile_as_of(&rt, ReconcileMode::Listing, an_hour_later()).unwrap();
        let observer = rt.extra_connection().unwrap();
        let before = data_version(&observer);
        let quiet = reconcile_as_of(&rt, ReconcileMode::Listing, an_hour_later()).unwrap();
        assert_eq!(quiet.dirs_listed, 0, "{quiet:?}");
        assert_eq!(
            data_version(&observer),
            before,
            "an unchanged reconcile wrote"
        );

        let day = threads[0].path.parent().unwrap();
        fs::remove_dir_all(day).unwrap();
        backdate_dirs(&Root::Active.dir(dir.path()));
        let gone = reconcile_as_of(&rt, ReconcileMode::Listing, an_hour_later()).unwrap();
        assert!(gone.inserted.is_empty(), "{gone:?}");
        assert_ne!(
            data_version(&observer),
            before,
            "the removal was not recorded"
        );
        let key = day
            .strip_prefix(dir.path())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let (stored, _) = rt.read("test", load_seen).unwrap().unwrap();
        assert!(!stored.contains_key(&key), "{key} still recorded");
        assert!(stored.values().all(|r| r.sig.is_some()), "{stored:?}");
    }

    /// A directory whose inode changed within the racy window (here: its ctime, set by the
    /// backdating itself, though its mtime is a day old) is not trusted: the next reconcile
    /// lists it again. Catches a racy check that looks at the mtime alone.
    #[test]
    fn a_directory_changed_within_the_racy_window_is_listed_again() {
        use std::os::unix::fs::MetadataExt;
        let (dir, threads) = home(7, 2);
        let ctx = ProcessContext::plain("reconcile-racy");
        let rt = try_init(&ctx, &StateDbConfig::new(dir.path(), Timings::short()))
            .unwrap()
            .handle;
        backdate_dirs(&Root::Active.dir(dir.path()));
        let meta = fs::metadata(threads[0].path.parent().unwrap()).unwrap();
        // One second after the directory's inode changed: inside the window, however long
        // this test took to get here.
        let within = i128::from(meta.ctime()) * 1_000_000_000
            + i128::from(meta.ctime_nsec())
            + 1_000_000_000;
        reconcile_as_of(&rt, ReconcileMode::Listing, within).unwrap();
        let again = reconcile_as_of(&rt, ReconcileMode::Listing, within).unwrap();
        assert!(
            again.dirs_listed > 0,
            "racy directories were trusted: {again:?}"
        );
    }
}
