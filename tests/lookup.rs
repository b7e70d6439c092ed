//! Thread path lookup: the reference's own cases, plus compare-and-swap repair, a locked
//! DB, idempotent repair and the "never another thread's file" guarantee.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{cfg, cfg_with, ctx, home_with};
use rusqlite::Connection;
use statedb_harness::events::EventSink;
use statedb_harness::failpoints::{DeathMode, FailpointSet};
use statedb_harness::lookup::{
    find_thread_path, find_thread_path_in, FallbackReason, LookupSource,
};
use statedb_harness::process::ProcessContext;
use statedb_harness::rollout::writer::{write_rollout, RolloutSpec};
use statedb_harness::state::{StateDbHandle, STATE_DB_FILENAME};
use statedb_harness::state_db::try_init;
use statedb_harness::thread::Scope;

fn indexed(
    active: usize,
    archived: usize,
) -> (
    tempfile::TempDir,
    Vec<statedb_harness::fixture::FixtureThread>,
    StateDbHandle,
) {
    let (home, threads) = home_with(active, archived);
    let handle = try_init(&ctx("test"), &cfg(home.path())).unwrap().handle;
    (home, threads, handle)
}

fn set_path(h: &StateDbHandle, id: uuid::Uuid, path: &std::path::Path) {
    h.read("test", |c| {
        c.execute(
            "UPDATE threads SET rollout_path = ?1 WHERE id = ?2",
            (path.to_string_lossy().to_string(), id.to_string()),
        )
    })
    .unwrap();
}

#[test]
fn falls_back_when_the_db_path_is_stale_and_repairs_it() {
    let (home, threads, h) = indexed(3, 0);
    let t = &threads[0];
    let gone = home
        .path()
        .join("sessions/2099/01/01/rollout-2099-01-01T00-00-00-")
        .join(t.id.to_string());
    set_path(&h, t.id, &gone);
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active);
    assert_eq!(r.path.as_deref(), Some(t.path.as_path()));
    assert_eq!(r.source, Some(LookupSource::Filesystem));
    assert_eq!(r.fallback_reason, Some(FallbackReason::StalePath));
    assert!(r.repaired);
    assert_eq!(h.get_thread(t.id).unwrap().unwrap().rollout_path, t.path);
}

#[test]
fn falls_back_when_the_db_path_points_to_another_thread_and_repairs_it() {
    let (home, threads, h) = indexed(3, 0);
    let (t, other) = (&threads[0], &threads[1]);
    set_path(&h, t.id, &other.path);
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active);
    assert_eq!(r.path.as_deref(), Some(t.path.as_path()));
    assert_eq!(r.fallback_reason, Some(FallbackReason::Mismatch));
    assert!(r.repaired);
    assert_eq!(h.get_thread(t.id).unwrap().unwrap().rollout_path, t.path);
}

#[test]
fn repairs_a_missing_row_after_filesystem_fallback() {
    let (home, threads, h) = indexed(2, 0);
    let t = &threads[0];
    h.delete_thread(t.id).unwrap();
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active);
    assert_eq!(r.fallback_reason, Some(FallbackReason::MissingRow));
    assert!(r.repaired);
    let row = h
        .get_thread(t.id)
        .unwrap()
        .expect("row inserted from the file");
    assert_eq!(row.rollout_path, t.path);
    assert!(!row.is_archived());
}

#[test]
fn accepts_an_existing_db_path_without_a_canonical_file_name_as_a_last_resort() {
    let (home, threads, h) = indexed(1, 0);
    let t = &threads[0];
    let custom = home
        .path()
        .join("sessions/2025/01/03/custom-rollout-name.jsonl");
    std::fs::create_dir_all(custom.parent().unwrap()).unwrap();
    std::fs::write(&custom, b"").unwrap();
    std::fs::remove_file(&t.path).unwrap();
    set_path(&h, t.id, &custom);
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active);
    assert_eq!(r.path.as_deref(), Some(custom.as_path()));
    assert_eq!(r.source, Some(LookupSource::UnverifiedDb));
    assert_eq!(r.fallback_reason, Some(FallbackReason::UnverifiedPath));
    assert!(!r.repaired);
}

