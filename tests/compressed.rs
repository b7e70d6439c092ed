//! `.jsonl.zst` rollouts (Codex compresses old rollouts): read, indexed by the backfill,
//! found by lookup (from the DB, head verified, and by the filesystem search), listed with
//! and without a DB, preferred less than a plain twin, and never rewritten.

mod common;

use std::path::{Path, PathBuf};

use common::{cfg, ctx, files_under, home_with};
use statedb_harness::lookup::{find_thread_path, list_threads, ListRequest, LookupSource};
use statedb_harness::state_db::try_init;
use statedb_harness::thread::Scope;

/// Replaces the plain rollout at `path` by its zstd-compressed `….jsonl.zst` twin.
fn compress(path: &Path) -> PathBuf {
    let packed = PathBuf::from(format!("{}.zst", path.display()));
    let bytes = std::fs::read(path).expect("read rollout");
    std::fs::write(
        &packed,
        zstd::encode_all(bytes.as_slice(), 3).expect("compress"),
    )
    .expect("write zst");
    std::fs::remove_file(path).expect("remove plain");
    packed
}

#[test]
fn a_compressed_rollout_is_indexed_found_and_listed_and_never_rewritten() {
    let (home, threads) = home_with(3, 1);
    let active = compress(&threads[0].path);
    let archived_thread = threads
        .iter()
        .find(|t| t.root.is_archived())
        .expect("archived");
    let archived = compress(&archived_thread.path);
    let before = files_under(home.path());

    let report = try_init(&ctx("init"), &cfg(home.path())).expect("init");
    assert_eq!(report.backfill.failed, 0);
    let h = report.handle;
    let row = h
        .get_thread(threads[0].id)
        .unwrap()
        .expect("row for the .zst rollout");
    assert_eq!(row.rollout_path, active);
    assert!(
        !row.first_user_message.is_empty(),
        "read through the compression"
    );
    let archived_row = h
        .get_thread(archived_thread.id)
        .unwrap()
        .expect("archived row");
    assert_eq!(archived_row.rollout_path, archived);
    assert!(archived_row.is_archived());

    let from_db = find_thread_path(
        Some(&h),
        home.path(),
        &threads[0].id.to_string(),
        Scope::Active,
    );
    assert_eq!(from_db.path.as_deref(), Some(active.as_path()));
    assert_eq!(from_db.source, Some(LookupSource::Db));
    let from_files = find_thread_path(None, home.path(), &threads[0].id.to_string(), Scope::Active);
    assert_eq!(from_files.path.as_deref(), Some(active.as_path()));

    for handle in [Some(&h), None] {
        let page = list_threads(handle, home.path(), &ListRequest::default()).expect("list");
        assert!(
            page.items
                .iter()
                .any(|i| i.thread_id == threads[0].id && i.path == active),
            "listing (db: {}) misses the compressed rollout",
            handle.is_some()
        );
    }
    drop(h);
    let after = files_under(home.path());
    for (path, bytes) in &before {
        assert_eq!(after.get(path), Some(bytes), "{} changed", path.display());
    }
}

#[test]
fn a_plain_rollout_wins_over_its_compressed_twin() {
    let (home, threads) = home_with(2, 0);
    let plain = threads[0].path.clone();
    let bytes = std::fs::read(&plain).unwrap();
    std::fs::write(
        format!("{}.zst", plain.display()),
        zstd::encode_all(bytes.as_slice(), 3).unwrap(),
    )
    .unwrap();
    let h = try_init(&ctx("init"), &cfg(home.path())).unwrap().handle;
    assert_eq!(
        h.get_thread(threads[0].id).unwrap().unwrap().rollout_path,
        plain
    );
    let found = find_thread_path(None, home.path(), &threads[0].id.to_string(), Scope::Active);
    assert_eq!(found.path.as_deref(), Some(plain.as_path()));
    let page = list_threads(None, home.path(), &ListRequest::default()).unwrap();
    let hits = page
        .items
        .iter()
        .filter(|i| i.thread_id == threads[0].id)
        .count();
    assert_eq!(hits, 1, "listed twice");
}
