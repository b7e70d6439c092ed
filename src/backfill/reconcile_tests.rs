//! Tests of the reconcile: the walking path, the watched path, and where one hands over to
//! the other.

use super::*;
use crate::fixture::{generate_home, FixtureOptions};
use crate::process::ProcessContext;
use crate::rollout::layout::Root;
use crate::state_db::{try_init, StateDbConfig};
use crate::timing::Timings;
use std::fs;

/// A listing reconcile that walks every directory (the process's watch forgotten).
fn walking(rt: &StateDbHandle, started_ns: i128) -> Result<ReconcileOutcome, StateError> {
    rt.take_listing_memo();
    reconcile_as_of(rt, ReconcileMode::Listing, started_ns)
}

/// A listing reconcile as the process's next listing runs it.
fn listing(rt: &StateDbHandle) -> ReconcileOutcome {
    reconcile_as_of(rt, ReconcileMode::Listing, an_hour_later()).unwrap()
}

/// A handle's first two listings: the first walks, the second walks and arms the watch.
fn armed(rt: &StateDbHandle) -> ReconcileOutcome {
    let once = listing(rt);
    let again = listing(rt);
    assert!(
        once.dirs_checked > 0 && again.dirs_checked > 0,
        "{once:?} {again:?}"
    );
    again
}

/// The process's one handle over `home`.
fn open(home: &Path, name: &str) -> StateDbHandle {
    try_init(
        &ProcessContext::plain(name),
        &StateDbConfig::new(home, Timings::short()),
    )
    .unwrap()
    .handle
}

/// One second after `dir`'s inode last changed: inside the racy window, however long the
/// test took to get here.
fn inside_racy_window(dir: &Path) -> i128 {
    ctime_ns(dir) + 1_000_000_000
}

/// When `dir`'s inode last changed (ns since the epoch).
fn ctime_ns(dir: &Path) -> i128 {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir).unwrap();
    i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec())
}

/// Two walking reconciles as of `at`; the second's outcome (the first records what it
/// found, the second shows what stays untrusted).
fn walked_twice(rt: &StateDbHandle, at: i128) -> ReconcileOutcome {
    walking(rt, at).unwrap();
    walking(rt, at).unwrap()
}

/// A rollout this home does not have (generated in another home with `seed`), copied
/// into `dir`; its thread id.
fn copy_foreign_rollout(seed: u64, dir: &Path) -> Uuid {
    let (other, others) = home(seed, 1);
    fs::copy(
        &others[0].path,
        dir.join(others[0].path.file_name().unwrap()),
    )
    .unwrap();
    drop(other);
    others[0].id
}

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

/// A home of `threads` rollouts, its handle, and its directories dated a day back.
fn settled_home(
    seed: u64,
    threads: usize,
    name: &str,
) -> (
    tempfile::TempDir,
    Vec<crate::fixture::FixtureThread>,
    StateDbHandle,
) {
    let (dir, threads) = home(seed, threads);
    let rt = open(dir.path(), name);
    backdate_dirs(&Root::Active.dir(dir.path()));
    (dir, threads, rt)
}

