//! Consumers: the thread store (the reference's read_thread fallback cases, archive and
//! unarchive), thread manager sessions, name lookup, resume-last, the DB-only consumers,
//! the behaviour of each with no handle, and the seeded lazy-open bug.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::{cfg, count_events, ctx, ctx_with_variant, exec_sql, home_with, indexed_in};
use statedb_harness::consumers::{
    find_latest_thread, find_thread_by_name, reset_memory, update_thread_git_metadata,
    GitMetadataPatch, LocalThreadStore, ReadThreadRequest, ThreadManager, ThreadReadSource,
    ThreadStoreError,
};
use statedb_harness::events::kinds;
use statedb_harness::fixture::{FixtureThread, SESSION_INDEX_FILE};
use statedb_harness::lookup::{FallbackReason, ListRequest, LookupSource};
use statedb_harness::process::ProcessContext;
use statedb_harness::rollout::metadata::extract_metadata;
use statedb_harness::rollout::writer::{write_rollout, RolloutSpec};
use statedb_harness::state::{StateDbHandle, STATE_DB_FILENAME};
use statedb_harness::state_db::try_init;
use statedb_harness::variant::Variant;
use uuid::Uuid;

const DEFAULT_PROVIDER: &str = "test-default-provider";

fn read_all(id: Uuid) -> ReadThreadRequest {
    ReadThreadRequest {
        thread_id: id,
        include_archived: true,
        include_history: true,
    }
}

fn store(
    home: &Path,
    handle: Option<StateDbHandle>,
    ctx: &Arc<ProcessContext>,
) -> LocalThreadStore {
    LocalThreadStore::new(home, DEFAULT_PROVIDER, handle).with_process(ctx.clone())
}

/// A rollout like the reference test's: created 2025-01-03 12:00Z, one user message
/// "Hello from user", no provider in its session_meta.
fn hello_spec(id: Uuid) -> RolloutSpec {
    let created: DateTime<Utc> = DateTime::parse_from_rfc3339("2025-01-03T12:00:00Z")
        .unwrap()
        .into();
    let mut spec = RolloutSpec::new(id, created);
    spec.model_provider = String::new();
    spec.user_messages = vec!["Hello from user".to_string()];
    spec
}

fn set_wrong_row(h: &StateDbHandle, id: Uuid, path: &Path) {
    let changed = exec_sql(
        h,
        "UPDATE threads SET rollout_path = ?1, model_provider = 'wrong-sqlite-provider',
            first_user_message = 'wrong sqlite preview', title = 'wrong sqlite preview'
         WHERE id = ?2",
        (path.to_string_lossy().to_string(), id.to_string()),
    );
    assert_eq!(changed, 1);
}

fn assert_read_from_home_rollout(
    store: &LocalThreadStore,
    id: Uuid,
    home_file: &Path,
    spec: &RolloutSpec,
) {
    let t = store.read_thread(read_all(id)).unwrap();
    assert_eq!(t.thread_id, id);
    assert_eq!(t.rollout_path, home_file);
    assert_eq!(
        t.preview, "Hello from user",
        "preview comes from the rollout"
    );
    assert_eq!(t.model_provider, DEFAULT_PROVIDER);
    assert_eq!(t.read_from, ThreadReadSource::Rollout);
    assert!(!t.archived);
    let history = t.history.expect("history requested");
    assert_eq!(history.thread_id, id);
    assert_eq!(history.items.len(), spec.line_count());
}

#[test]
fn read_thread_falls_back_when_sqlite_path_points_to_another_thread() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let (id, other) = (Uuid::from_u128(221), Uuid::from_u128(222));
    let spec = hello_spec(id);
    let home_file = write_rollout(home.path(), &spec).unwrap();
    let other_file = write_rollout(elsewhere.path(), &hello_spec(other)).unwrap();
    let ctx = ctx("store");
    let h = try_init(&ctx, &cfg(home.path())).unwrap().handle;
    set_wrong_row(&h, id, &other_file);

    let store = store(home.path(), Some(h.clone()), &ctx);
    assert_read_from_home_rollout(&store, id, &home_file, &spec);
    assert_eq!(
        h.get_thread(id).unwrap().unwrap().rollout_path,
        home_file,
        "lookup read-repaired the row"
    );
    assert!(other_file.is_file(), "the other thread's file is untouched");
}

