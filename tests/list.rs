//! Listing: the `(timestamp, id)` keyset cursor never loses rows that tie on the
//! timestamp (the timestamp-only variant does); stale rows are reported, refilled and
//! kept unless pruning is asked for (the deleting variant drops them); bad cursors are
//! typed errors; the filesystem listing agrees with the DB listing.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{ctx, ctx_with_variant, exec_sql, home_with, indexed_in};
use statedb_harness::fixture::FixtureThread;
use statedb_harness::lookup::{list_threads, ListError, ListPage, ListRequest};
use statedb_harness::state::StateDbHandle;
use statedb_harness::variant::Variant;
use uuid::Uuid;

/// Follows `next_cursor` until it runs out (bounded, so a cursor bug cannot hang).
fn all_pages(handle: Option<&StateDbHandle>, home: &Path, req: &ListRequest) -> Vec<ListPage> {
    let mut req = req.clone();
    let mut pages = Vec::new();
    for _ in 0..100 {
        let page = list_threads(handle, home, &req).expect("page");
        let next = page.next_cursor.clone();
        pages.push(page);
        match next {
            Some(cursor) => req.cursor = Some(cursor),
            None => return pages,
        }
    }
    panic!("listing did not terminate");
}

fn ids(pages: &[ListPage]) -> Vec<Uuid> {
    pages
        .iter()
        .flat_map(|p| p.items.iter().map(|i| i.thread_id))
        .collect()
}

fn page_of(size: usize) -> ListRequest {
    ListRequest {
        page_size: size,
        ..ListRequest::default()
    }
}

/// Gives threads 1..=6 the updated_at of thread 1 (6 rows tie; thread 0 stays newer).
fn make_ties(h: &StateDbHandle, threads: &[FixtureThread]) -> i64 {
    let tie = h.get_thread(threads[1].id).unwrap().unwrap().updated_at_ms;
    for t in &threads[1..7] {
        exec_sql(
            h,
            "UPDATE threads SET updated_at_ms = ?1, updated_at = ?2 WHERE id = ?3",
            (tie, tie.div_euclid(1000), t.id.to_string()),
        );
    }
    tie
}

#[test]
fn keyset_cursor_never_loses_rows_that_tie_on_the_timestamp() {
    let ctx = ctx("list");
    let (home, threads, h) = indexed_in(&ctx, 8, 0);
    let tie = make_ties(&h, &threads);
    let tied = h
        .all_threads()
        .unwrap()
        .iter()
        .filter(|t| t.updated_at_ms == tie)
        .count();
    assert!(tied >= 5, "{tied} rows share the timestamp");

    let pages = all_pages(Some(&h), home.path(), &page_of(2));
    let listed = ids(&pages);
    let unique: HashSet<Uuid> = listed.iter().copied().collect();
    assert_eq!(listed.len(), 8, "{listed:?}");
    assert_eq!(unique.len(), 8, "each row exactly once");
    assert!(pages.iter().all(|p| p.items.len() <= 2));
    // Order: newest first, ties by id descending.
    let mut expected: Vec<(i64, Uuid)> = h
        .all_threads()
        .unwrap()
        .iter()
        .map(|t| (t.updated_at_ms, t.id))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        listed,
        expected.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
    );
}

#[test]
fn timestamp_only_cursor_variant_loses_tied_rows() {
    let (ctx, _events) = ctx_with_variant("weak-cursor", Variant::ListTimestampCursor);
    let (home, threads, h) = indexed_in(&ctx, 8, 0);
    make_ties(&h, &threads);
    let listed = ids(&all_pages(Some(&h), home.path(), &page_of(2)));
    let unique: HashSet<Uuid> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len(), "no duplicates either way");
    assert!(
        listed.len() < 8,
        "the weak cursor must lose rows tying on the page boundary: {listed:?}"
    );
}