/// `path`'s key in the reconcile's records: relative to the home.
fn key_of(home: &Path, path: &Path) -> String {
    path.strip_prefix(home)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
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
    let (_dir, threads, rt) = settled_home(7, 3, "reconcile-test");
    let first = walking(&rt, an_hour_later()).unwrap();
    assert!(
        first.dirs_listed > 0,
        "the first listing reconcile lists: {first:?}"
    );
    let again = walking(&rt, an_hour_later()).unwrap();
    assert!(again.dirs_checked > 0);
    assert_eq!(again.dirs_listed, 0, "nothing changed: {again:?}");
    assert!(again.inserted.is_empty());

    // A file that is no rollout changes the directory: listed once, then trusted again
    // (its new signature is recorded although no row was added).
    let target_dir = threads[0].path.parent().unwrap();
    fs::write(target_dir.join("notes.txt"), b"not a rollout").unwrap();
    let changed = walking(&rt, an_hour_later()).unwrap();
    assert!(
        changed.dirs_listed >= 1 && changed.inserted.is_empty(),
        "{changed:?}"
    );
    let settled = walking(&rt, an_hour_later()).unwrap();
    assert_eq!(
        settled.dirs_listed, 0,
        "the new signature was not kept: {settled:?}"
    );

    // A rollout of another home, restored into a directory this home already has.
    let (other, others) = home(8, 1);
    let added = target_dir.join(others[0].path.file_name().unwrap());
    fs::copy(&others[0].path, &added).unwrap();
    drop(other);
    let after = walking(&rt, an_hour_later()).unwrap();
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
    let (dir, threads, rt) = settled_home(9, 3, "reconcile-quiet");
    walking(&rt, an_hour_later()).unwrap();
    let observer = rt.extra_connection().unwrap();
    let before = data_version(&observer);
    let quiet = walking(&rt, an_hour_later()).unwrap();
    assert_eq!(quiet.dirs_listed, 0, "{quiet:?}");
    assert_eq!(
        data_version(&observer),
        before,
        "an unchanged reconcile wrote"
    );

    let day = threads[0].path.parent().unwrap();
    fs::remove_dir_all(day).unwrap();
    backdate_dirs(&Root::Active.dir(dir.path()));
    let gone = walking(&rt, an_hour_later()).unwrap();
    assert!(gone.inserted.is_empty(), "{gone:?}");
    assert_ne!(
        data_version(&observer),
        before,
        "the removal was not recorded"
    );
    let key = key_of(dir.path(), day);
    let (stored, _) = rt.read("test", load_seen).unwrap().unwrap();
    assert!(!stored.contains_key(&key), "{key} still recorded");
    assert!(stored.values().all(|r| r.sig.is_some()), "{stored:?}");
}

/// A reconcile that indexes rollouts says so in the process's event log, naming them; one
/// that indexes nothing records nothing. Catches a reconcile that indexes silently.
#[test]
fn a_reconcile_that_indexes_rollouts_records_which() {
    let (dir, threads) = home(26, 2);
    let (sink, events) = crate::events::EventSink::memory();
    let ctx = ProcessContext::builder()
        .name("reconcile-events")
        .events(sink)
        .build();
    let rt = try_init(&ctx, &StateDbConfig::new(dir.path(), Timings::short()))
        .unwrap()
        .handle;
    backdate_dirs(&Root::Active.dir(dir.path()));
    let indexed = |events: &std::sync::Mutex<Vec<crate::events::Event>>| -> Vec<serde_json::Value> {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == crate::events::kinds::RECONCILE_INDEXED)
            .map(|e| e.data["threads"].clone())
            .collect()
    };
    walking(&rt, an_hour_later()).unwrap();
    assert!(indexed(&events).is_empty(), "nothing was new");
    let id = copy_foreign_rollout(27, threads[0].path.parent().unwrap());
    let found = walking(&rt, an_hour_later()).unwrap();
    assert_eq!(found.inserted, vec![id], "{found:?}");
    assert_eq!(indexed(&events), vec![serde_json::json!([id.to_string()])]);
}

/// Either of the reconcile's own tables missing (dropped by hand, or by a tool that knows
/// only the other) means no usable records: the next reconcile walks everything, as a
/// first one does, and writes both again. Catches a check that needs both gone.
#[test]
fn a_missing_bookkeeping_table_makes_the_next_reconcile_a_first_one() {
    for table in [SEEN_ROWS_TABLE, SEEN_DIRS_TABLE] {
        let (_dir, _threads, rt) = settled_home(25, 2, "reconcile-half-records");
        walking(&rt, an_hour_later()).unwrap();
        let other = rt.extra_connection().unwrap();
        other.execute_batch(&format!("DROP TABLE {table}")).unwrap();
        let again =
            walking(&rt, an_hour_later()).unwrap_or_else(|e| panic!("without {table}: {e}"));
        assert!(
            again.full && again.dirs_listed > 0,
            "without {table}: {again:?}"
        );
        assert!(
            rt.read("test", load_seen).unwrap().is_some(),
            "{table} not written again"
        );
    }
}

/// A directory whose inode changed within the racy window (here: its ctime, set by the
/// backdating itself, though its mtime is a day old) is not trusted: the next reconcile
/// lists it again. Catches a racy check that looks at the mtime alone.
#[test]
fn a_directory_changed_within_the_racy_window_is_listed_again() {
    let (_dir, threads, rt) = settled_home(7, 2, "reconcile-racy");
    let within = inside_racy_window(threads[0].path.parent().unwrap());
    let again = walked_twice(&rt, within);
    assert!(
        again.dirs_listed > 0,
        "racy directories were trusted: {again:?}"
    );
}