#[test]
fn read_thread_falls_back_when_sqlite_path_is_stale() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let id = Uuid::from_u128(220);
    let spec = hello_spec(id);
    let home_file = write_rollout(home.path(), &spec).unwrap();
    let missing = elsewhere
        .path()
        .join(format!("rollout-2025-01-03T12-00-00-{id}.jsonl"));
    let ctx = ctx("store");
    let h = try_init(&ctx, &cfg(home.path())).unwrap().handle;
    set_wrong_row(&h, id, &missing);

    let store = store(home.path(), Some(h.clone()), &ctx);
    assert_read_from_home_rollout(&store, id, &home_file, &spec);
    assert_eq!(h.get_thread(id).unwrap().unwrap().rollout_path, home_file);
}

#[test]
fn read_thread_uses_a_verified_sqlite_row_and_the_legacy_index_name() {
    let ctx = ctx("store");
    let (home, threads, h) = indexed_in(&ctx, 2, 0);
    let t = &threads[0];
    let store = store(home.path(), Some(h), &ctx);
    let read = store.read_thread(read_all(t.id)).unwrap();
    assert_eq!(read.read_from, ThreadReadSource::Sqlite);
    assert_eq!(read.rollout_path, t.path);
    assert_eq!(read.name.as_deref(), Some(t.name.as_str()));
    let m = extract_metadata(&t.path, "openai").unwrap().metadata;
    assert_eq!(read.preview, m.first_user_message);
    assert_eq!(read.history.unwrap().thread_id, t.id);
}

#[test]
fn read_thread_without_history_returns_the_sqlite_summary_of_a_missing_rollout() {
    let ctx = ctx("store");
    let (home, threads, h) = indexed_in(&ctx, 1, 0);
    let t = &threads[0];
    let preview = extract_metadata(&t.path, "openai")
        .unwrap()
        .metadata
        .first_user_message;
    std::fs::remove_file(&t.path).unwrap();
    let store = store(home.path(), Some(h), &ctx);
    let read = store
        .read_thread(ReadThreadRequest {
            thread_id: t.id,
            include_archived: false,
            include_history: false,
        })
        .unwrap();
    assert_eq!(read.read_from, ThreadReadSource::Sqlite);
    assert_eq!(read.preview, preview);
    assert!(read.rollout_missing, "the missing rollout is visible");
    // With history the row cannot be used and nothing else has the thread.
    let err = store.read_thread(read_all(t.id)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no rollout found for thread id {}", t.id)
    );
}

#[test]
fn read_thread_active_only_does_not_return_an_archived_thread() {
    let ctx = ctx("store");
    let (home, threads, h) = indexed_in(&ctx, 1, 1);
    let archived = threads.iter().find(|t| t.root.is_archived()).unwrap();
    for handle in [Some(h), None] {
        let store = store(home.path(), handle, &ctx);
        let err = store
            .read_thread(ReadThreadRequest {
                thread_id: archived.id,
                include_archived: false,
                include_history: true,
            })
            .unwrap_err();
        assert!(matches!(err, ThreadStoreError::InvalidRequest(_)));
        assert_eq!(
            err.to_string(),
            format!("no rollout found for thread id {}", archived.id)
        );
        let read = store.read_thread(read_all(archived.id)).unwrap();
        assert!(read.archived);
        assert_eq!(read.rollout_path, archived.path);
    }
}

