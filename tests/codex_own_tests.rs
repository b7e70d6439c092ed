//! The modelled system's own tests, re-expressed against the reference: one test each,
//! named after what it asserts (see the test lists in the reference study: rollout
//! crate, state crate, thread store). Each runs on real files and a real SQLite DB.

mod common;

use std::path::Path;

use chrono::{DateTime, Utc};
use common::{cfg, ctx, exec_sql, home_with, indexed_in};
use statedb_harness::backfill::run_backfill;
use statedb_harness::consumers::{
    update_thread_git_metadata, GitFields, GitMetadataPatch, LocalThreadStore, ReadThreadRequest,
};
use statedb_harness::lookup::{
    find_thread_path_in, list_threads, ListFilter, ListRequest, LookupSource,
};
use statedb_harness::rollout::layout::Root;
use statedb_harness::rollout::metadata::extract_metadata;
use statedb_harness::rollout::writer::{write_rollout, GitInfo, RolloutSpec};
use statedb_harness::state::threads;
use statedb_harness::state::StateDbHandle;
use statedb_harness::state_db::try_init;
use statedb_harness::thread::{Scope, ThreadMetadata};
use statedb_harness::timing::Timings;
use uuid::Uuid;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn new_id(n: u128) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis(1_769_000_000_000 + n as u64 * 1000, &[n as u8; 10])
        .into_uuid()
}

fn upsert(h: &StateDbHandle, m: &ThreadMetadata) {
    h.upsert_thread(m).unwrap();
}

fn row(h: &StateDbHandle, id: Uuid) -> ThreadMetadata {
    h.get_thread(id).unwrap().expect("row")
}

fn all_listed(h: Option<&StateDbHandle>, home: &Path, archived: bool) -> Vec<Uuid> {
    every_page(
        h,
        home,
        ListRequest {
            archived,
            page_size: 3,
            ..ListRequest::default()
        },
    )
}

/// The ids of every page of a listing, in order.
fn every_page(h: Option<&StateDbHandle>, home: &Path, mut req: ListRequest) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..50 {
        let page = list_threads(h, home, &req).unwrap();
        ids.extend(page.items.iter().map(|i| i.thread_id));
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => return ids,
        }
    }
    panic!("listing did not end");
}

/// `upsert_thread_keeps_creation_memory_mode_for_existing_rows`
#[test]
fn upsert_keeps_the_creation_memory_mode_of_an_existing_row() {
    let ctx = ctx("memory-mode");
    let (home, _, h) = indexed_in(&ctx, 1, 0);
    let id = new_id(1);
    let mut m = ThreadMetadata::new(id, home.path().join("x.jsonl"), 1_769_000_000_000);
    m.memory_mode = Some("disabled".into());
    upsert(&h, &m);
    m.memory_mode = Some("enabled".into());
    m.title = "later".into();
    upsert(&h, &m);
    let r = row(&h, id);
    assert_eq!(r.memory_mode.as_deref(), Some("disabled"));
    assert_eq!(r.title, "later", "other columns are still updated");
}

/// `insert_thread_if_absent_preserves_existing_metadata`
#[test]
fn insert_if_absent_never_overwrites_an_existing_row() {
    let ctx = ctx("insert-if-absent");
    let (_home, fixture, h) = indexed_in(&ctx, 2, 0);
    let before = row(&h, fixture[0].id);
    let mut other = before.clone();
    other.title = "overwritten".into();
    other.rollout_path = "/elsewhere.jsonl".into();
    let inserted = h
        .write("test", |tx| {
            threads::insert_if_absent(tx, &other).map_err(h.err("test"))
        })
        .unwrap();
    assert!(!inserted);
    assert_eq!(row(&h, fixture[0].id), before);
}