#[test]
fn prefers_the_verified_db_path_over_a_filesystem_match() {
    let (home, threads, h) = indexed(1, 0);
    let t = &threads[0];
    let mut spec = RolloutSpec::new(
        t.id,
        chrono::DateTime::parse_from_rfc3339("2030-12-30T00:00:00Z")
            .unwrap()
            .into(),
    );
    spec.user_messages = vec!["later copy".into()];
    let later = write_rollout(home.path(), &spec).unwrap();
    set_path(&h, t.id, &later);
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active);
    assert_eq!(r.path.as_deref(), Some(later.as_path()));
    assert_eq!(r.source, Some(LookupSource::Db));
    assert!(!r.repaired);
}

#[test]
fn gitignore_rules_never_hide_rollouts() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join(".gitignore"), ".codex/**\n").unwrap();
    let home = outer.path().join(".codex");
    std::fs::create_dir_all(&home).unwrap();
    let threads = statedb_harness::fixture::generate_home(
        &home,
        &statedb_harness::fixture::FixtureOptions {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    std::fs::write(home.join("sessions/.gitignore"), "*.jsonl\n").unwrap();
    for t in &threads {
        let r = find_thread_path(None, &home, &t.id.to_string(), Scope::Any);
        assert_eq!(r.path.as_deref(), Some(t.path.as_path()));
        assert_eq!(r.fallback_reason, Some(FallbackReason::DbUnavailable));
    }
}

#[test]
fn archived_lookups_search_the_archive_only() {
    let (home, threads, h) = indexed(1, 1);
    let archived = threads.iter().find(|t| t.root.is_archived()).unwrap();
    let r = find_thread_path(
        Some(&h),
        home.path(),
        &archived.id.to_string(),
        Scope::Archived,
    );
    assert_eq!(r.source, Some(LookupSource::Db));
    assert_eq!(r.path.as_deref(), Some(archived.path.as_path()));
    let r = find_thread_path(
        Some(&h),
        home.path(),
        &archived.id.to_string(),
        Scope::Active,
    );
    assert_eq!(
        r.path, None,
        "an archived thread is not found in the active scope"
    );
    let r = find_thread_path(Some(&h), home.path(), &archived.id.to_string(), Scope::Any);
    assert_eq!(r.path.as_deref(), Some(archived.path.as_path()));
}

#[test]
fn a_second_lookup_after_a_repair_is_a_db_hit_with_no_write() {
    let (home, threads, h) = indexed(2, 0);
    let (t, other) = (&threads[0], &threads[1]);
    set_path(&h, t.id, &other.path);
    assert!(find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active).repaired);
    let changes_before: i64 = h
        .read("t", |c| {
            c.query_row("SELECT total_changes()", [], |r| r.get(0))
        })
        .unwrap();
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active);
    let changes_after: i64 = h
        .read("t", |c| {
            c.query_row("SELECT total_changes()", [], |r| r.get(0))
        })
        .unwrap();
    assert_eq!(r.source, Some(LookupSource::Db));
    assert!(!r.repaired);
    assert_eq!(
        changes_before, changes_after,
        "a verified hit writes nothing"
    );
}

#[test]
fn a_repair_never_overwrites_a_row_changed_concurrently() {
    let (home, threads) = home_with(3, 0);
    let release = tempfile::tempdir().unwrap();
    let (sink, events) = EventSink::memory();
    let lookup_ctx = ProcessContext::builder()
        .name("looker")
        .events(sink)
        .failpoints(FailpointSet::new(
            vec!["lookup.after_db_read=pause(20s)".parse().unwrap()],
            Some(release.path().to_path_buf()),
            DeathMode::Simulated,
        ))
        .build();
    let c = cfg(home.path());
    let h = try_init(&lookup_ctx, &c).unwrap().handle;
    let (t, other) = (threads[0].clone(), threads[1].clone());
    set_path(&h, t.id, &other.path);
    let home_path: PathBuf = home.path().to_path_buf();
    let looker = {
        let h = h.clone();
        let ctx = lookup_ctx.clone();
        std::thread::spawn(move || {
            find_thread_path_in(&ctx, Some(&h), &home_path, &t.id.to_string(), Scope::Active)
        })
    };
    // Wait until the lookup has read the row, then change it from another connection.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.kind == "failpoint_fired")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "lookup never reached the failpoint"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let concurrent = home.path().join("sessions/elsewhere/rollout-moved.jsonl");
    let writer = Connection::open(home.path().join(STATE_DB_FILENAME)).unwrap();
    writer
        .execute(
            "UPDATE threads SET rollout_path = ?1 WHERE id = ?2",
            (concurrent.to_string_lossy().to_string(), t.id.to_string()),
        )
        .unwrap();
    std::fs::write(
        FailpointSet::release_file(release.path(), "looker", "lookup.after_db_read"),
        b"",
    )
    .unwrap();
    let r = looker.join().unwrap();
    assert_eq!(
        r.path.as_deref(),
        Some(threads[0].path.as_path()),
        "the right file is still returned"
    );
    assert!(!r.repaired);
    assert!(r.repair_skipped.unwrap().contains("changed concurrently"));
    assert_eq!(
        h.get_thread(t.id).unwrap().unwrap().rollout_path,
        concurrent,
        "concurrent write kept"
    );
}