#[test]
fn store_list_rejects_an_invalid_cursor_as_an_invalid_request() {
    let (home, _) = home_with(1, 0);
    let store = store(home.path(), None, &ctx("store"));
    let err = store
        .list_threads(&ListRequest {
            cursor: Some("yesterday".into()),
            ..ListRequest::default()
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid cursor: yesterday");
}

fn archived_name(home: &Path, t: &FixtureThread) -> PathBuf {
    home.join("archived_sessions")
        .join(t.path.file_name().unwrap())
}

#[test]
fn archive_then_unarchive_moves_the_file_and_updates_the_row() {
    let ctx = ctx("store");
    let (home, threads, h) = indexed_in(&ctx, 3, 0);
    let t = &threads[1];
    let bytes = std::fs::read(&t.path).unwrap();
    let store = store(home.path(), Some(h.clone()), &ctx);

    let archived = store.archive_thread(t.id).unwrap();
    let target = archived_name(home.path(), t);
    assert_eq!(archived.from, t.path);
    assert_eq!(archived.to, target);
    assert!(archived.row_updated, "{:?}", archived.row_error);
    assert!(!t.path.exists());
    assert_eq!(std::fs::read(&target).unwrap(), bytes, "contents unchanged");
    let row = h.get_thread(t.id).unwrap().unwrap();
    assert_eq!(row.rollout_path, target);
    assert!(row.is_archived());
    let active_only = ReadThreadRequest {
        thread_id: t.id,
        include_archived: false,
        include_history: false,
    };
    assert!(store.read_thread(active_only).is_err());

    let restored = store.unarchive_thread(t.id).unwrap();
    assert_eq!(restored.to, t.path, "back into its dated directory");
    assert!(restored.row_updated);
    assert!(!target.exists());
    assert_eq!(std::fs::read(&t.path).unwrap(), bytes, "contents unchanged");
    let row = h.get_thread(t.id).unwrap().unwrap();
    assert_eq!(row.rollout_path, t.path);
    assert!(!row.is_archived());
    assert_eq!(
        store.read_thread(active_only).unwrap().read_from,
        ThreadReadSource::Sqlite
    );
}

#[test]
fn archive_without_a_handle_moves_only_the_file() {
    let indexer = ctx("indexer");
    let (home, threads, h) = indexed_in(&indexer, 2, 0);
    let t = &threads[0];
    let bytes = std::fs::read(&t.path).unwrap();
    let store = store(home.path(), None, &ctx("no-db"));
    let outcome = store.archive_thread(t.id).unwrap();
    assert!(!outcome.row_updated);
    assert_eq!(outcome.row_error, None);
    assert_eq!(std::fs::read(&outcome.to).unwrap(), bytes);
    assert!(!t.path.exists());
    let row = h.get_thread(t.id).unwrap().unwrap();
    assert_eq!(row.rollout_path, t.path, "the row is not touched");
    assert!(!row.is_archived());
}

#[test]
fn archive_refuses_a_thread_that_is_not_active_and_never_overwrites() {
    let ctx = ctx("store");
    let (home, threads, h) = indexed_in(&ctx, 1, 1);
    let store = store(home.path(), Some(h), &ctx);
    let archived = threads.iter().find(|t| t.root.is_archived()).unwrap();
    let err = store.archive_thread(archived.id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no rollout found for thread id {}", archived.id)
    );
    let active = &threads[0];
    let occupied = archived_name(home.path(), active);
    std::fs::write(&occupied, b"someone else's file").unwrap();
    let err = store.archive_thread(active.id).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(active.path.is_file(), "nothing moved");
    assert_eq!(std::fs::read(&occupied).unwrap(), b"someone else's file");
}

#[test]
fn sessions_read_agent_identity_from_the_state_db_only_when_given_one() {
    let ctx = ctx("manager");
    let (home, threads, h) = indexed_in(&ctx, 2, 0);
    let t = &threads[0];
    exec_sql(
        &h,
        "UPDATE threads SET agent_nickname = 'scout', agent_role = 'explorer' WHERE id = ?1",
        [t.id.to_string()],
    );
    let with_db = ThreadManager::new(Arc::new(store(home.path(), Some(h.clone()), &ctx)), Some(h));
    let session = with_db.start_session(t.id);
    assert!(session.state_db().is_some());
    assert_eq!(session.agent_identity().nickname.as_deref(), Some("scout"));
    assert_eq!(session.agent_identity().role.as_deref(), Some("explorer"));
    assert_eq!(session.resume().unwrap().thread_id, t.id);

    let without = ThreadManager::new(Arc::new(store(home.path(), None, &ctx)), None);
    let session = without.start_session(t.id);
    assert_eq!(session.agent_identity().nickname, None);
    assert_eq!(session.agent_identity().role, None);
    let resumed = session.resume().unwrap();
    assert_eq!(resumed.read_from, ThreadReadSource::Rollout);
    assert_eq!(resumed.rollout_path, t.path);
}

#[test]
fn a_session_never_resumes_another_threads_rollout() {
    let ctx = ctx("manager");
    let (home, threads, h) = indexed_in(&ctx, 2, 0);
    let (t, other) = (&threads[0], &threads[1]);
    exec_sql(
        &h,
        "UPDATE threads SET rollout_path = ?1 WHERE id = ?2",
        (other.path.to_string_lossy().to_string(), t.id.to_string()),
    );
    std::fs::remove_file(&t.path).unwrap();
    let manager = ThreadManager::new(Arc::new(store(home.path(), Some(h.clone()), &ctx)), Some(h));
    let err = manager.start_session(t.id).resume().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no rollout found for thread id {}", t.id)
    );
}

fn append_index(home: &Path, id: Uuid, name: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(home.join(SESSION_INDEX_FILE))
        .unwrap();
    writeln!(
        f,
        r#"{{"id":"{id}","thread_name":"{name}","updated_at":"2026-02-01T00:00:00.000Z"}}"#
    )
    .unwrap();
}

#[test]
fn name_lookup_takes_the_newest_entry_that_resolves() {
    let ctx = ctx("names");
    let (home, threads, h) = indexed_in(&ctx, 3, 0);
    let (t0, t1) = (&threads[0], &threads[1]);
    let found = find_thread_by_name(home.path(), &t0.name, Some(&h), &ctx)
        .unwrap()
        .unwrap();
    assert_eq!((found.thread_id, &found.path), (t0.id, &t0.path));
    assert_eq!(found.lookup.source, Some(LookupSource::Db));

    // t1 takes the same name later: the newest entry wins.
    append_index(home.path(), t1.id, &t0.name);
    let found = find_thread_by_name(home.path(), &t0.name, Some(&h), &ctx)
        .unwrap()
        .unwrap();
    assert_eq!(found.thread_id, t1.id);

    // ...unless its rollout is gone: the next candidate is used.
    std::fs::remove_file(&t1.path).unwrap();
    let found = find_thread_by_name(home.path(), &t0.name, Some(&h), &ctx)
        .unwrap()
        .unwrap();
    assert_eq!(found.thread_id, t0.id);
}

#[test]
fn name_lookup_follows_renames_and_ignores_blank_names_and_missing_indexes() {
    let ctx = ctx("names");
    let (home, threads) = home_with(2, 0);
    let t0 = &threads[0];
    append_index(home.path(), t0.id, "renamed");
    assert!(find_thread_by_name(home.path(), &t0.name, None, &ctx)
        .unwrap()
        .is_none());
    let found = find_thread_by_name(home.path(), " renamed ", None, &ctx)
        .unwrap()
        .unwrap();
    assert_eq!(found.thread_id, t0.id);
    assert!(find_thread_by_name(home.path(), "  ", None, &ctx)
        .unwrap()
        .is_none());
    std::fs::remove_file(home.path().join(SESSION_INDEX_FILE)).unwrap();
    assert!(find_thread_by_name(home.path(), "renamed", None, &ctx)
        .unwrap()
        .is_none());
}

#[test]
fn resume_last_takes_the_newest_row_and_skips_stale_ones_without_deleting_them() {
    let ctx = ctx("resume");
    let (home, threads, h) = indexed_in(&ctx, 4, 1);
    assert_eq!(
        find_latest_thread(home.path(), Some(&h), None),
        (Some(threads[0].path.clone()), None)
    );
    std::fs::remove_file(&threads[0].path).unwrap();
    assert_eq!(
        find_latest_thread(home.path(), Some(&h), None),
        (Some(threads[1].path.clone()), None)
    );
    assert!(h.get_thread(threads[0].id).unwrap().is_some(), "row kept");
}

#[test]
fn resume_last_filters_by_cwd() {
    let ctx = ctx("resume");
    let (home, threads, h) = indexed_in(&ctx, 6, 0);
    let cwd_of = |t: &FixtureThread| extract_metadata(&t.path, "openai").unwrap().metadata.cwd;
    let wanted = cwd_of(&threads[5]);
    let expected = threads.iter().find(|t| cwd_of(t) == wanted).unwrap();
    assert_eq!(
        find_latest_thread(home.path(), Some(&h), Some(&wanted)),
        (Some(expected.path.clone()), None)
    );
    assert_eq!(
        find_latest_thread(home.path(), None, Some(&format!("{wanted}/"))),
        (
            Some(expected.path.clone()),
            Some(FallbackReason::DbUnavailable)
        )
    );
    assert_eq!(
        find_latest_thread(home.path(), Some(&h), Some("/nowhere")),
        (None, Some(FallbackReason::MissingRow))
    );
}

#[test]
fn resume_last_falls_back_to_files_with_missing_row_or_db_error() {
    let ctx = ctx("resume");
    let (home, threads, h) = indexed_in(&ctx, 3, 0);
    exec_sql(&h, "DELETE FROM threads", []);
    assert_eq!(
        find_latest_thread(home.path(), Some(&h), None),
        (
            Some(threads[0].path.clone()),
            Some(FallbackReason::MissingRow)
        )
    );
    exec_sql(&h, "DROP TABLE threads", []);
    assert_eq!(
        find_latest_thread(home.path(), Some(&h), None),
        (Some(threads[0].path.clone()), Some(FallbackReason::DbError))
    );
}

#[test]
fn memory_reset_enables_memory_on_every_row() {
    let ctx = ctx("memory");
    let (_home, _threads, h) = indexed_in(&ctx, 4, 1);
    exec_sql(&h, "UPDATE threads SET memory_mode = 'disabled'", []);
    assert_eq!(reset_memory(Some(&h)).unwrap(), 5);
    let modes: Vec<Option<String>> = h
        .all_threads()
        .unwrap()
        .into_iter()
        .map(|t| t.memory_mode)
        .collect();
    assert_eq!(modes, vec![Some("enabled".to_string()); 5]);
}

#[test]
fn git_metadata_patch_updates_only_the_given_fields() {
    let ctx = ctx("git");
    let (_home, threads, h) = indexed_in(&ctx, 1, 0);
    let t = &threads[0];
    exec_sql(
        &h,
        "UPDATE threads SET git_branch = 'main', git_sha = NULL WHERE id = ?1",
        [t.id.to_string()],
    );
    let patch = GitMetadataPatch {
        sha: Some("abc123".into()),
        ..GitMetadataPatch::default()
    };
    assert!(update_thread_git_metadata(Some(&h), t.id, &patch).unwrap());
    let row = h.get_thread(t.id).unwrap().unwrap();
    assert_eq!(row.git_sha.as_deref(), Some("abc123"));
    assert_eq!(row.git_branch.as_deref(), Some("main"));
    assert!(!update_thread_git_metadata(Some(&h), Uuid::from_u128(1), &patch).unwrap());
}

/// Reference §4.3, column "With None": every consumer works from the files or says the
/// DB is unavailable, and none of them creates a DB.
#[test]
fn with_no_handle_every_consumer_keeps_its_filesystem_or_error_behaviour() {
    let (home, threads) = home_with(3, 1);
    let ctx = ctx("no-db");
    let t = &threads[0];
    let store = Arc::new(store(home.path(), None, &ctx));
    assert!(store.state_db().is_none());

    let read = store.read_thread(read_all(t.id)).unwrap();
    assert_eq!(read.read_from, ThreadReadSource::Rollout);
    assert_eq!(read.rollout_path, t.path);
    assert_eq!(read.name.as_deref(), Some(t.name.as_str()));

    let page = store
        .list_threads(&ListRequest {
            page_size: 10,
            ..ListRequest::default()
        })
        .unwrap();
    let listed: Vec<Uuid> = page.items.iter().map(|i| i.thread_id).collect();
    let active: Vec<Uuid> = threads
        .iter()
        .filter(|t| !t.root.is_archived())
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, active);

    let manager = ThreadManager::new(store.clone(), None);
    let session = manager.start_session(t.id);
    assert!(session.state_db().is_none());
    assert_eq!(session.agent_identity(), Default::default());
    assert_eq!(session.resume().unwrap().thread_id, t.id);

    let named = find_thread_by_name(home.path(), &t.name, None, &ctx)
        .unwrap()
        .unwrap();
    assert_eq!(named.thread_id, t.id);
    assert_eq!(
        named.lookup.fallback_reason,
        Some(FallbackReason::DbUnavailable)
    );
    assert!(!named.lookup.repaired);

    assert_eq!(
        find_latest_thread(home.path(), None, None),
        (Some(t.path.clone()), Some(FallbackReason::DbUnavailable))
    );

    assert_eq!(
        reset_memory(None).unwrap_err().to_string(),
        "state db unavailable for memory reset"
    );
    assert_eq!(
        update_thread_git_metadata(None, t.id, &GitMetadataPatch::default())
            .unwrap_err()
            .to_string(),
        format!("state db unavailable for thread {}", t.id)
    );

    assert!(
        !home.path().join(STATE_DB_FILENAME).exists(),
        "no consumer opened a DB"
    );
    assert_eq!(ctx.open_count(&home.path().join(STATE_DB_FILENAME)), 0);
}