/// The git-info patch of the thread metadata update can clear a field, not only set one.
#[test]
fn git_patch_clears_fields_it_names_and_sets_the_others() {
    let ctx = ctx("git-patch");
    let (_home, fixture, h) = indexed_in(&ctx, 1, 0);
    let id = fixture[0].id;
    exec_sql(
        &h,
        "UPDATE threads SET git_sha = 'abc', git_branch = 'main', git_origin_url = 'u' WHERE id = ?1",
        [id.to_string()],
    );
    let patch = GitMetadataPatch {
        branch: Some("feature".into()),
        clear: GitFields {
            sha: true,
            ..GitFields::default()
        },
        ..GitMetadataPatch::default()
    };
    assert!(update_thread_git_metadata(Some(&h), id, &patch).unwrap());
    let r = row(&h, id);
    assert_eq!(r.git_sha, None, "cleared");
    assert_eq!(r.git_branch.as_deref(), Some("feature"), "set");
    assert_eq!(r.git_origin_url.as_deref(), Some("u"), "left as it was");
}

/// Rows written by an older binary carry only the seconds columns: they read as ms.
#[test]
fn legacy_seconds_timestamps_read_as_milliseconds() {
    let ctx = ctx("legacy-seconds");
    let (_home, fixture, h) = indexed_in(&ctx, 1, 0);
    let id = fixture[0].id;
    exec_sql(
        &h,
        "UPDATE threads SET created_at = 1769515200, updated_at = 1769515260,
            created_at_ms = NULL, updated_at_ms = NULL WHERE id = ?1",
        [id.to_string()],
    );
    let r = row(&h, id);
    assert_eq!(
        (r.created_at_ms, r.updated_at_ms),
        (1_769_515_200_000, 1_769_515_260_000)
    );
}

/// `backfill_sessions_preserves_existing_git_branch_and_fills_missing_git_fields`
#[test]
fn backfill_preserves_an_existing_git_branch_and_fills_missing_git_fields() {
    let (home, _) = home_with(0, 0);
    let id = new_id(2);
    let mut spec = RolloutSpec::new(id, at("2026-01-20T10:00:00Z"));
    spec.git = Some(GitInfo {
        commit_hash: "rollout-sha".into(),
        branch: "rollout-branch".into(),
        repository_url: "git@example:repo.git".into(),
    });
    write_rollout(home.path(), &spec).unwrap();
    let ctx = ctx("backfill-git");
    let h = try_init(&ctx, &cfg(home.path())).unwrap().handle;
    exec_sql(
        &h,
        "UPDATE threads SET git_branch = 'sqlite-branch', git_sha = NULL, git_origin_url = NULL",
        [],
    );
    exec_sql(
        &h,
        "UPDATE backfill_state SET status = 'pending', last_watermark = NULL",
        [],
    );
    let outcome = run_backfill(&h, &Timings::short()).unwrap();
    assert!(outcome.ran && outcome.upserted == 1, "{outcome:?}");
    let r = row(&h, id);
    assert_eq!(r.git_branch.as_deref(), Some("sqlite-branch"));
    assert_eq!(r.git_sha.as_deref(), Some("rollout-sha"));
    assert_eq!(r.git_origin_url.as_deref(), Some("git@example:repo.git"));
}

/// `reconcile_rollout_preserves_existing_explicit_title`
#[test]
fn reindexing_a_rollout_keeps_an_explicit_title() {
    let ctx = ctx("explicit-title");
    let (_home, fixture, h) = indexed_in(&ctx, 1, 0);
    let id = fixture[0].id;
    exec_sql(
        &h,
        "UPDATE threads SET title = 'math' WHERE id = ?1",
        [id.to_string()],
    );
    let extracted = extract_metadata(&fixture[0].path, "openai")
        .unwrap()
        .metadata;
    assert_ne!(extracted.title, "math");
    upsert(&h, &extracted);
    let r = row(&h, id);
    assert_eq!(r.title, "math");
    assert_eq!(r.first_user_message, extracted.first_user_message);
}