#[test]
fn a_lookup_with_the_db_write_locked_still_returns_the_right_path() {
    let (home, threads) = home_with(2, 0);
    let c = cfg_with(home.path(), |t| t.busy_timeout = Duration::from_millis(150));
    let h = try_init(&ctx("p"), &c).unwrap().handle;
    let (t, other) = (&threads[0], &threads[1]);
    set_path(&h, t.id, &other.path);
    let blocker = Connection::open(home.path().join(STATE_DB_FILENAME)).unwrap();
    blocker
        .execute_batch("BEGIN IMMEDIATE; UPDATE threads SET title = title;")
        .unwrap();
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active);
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(r.path.as_deref(), Some(t.path.as_path()));
    assert_eq!(r.fallback_reason, Some(FallbackReason::Mismatch));
    assert!(!r.repaired);
    assert!(r.repair_skipped.unwrap().contains("busy"));
}

#[test]
fn a_non_uuid_id_is_not_found_and_writes_nothing() {
    let (home, _, h) = indexed(1, 0);
    let before = h.thread_count().unwrap();
    let r = find_thread_path(Some(&h), home.path(), "not-a-uuid", Scope::Any);
    assert_eq!(r.path, None);
    assert_eq!(r.fallback_reason, None);
    assert_eq!(h.thread_count().unwrap(), before);
}

#[test]
fn never_returns_a_file_whose_head_names_another_thread() {
    let (home, threads, h) = indexed(2, 0);
    let (t, other) = (&threads[0], &threads[1]);
    set_path(&h, t.id, &other.path);
    std::fs::remove_file(&t.path).unwrap();
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active);
    assert_eq!(r.path, None, "the foreign file must not be returned");
    assert_eq!(r.fallback_reason, Some(FallbackReason::Mismatch));
    assert_eq!(
        h.get_thread(t.id).unwrap().unwrap().rollout_path,
        other.path,
        "no row is deleted"
    );
}

#[test]
fn a_row_with_the_wrong_archived_flag_is_repaired_to_follow_the_file() {
    let (home, threads, h) = indexed(1, 0);
    let t = &threads[0];
    h.read("t", |c| {
        c.execute(
            "UPDATE threads SET archived = 1, archived_at = 1 WHERE id = ?1",
            [t.id.to_string()],
        )
    })
    .unwrap();
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active);
    assert_eq!(r.fallback_reason, Some(FallbackReason::MissingRow));
    assert!(r.repaired);
    assert!(!h.get_thread(t.id).unwrap().unwrap().is_archived());
}

#[test]
fn a_verified_file_under_the_other_root_does_not_answer_for_the_rows_scope() {
    let (home, threads, h) = indexed(1, 0);
    let t = &threads[0];
    // Archived on disk, and the row's path follows, but its flag still says active.
    let archived = home
        .path()
        .join("archived_sessions")
        .join(t.path.file_name().unwrap());
    std::fs::create_dir_all(archived.parent().unwrap()).unwrap();
    std::fs::rename(&t.path, &archived).unwrap();
    set_path(&h, t.id, &archived);
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Active);
    assert_eq!(
        r.path, None,
        "an active lookup must not answer with an archived file"
    );
    assert_eq!(r.fallback_reason, Some(FallbackReason::StalePath));
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Archived);
    assert_eq!(r.path.as_deref(), Some(archived.as_path()));
    assert_eq!(r.fallback_reason, Some(FallbackReason::MissingRow));
    assert!(
        r.repaired,
        "the flag follows the root the file was found in"
    );
    assert!(h.get_thread(t.id).unwrap().unwrap().is_archived());
    let r = find_thread_path(Some(&h), home.path(), &t.id.to_string(), Scope::Archived);
    assert_eq!(r.source, Some(LookupSource::Db));
}