/// Seeded bug: the store ignores its handle and opens its own. The registry refuses the
/// second open (visible in the event log), and the store silently works from the files —
/// so its lookups no longer repair the row.
#[test]
fn consumer_lazy_open_variant_is_refused_and_visible() {
    let (vctx, events) = ctx_with_variant("lazy", Variant::ConsumerLazyOpen);
    let (home, threads, h) = indexed_in(&vctx, 2, 0);
    let (t, other) = (&threads[0], &threads[1]);
    exec_sql(
        &h,
        "UPDATE threads SET rollout_path = ?1 WHERE id = ?2",
        (other.path.to_string_lossy().to_string(), t.id.to_string()),
    );
    let lazy = store(home.path(), Some(h.clone()), &vctx);
    assert!(
        Arc::ptr_eq(&lazy.state_db().unwrap(), &h),
        "state_db() is the given handle"
    );
    let read = lazy.read_thread(read_all(t.id)).unwrap();
    assert_eq!(read.rollout_path, t.path, "still the right file");
    assert!(vctx.refused_opens() >= 1);
    assert!(count_events(&events, kinds::DUPLICATE_OPEN) >= 1);
    assert_eq!(
        h.get_thread(t.id).unwrap().unwrap().rollout_path,
        other.path,
        "the store ran without the DB, so nothing was repaired"
    );

    // The reference store, same process shape: no refused open, and the row is repaired.
    let (rctx, revents) = ctx_with_variant("reference", Variant::Reference);
    let (home, threads, h) = indexed_in(&rctx, 2, 0);
    let (t, other) = (&threads[0], &threads[1]);
    exec_sql(
        &h,
        "UPDATE threads SET rollout_path = ?1 WHERE id = ?2",
        (other.path.to_string_lossy().to_string(), t.id.to_string()),
    );
    let reference = store(home.path(), Some(h.clone()), &rctx);
    reference.read_thread(read_all(t.id)).unwrap();
    assert_eq!(rctx.refused_opens(), 0);
    assert_eq!(count_events(&revents, kinds::DUPLICATE_OPEN), 0);
    assert_eq!(h.get_thread(t.id).unwrap().unwrap().rollout_path, t.path);
}