/// Once a handle's second listing has armed its watch, its next listings `stat` nothing and
/// list only the directories the kernel reported: a rollout restored into a known
/// directory and one in a new year's directory are indexed, a quiet home writes
/// nothing. Catches a watch that misses entries (the rollouts never indexed) and one
/// that vouches for nothing (every directory checked again).
#[test]
fn later_listings_list_only_what_the_kernel_reported() {
    let (dir, threads, rt) = settled_home(11, 3, "reconcile-watched");
    armed(&rt);
    let observer = rt.extra_connection().unwrap();
    let before = data_version(&observer);
    let quiet = listing(&rt);
    assert_eq!((quiet.dirs_checked, quiet.dirs_listed), (0, 0), "{quiet:?}");
    assert_eq!(data_version(&observer), before, "a quiet listing wrote");

    let (other, others) = home(12, 2);
    let known_dir = threads[0].path.parent().unwrap();
    let restored = known_dir.join(others[0].path.file_name().unwrap());
    fs::copy(&others[0].path, &restored).unwrap();
    let new_dir = Root::Active.dir(dir.path()).join("2031/05/06");
    fs::create_dir_all(&new_dir).unwrap();
    fs::copy(
        &others[1].path,
        new_dir.join(others[1].path.file_name().unwrap()),
    )
    .unwrap();
    drop(other);
    let found = listing(&rt);
    let mut inserted = found.inserted.clone();
    inserted.sort();
    let mut want = vec![others[0].id, others[1].id];
    want.sort();
    assert_eq!(inserted, want, "{found:?}");
    // The day directory, `sessions` (a new year in it), and the three new ones.
    assert_eq!(found.dirs_listed, 5, "{found:?}");
    assert_eq!(
        found.dirs_checked, 5,
        "it checked more than it listed: {found:?}"
    );
    let (stored, _) = rt.read("test", load_seen).unwrap().unwrap();
    assert!(stored.contains_key("sessions/2031/05/06"), "{stored:?}");
    // The new directories are within the racy window of a real clock, not of this
    // test's an-hour-later one, so they are trusted now and nothing is left to list.
    let settled = listing(&rt);
    assert_eq!(settled.dirs_listed, 0, "{settled:?}");

    // A change that adds no row is still recorded, for the next process's walk.
    let key = key_of(dir.path(), known_dir);
    let record = |rt: &StateDbHandle| {
        let (stored, _) = rt.read("test", load_seen).unwrap().unwrap();
        stored.get(&key).cloned()
    };
    let before = record(&rt);
    fs::write(known_dir.join("notes.txt"), b"not a rollout").unwrap();
    let noted = listing(&rt);
    assert_eq!(
        (noted.dirs_listed, noted.inserted.len()),
        (1, 0),
        "{noted:?}"
    );
    assert_ne!(
        record(&rt),
        before,
        "the directory's new signature was not recorded"
    );

    // So is a file removed, and a change of the directory's own permissions.
    let listed_after = |change: &dyn Fn(), what: &str| {
        let before = record(&rt);
        change();
        let seen = listing(&rt);
        assert!(seen.dirs_listed >= 1, "{what}: {seen:?}");
        assert_ne!(record(&rt), before, "{what}: not recorded");
    };
    listed_after(
        &|| fs::remove_file(known_dir.join("notes.txt")).unwrap(),
        "a removed file",
    );
    listed_after(
        &|| {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(known_dir, fs::Permissions::from_mode(0o700)).unwrap()
        },
        "a permission change",
    );
}

/// A rollout renamed into a watched directory (written elsewhere, then moved in: how
/// a file lands atomically, and how Codex archives) is indexed by the next listing.
/// Catches a watch blind to entries moved in.
#[test]
fn a_rollout_renamed_into_a_watched_directory_is_indexed() {
    let (dir, threads, rt) = settled_home(18, 2, "reconcile-moved-in");
    armed(&rt);
    let (other, others) = home(19, 1);
    let staged = dir.path().join("staged.jsonl");
    fs::copy(&others[0].path, &staged).unwrap();
    drop(other);
    let known_dir = threads[0].path.parent().unwrap();
    fs::rename(&staged, known_dir.join(others[0].path.file_name().unwrap())).unwrap();
    let found = listing(&rt);
    assert_eq!(found.inserted, vec![others[0].id], "{found:?}");
    assert_eq!(found.dirs_listed, 1, "{found:?}");
}