/// `find_prefers_sqlite_path_by_id`: a verified DB path is answered as is; a second valid
/// file of the thread found by a search never replaces it.
#[test]
fn a_filesystem_match_never_replaces_a_row_that_verifies() {
    let ctx = ctx("prefer-db");
    let (home, fixture, h) = indexed_in(&ctx, 2, 0);
    let t = &fixture[0];
    let copy = home
        .path()
        .join("sessions/copies")
        .join(t.path.file_name().unwrap());
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(&t.path, &copy).unwrap();
    let r = find_thread_path_in(
        &ctx,
        Some(&h),
        home.path(),
        &t.id.to_string(),
        Scope::Active,
    );
    assert_eq!(
        (r.source, r.path.as_deref(), r.repaired),
        (Some(LookupSource::Db), Some(t.path.as_path()), false)
    );
    assert_eq!(row(&h, t.id).rollout_path, t.path);
}

/// A handle opened for another home cleans up nothing there (no prune, no repair).
#[test]
fn a_handle_for_another_home_cleans_up_nothing() {
    let ctx = ctx("mismatch");
    let (_home, fixture, h) = indexed_in(&ctx, 3, 0);
    let other = tempfile::tempdir().unwrap();
    let before = h.all_threads().unwrap();
    for t in &fixture {
        std::fs::remove_file(&t.path).unwrap(); // every row of this home is now stale
    }
    let req = ListRequest {
        prune: true,
        ..ListRequest::default()
    };
    let page = list_threads(Some(&h), other.path(), &req).unwrap();
    assert!(page.items.is_empty() && page.pruned.is_empty(), "{page:?}");
    let r = find_thread_path_in(
        &ctx,
        Some(&h),
        other.path(),
        &fixture[0].id.to_string(),
        Scope::Any,
    );
    assert_eq!((r.path, r.repaired), (None, false));
    assert_eq!(h.all_threads().unwrap(), before);
}

fn write_with(home: &Path, id: Uuid, edit: impl FnOnce(&mut RolloutSpec)) -> std::path::PathBuf {
    let mut spec = RolloutSpec::new(id, at("2026-01-21T09:00:00Z"));
    edit(&mut spec);
    write_rollout(home, &spec).unwrap()
}

/// Listing tests of the rollout crate: a thread whose first user message comes after many
/// records, and one that starts with a goal and has no user message yet, are listed with
/// and without the DB.
#[test]
fn listing_shows_threads_whose_first_user_message_comes_late_or_that_start_with_a_goal() {
    let (home, fixture) = home_with(2, 0);
    let late = new_id(3);
    write_with(home.path(), late, |s| {
        s.user_messages = (0..40).map(|i| format!("turn {i}")).collect();
    });
    let goal = new_id(4);
    write_with(home.path(), goal, |s| s.user_messages.clear());
    let mut want: Vec<Uuid> = fixture.iter().map(|t| t.id).collect();
    want.extend([late, goal]);
    want.sort();
    let mut from_files = all_listed(None, home.path(), false);
    from_files.sort();
    assert_eq!(from_files, want, "file listing");
    let ctx = ctx("late-listing");
    let h = try_init(&ctx, &cfg(home.path())).unwrap().handle;
    let mut from_db = all_listed(Some(&h), home.path(), false);
    from_db.sort();
    assert_eq!(from_db, want, "DB listing");
}

/// `read_thread_prefers_active_rollout_over_archived`
#[test]
fn an_active_rollout_is_preferred_over_an_archived_copy() {
    let (home, fixture) = home_with(1, 0);
    let t = &fixture[0];
    let archived = Root::Archived
        .dir(home.path())
        .join(t.path.file_name().unwrap());
    std::fs::create_dir_all(archived.parent().unwrap()).unwrap();
    std::fs::copy(&t.path, &archived).unwrap();
    for with_db in [false, true] {
        let ctx = ctx("prefer-active");
        let h = with_db.then(|| try_init(&ctx, &cfg(home.path())).unwrap().handle);
        let store =
            LocalThreadStore::new(home.path(), "openai", h.clone()).with_process(ctx.clone());
        let read = store
            .read_thread(ReadThreadRequest {
                thread_id: t.id,
                include_archived: true,
                include_history: true,
            })
            .unwrap();
        assert_eq!(read.rollout_path, t.path, "with_db={with_db}");
        assert!(!read.archived, "with_db={with_db}");
    }
}