#[test]
fn stale_rows_are_reported_and_the_page_refilled_but_the_row_is_kept() {
    let ctx = ctx("list");
    let (home, threads, h) = indexed_in(&ctx, 6, 0);
    let gone = &threads[1];
    std::fs::remove_file(&gone.path).unwrap();
    let page = list_threads(Some(&h), home.path(), &page_of(3)).unwrap();
    let listed: Vec<Uuid> = page.items.iter().map(|i| i.thread_id).collect();
    assert_eq!(listed, vec![threads[0].id, threads[2].id, threads[3].id]);
    assert_eq!(page.stale, vec![gone.id]);
    assert!(page.pruned.is_empty());
    assert!(page.next_cursor.is_some());
    assert!(h.get_thread(gone.id).unwrap().is_some(), "row not deleted");

    let pages = all_pages(Some(&h), home.path(), &page_of(3));
    assert_eq!(ids(&pages).len(), 5);
    assert_eq!(h.thread_count().unwrap(), 6);
}

#[test]
fn prune_deletes_stale_rows() {
    let ctx = ctx("list");
    let (home, threads, h) = indexed_in(&ctx, 4, 0);
    let gone = &threads[2];
    std::fs::remove_file(&gone.path).unwrap();
    let page = list_threads(
        Some(&h),
        home.path(),
        &ListRequest {
            prune: true,
            ..page_of(10)
        },
    )
    .unwrap();
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.stale, vec![gone.id]);
    assert_eq!(page.pruned, vec![gone.id]);
    assert!(h.get_thread(gone.id).unwrap().is_none());
}

#[test]
fn deleting_variant_drops_stale_rows_without_being_asked() {
    let (ctx, _events) = ctx_with_variant("deleter", Variant::ListDeletesStale);
    let (home, threads, h) = indexed_in(&ctx, 4, 0);
    let gone = &threads[0];
    std::fs::remove_file(&gone.path).unwrap();
    let page = list_threads(Some(&h), home.path(), &page_of(10)).unwrap();
    assert_eq!(page.stale, vec![gone.id]);
    assert!(
        h.get_thread(gone.id).unwrap().is_none(),
        "the variant deleted the row on a plain listing"
    );
}

#[test]
fn an_invalid_cursor_is_a_typed_error() {
    let ctx = ctx("list");
    let (home, _threads, h) = indexed_in(&ctx, 1, 0);
    for bad in [
        "garbage",
        "2026-01-27T12:00:00.000Z|not-a-uuid",
        "2026-13-27T12:00:00Z",
    ] {
        for handle in [Some(&h), None] {
            let err = list_threads(
                handle,
                home.path(),
                &ListRequest {
                    cursor: Some(bad.to_string()),
                    ..ListRequest::default()
                },
            )
            .unwrap_err();
            assert!(
                matches!(&err, ListError::InvalidCursor(c) if c == bad),
                "{err}"
            );
        }
    }
}

#[test]
fn filesystem_listing_returns_the_same_threads_as_the_db_listing() {
    let ctx = ctx("list");
    let (home, _threads, h) = indexed_in(&ctx, 7, 3);
    for archived in [false, true] {
        let req = ListRequest {
            archived,
            ..page_of(3)
        };
        let from_db = all_pages(Some(&h), home.path(), &req);
        let from_files = all_pages(None, home.path(), &req);
        assert_eq!(ids(&from_db), ids(&from_files), "archived={archived}");
        let paths = |pages: &[ListPage]| {
            pages
                .iter()
                .flat_map(|p| p.items.iter().map(|i| i.path.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(paths(&from_db), paths(&from_files));
        assert_eq!(ids(&from_db).len(), if archived { 3 } else { 7 });
    }
}

#[test]
fn filesystem_listing_never_loses_files_that_tie_on_mtime() {
    let (home, threads) = home_with(7, 0);
    let same = SystemTime::UNIX_EPOCH + Duration::from_millis(1_769_000_000_123);
    for t in &threads[1..6] {
        std::fs::File::options()
            .write(true)
            .open(&t.path)
            .unwrap()
            .set_modified(same)
            .unwrap();
    }
    let listed = ids(&all_pages(None, home.path(), &page_of(2)));
    let unique: HashSet<Uuid> = listed.iter().copied().collect();
    assert_eq!((listed.len(), unique.len()), (7, 7), "{listed:?}");
}