/// A watched directory moved to another name is walked again under its new name, so a
/// rollout added there afterwards is indexed and recorded under the new key. Catches a
/// watch that keeps reporting a moved directory under its old name.
#[test]
fn a_watched_directory_moved_to_a_new_name_is_followed() {
    let (dir, threads, rt) = settled_home(20, 2, "reconcile-moved-dir");
    armed(&rt);
    let old = threads[0].path.parent().unwrap().to_path_buf();
    let new = old.with_file_name("31");
    assert!(!new.exists(), "the fixture already has {}", new.display());
    fs::rename(&old, &new).unwrap();
    listing(&rt);
    let id = copy_foreign_rollout(21, &new);
    let found = listing(&rt);
    assert_eq!(found.inserted, vec![id], "{found:?}");
    let (stored, _) = rt.read("test", load_seen).unwrap().unwrap();
    assert!(stored.contains_key(&key_of(dir.path(), &new)), "{stored:?}");
    assert!(
        !stored.contains_key(&key_of(dir.path(), &old)),
        "{stored:?}"
    );
}

/// Only regular files named as rollouts are indexed by a watched listing, as by a walk: a
/// rollout copied under another name, and a symlink named as a rollout pointing at one
/// outside the home, are listed and left out. Catches a relist that takes any file, or any
/// entry with a rollout's name.
#[test]
fn a_watched_listing_indexes_only_regular_files_named_as_rollouts() {
    let (_dir, threads, rt) = settled_home(22, 2, "reconcile-not-rollouts");
    armed(&rt);
    let (other, others) = home(23, 2);
    let known_dir = threads[0].path.parent().unwrap();
    fs::copy(&others[0].path, known_dir.join("copy-of-a-rollout.jsonl")).unwrap();
    std::os::unix::fs::symlink(
        &others[1].path,
        known_dir.join(others[1].path.file_name().unwrap()),
    )
    .unwrap();
    let found = listing(&rt);
    assert_eq!(found.dirs_listed, 1, "{found:?}");
    assert!(found.inserted.is_empty(), "{found:?}");
    // A walk agrees: neither is a rollout of this home.
    let walked = walking(&rt, an_hour_later()).unwrap();
    assert!(walked.inserted.is_empty(), "{walked:?}");
    drop(other);
}

/// The racy window is exact to the nanosecond, on the mtime and on the ctime: a directory
/// changed one nanosecond less than the window before the walk is listed again, one
/// changed exactly the window before is trusted. Its mtime is set on a half-second, so a
/// signature that loses or mangles the nanoseconds is off by up to a second. Catches that
/// and a window closed one nanosecond late.
#[test]
fn the_racy_window_is_exact_to_the_nanosecond() {
    let (_dir, threads, rt) = settled_home(24, 2, "reconcile-racy-edge");
    let day = threads[0].path.parent().unwrap();
    let changed_ns = an_hour_later() / 1_000_000_000 * 1_000_000_000 + 500_000_000;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(changed_ns as u64);
    fs::File::open(day).unwrap().set_modified(at).unwrap();
    let inside = changed_ns + RACY_WINDOW_NS - 1;
    let again = walked_twice(&rt, inside);
    assert_eq!(again.dirs_listed, 1, "inside the window: {again:?}");
    let outside = changed_ns + RACY_WINDOW_NS;
    let again = walked_twice(&rt, outside);
    assert_eq!(again.dirs_listed, 0, "at the window's end: {again:?}");

    // The same edge on the inode's change time, which only the kernel sets: an old mtime,
    // and the ctime that setting it left. (Directories backdated in the same clock tick
    // share it, so inside the window at least this one is listed.)
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    fs::File::open(day).unwrap().set_modified(day_ago).unwrap();
    let changed_ns = ctime_ns(day);
    let inside = changed_ns + RACY_WINDOW_NS - 1;
    let again = walked_twice(&rt, inside);
    assert!(again.dirs_listed >= 1, "inside the ctime window: {again:?}");
    let outside = changed_ns + RACY_WINDOW_NS;
    let again = walked_twice(&rt, outside);
    assert_eq!(again.dirs_listed, 0, "at the ctime window's end: {again:?}");
}