/// Unique millisecond timestamps per process (the runtime's `updated_at` high-water
/// mark): upserts landing in the same millisecond, or in the hot second just behind the
/// newest value, get distinct, increasing `updated_at_ms`; a value at least a second older
/// (a historical file mtime) is stored as given. Catches equal timestamps (whose order a
/// keyset cursor cannot tell), values moving backwards, and old values rewritten.
#[test]
fn upserts_in_the_same_millisecond_get_distinct_increasing_updated_at() {
    let ctx = ctx("unique-ms");
    let (home, _, h) = indexed_in(&ctx, 1, 0);
    let now = 1_796_000_000_123;
    let ids: Vec<Uuid> = (10..14).map(new_id).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut m = ThreadMetadata::new(*id, home.path().join(format!("{i}.jsonl")), now);
        m.updated_at_ms = if i == 3 { now - 1 } else { now };
        upsert(&h, &m);
    }
    let got: Vec<i64> = ids.iter().map(|id| row(&h, *id).updated_at_ms).collect();
    assert_eq!(got, vec![now, now + 1, now + 2, now + 3], "same hot second");
    let old = new_id(15);
    let mut m = ThreadMetadata::new(old, home.path().join("old.jsonl"), now - 5_000);
    m.updated_at_ms = now - 5_000;
    upsert(&h, &m);
    assert_eq!(
        row(&h, old).updated_at_ms,
        now - 5_000,
        "historical value kept"
    );
    // The seconds column Codex's older readers use follows the allocated value.
    let secs: i64 = h
        .read("test", |c| {
            c.query_row(
                "SELECT updated_at FROM threads WHERE id = ?1",
                [ids[3].to_string()],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(secs, (now + 3) / 1000);
}

/// Legacy seconds-only rows and allocated ms rows read together: the seconds row sorts by
/// its seconds × 1000 among ms rows in a listing. Catches a reader that takes a NULL ms
/// column as 0 (the row would sink to the end) or the seconds value as ms.
#[test]
fn legacy_seconds_rows_sort_among_millisecond_rows_in_a_listing() {
    let ctx = ctx("legacy-seconds-order");
    let (home, fixture, h) = indexed_in(&ctx, 3, 0);
    let rows: Vec<ThreadMetadata> = fixture.iter().map(|t| row(&h, t.id)).collect();
    let mut by_update = rows.clone();
    by_update.sort_by_key(|r| std::cmp::Reverse((r.updated_at_ms, r.id)));
    // The middle row loses its ms columns, as an older binary wrote it.
    let middle = by_update[1].id;
    exec_sql(
        &h,
        "UPDATE threads SET updated_at_ms = NULL, created_at_ms = NULL WHERE id = ?1",
        [middle.to_string()],
    );
    let listed = all_listed(Some(&h), home.path(), false);
    assert_eq!(listed[1], middle, "{listed:?}");
    assert_eq!(
        row(&h, middle).updated_at_ms,
        by_update[1].updated_at_ms.div_euclid(1000) * 1000
    );
}

/// `backfill_sessions_normalizes_cwd_before_upsert`: a session cwd written as
/// `<dir>/.`, through a symlink, or with `..` is stored in its canonical form, by the
/// backfill and by the read-repair that indexes a rollout the DB missed. Catches a cwd
/// stored as written (a cwd filter or a `/resume` in that directory would miss it).
#[test]
fn cwd_is_normalized_before_upsert() {
    let (home, _) = home_with(0, 0);
    let real = tempfile::tempdir().unwrap();
    let project = real.path().join("project");
    std::fs::create_dir_all(project.join("sub")).unwrap();
    let link = real.path().join("link");
    std::os::unix::fs::symlink(&project, &link).unwrap();
    let canonical = std::fs::canonicalize(&project)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let written = [
        format!("{}/.", project.display()),
        format!("{}/sub/..", link.display()),
        format!("{}/./sub/../", link.display()),
    ];
    let ids: Vec<Uuid> = (20..23).map(new_id).collect();
    for (id, cwd) in ids.iter().zip(&written) {
        write_with(home.path(), *id, |s| s.cwd = cwd.clone());
    }
    let ctx = ctx("cwd-normalized");
    let h = try_init(&ctx, &cfg(home.path())).unwrap().handle;
    for id in &ids {
        assert_eq!(row(&h, *id).cwd, canonical, "backfill of {id}");
    }
    // A rollout the DB never saw, indexed by a lookup's read-repair.
    let late = new_id(23);
    write_with(home.path(), late, |s| s.cwd = written[1].clone());
    let r = find_thread_path_in(&ctx, Some(&h), home.path(), &late.to_string(), Scope::Any);
    assert!(r.repaired, "{r:?}");
    assert_eq!(row(&h, late).cwd, canonical, "read-repair");
}

fn listed_with(h: Option<&StateDbHandle>, home: &Path, filter: ListFilter) -> Vec<Uuid> {
    let req = ListRequest {
        page_size: 2,
        filter,
        ..ListRequest::default()
    };
    let mut ids = every_page(h, home, req);
    ids.sort();
    ids
}

/// Codex's `thread/list` source-kind and model-provider filters: a listing keeps exactly
/// the threads of the asked sources and providers, paged, with and without the DB, and
/// both listings agree. Catches a filter that is ignored, applied to one listing only,
/// applied after paging (short pages that end early), or that treats a list of values as
/// only its first one.
#[test]
fn listing_filters_by_source_kind_and_model_provider() {
    let (home, _) = home_with(0, 0);
    let kinds = [
        ("cli", "openai"),
        ("exec", "openai"),
        ("vscode", "azure"),
        ("cli", "azure"),
        ("mcp", "openai"),
        ("exec", "azure"),
        ("cli", "openai"),
    ];
    let ids: Vec<(Uuid, &str, &str)> = kinds
        .iter()
        .enumerate()
        .map(|(i, (source, provider))| {
            let id = new_id(30 + i as u128);
            write_with(home.path(), id, |s| {
                s.source = source.to_string();
                s.model_provider = provider.to_string();
                s.created = at("2026-01-21T09:00:00Z") + chrono::TimeDelta::minutes(i as i64);
            });
            (id, *source, *provider)
        })
        .collect();
    let want = |sources: &[&str], providers: &[&str]| {
        let mut v: Vec<Uuid> = ids
            .iter()
            .filter(|(_, s, p)| {
                (sources.is_empty() || sources.contains(s))
                    && (providers.is_empty() || providers.contains(p))
            })
            .map(|(id, _, _)| *id)
            .collect();
        v.sort();
        v
    };
    let filter = |sources: &[&str], providers: &[&str]| ListFilter {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        providers: providers.iter().map(|s| s.to_string()).collect(),
    };
    let ctx = ctx("list-filters");
    let h = try_init(&ctx, &cfg(home.path())).unwrap().handle;
    let cases: [(&[&str], &[&str]); 5] = [
        (&["cli"], &[]),
        (&["exec", "mcp"], &[]),
        (&[], &["azure"]),
        (&["cli"], &["openai"]),
        (&["vscode"], &["openai"]),
    ];
    for (sources, providers) in cases {
        let expected = want(sources, providers);
        for handle in [None, Some(&h)] {
            assert_eq!(
                listed_with(handle, home.path(), filter(sources, providers)),
                expected,
                "sources {sources:?} providers {providers:?} with_db={}",
                handle.is_some()
            );
        }
    }
    assert_eq!(
        listed_with(Some(&h), home.path(), ListFilter::default()).len(),
        kinds.len()
    );
}