/// A rollout root created after the watch was armed (the first archive of a home) is
/// walked by the next listing. Catches a watch that ignores the home's own entries.
#[test]
fn a_root_created_after_arming_is_walked() {
    let (dir, _) = home(16, 2);
    let archived = Root::Archived.dir(dir.path());
    let _ = fs::remove_dir_all(&archived);
    let rt = open(dir.path(), "reconcile-new-root");
    armed(&rt);
    fs::create_dir(&archived).unwrap();
    let id = copy_foreign_rollout(17, &archived);
    let found = listing(&rt);
    assert_eq!(found.inserted, vec![id], "{found:?}");
}

/// Rows another connection deletes make the next listing walk and list everything (the
/// rule of the walking reconcile), so their files are indexed again; a removed
/// directory drops the watch and its record. Catches a watch that hides both.
#[test]
fn rows_deleted_elsewhere_or_a_removed_directory_fall_back_to_the_walk() {
    let (dir, threads, rt) = settled_home(13, 3, "reconcile-fallback");
    armed(&rt);
    let other = rt.extra_connection().unwrap();
    other
        .execute(
            "DELETE FROM threads WHERE id = ?1",
            [threads[1].id.to_string()],
        )
        .unwrap();
    let healed = listing(&rt);
    assert!(healed.full && healed.dirs_checked > 0, "{healed:?}");
    assert_eq!(healed.inserted, vec![threads[1].id], "{healed:?}");
    assert_eq!(
        listing(&rt).dirs_checked,
        0,
        "the walk did not re-arm the watch"
    );

    let day = threads[2].path.parent().unwrap();
    fs::remove_dir_all(day).unwrap();
    let gone = listing(&rt);
    assert!(gone.dirs_checked > 0, "{gone:?}");
    let key = key_of(dir.path(), day);
    let (stored, _) = rt.read("test", load_seen).unwrap().unwrap();
    assert!(!stored.contains_key(&key), "{key} still recorded");
}

/// A new process's first listing walks; when rows were deleted since the walk it
/// recorded (another process pruned them), every directory is listed, not only the
/// changed ones, so the deleted rows' files are indexed again. Catches a walk that
/// trusts its records over a shrunken index.
#[test]
fn a_new_handle_after_rows_were_deleted_lists_everything() {
    let (_dir, threads, rt) = settled_home(17, 3, "reconcile-rows-deleted");
    walking(&rt, an_hour_later()).unwrap();
    let trusted = walking(&rt, an_hour_later()).unwrap();
    assert!(
        !trusted.full && trusted.dirs_listed == 0,
        "an unchanged home lists nothing: {trusted:?}"
    );
    rt.extra_connection()
        .unwrap()
        .execute(
            "DELETE FROM threads WHERE id = ?1",
            [threads[0].id.to_string()],
        )
        .unwrap();
    let healed = walking(&rt, an_hour_later()).unwrap();
    assert!(healed.full && healed.dirs_listed > 0, "{healed:?}");
    assert_eq!(healed.inserted, vec![threads[0].id], "{healed:?}");
}

/// Through the watch too, a directory changed within the racy window is listed again
/// on every listing until its change is old enough to trust. Catches a watch that
/// trusts a directory whose newest file may not have its head written yet.
#[test]
fn a_racy_directory_is_listed_again_through_the_watch() {
    let (_dir, threads, rt) = settled_home(14, 2, "reconcile-watched-racy");
    let within = inside_racy_window(threads[0].path.parent().unwrap());
    for _ in 0..2 {
        reconcile_as_of(&rt, ReconcileMode::Listing, within).unwrap();
    }
    let again = reconcile_as_of(&rt, ReconcileMode::Listing, within).unwrap();
    assert!(again.dirs_listed > 0, "{again:?}");
    let trusted = listing(&rt);
    assert!(
        trusted.dirs_listed > 0,
        "the racy ones are listed once more: {trusted:?}"
    );
    assert_eq!(listing(&rt).dirs_listed, 0, "then trusted");
}

/// A directory whose mtime is ahead of the clock (restored from a machine whose clock ran
/// ahead) is not trusted until the clock has passed it, although its inode changed long
/// before. Catches a racy check that looks at the ctime alone.
#[test]
fn a_directory_dated_ahead_of_the_clock_is_listed_again() {
    let (_dir, threads, rt) = settled_home(15, 2, "reconcile-future");
    let later = an_hour_later();
    let day = threads[0].path.parent().unwrap();
    let at_later = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(later as u64);
    fs::File::open(day).unwrap().set_modified(at_later).unwrap();
    let again = walked_twice(&rt, later);
    assert_eq!(
        again.dirs_listed, 1,
        "only the future-dated directory: {again:?}"
    );
}
