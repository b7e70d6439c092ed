//! Snapshot review of lookup and listing results on the committed fixture homes
//! (`fixtures/`, see `fixture_homes`): every thread in every scope with and without a
//! handle, each kind of row fault, listing pages, and the index the backfill builds.
//!
//! Snapshots live in `tests/snapshots/`. Paths are shown relative to the home
//! (`<home>/sessions/...`), times as `[time]`, lease owner tokens as `[owner]`.
//! Review changes with `cargo insta review`; CI runs with `INSTA_UPDATE=no`.

mod common;
mod fixture_homes;

use std::path::{Path, PathBuf};

use rstest::rstest;
use serde::Serialize;
use uuid::Uuid;

use common::{
    assert_same_files, delete_row, files_under, flip_archived, outside_connection, set_row_path,
};
use fixture_homes::{fixture_dir, materialize, threads, unknown_id, Labeled};
use statedb_harness::lookup::{
    find_thread_path, list_threads, ListPage, ListRequest, LookupResult,
};
use statedb_harness::process::ProcessContext;
use statedb_harness::state::backfill_state;
use statedb_harness::state::StateDbHandle;
use statedb_harness::state_db::{try_init, StateDbConfig};
use statedb_harness::thread::Scope;
use statedb_harness::timing::Timings;

const SCOPES: [Scope; 3] = [Scope::Active, Scope::Archived, Scope::Any];

/// Insta settings for one home: home-relative paths, redacted times and owner tokens.
fn settings(home: &Path, suffix: &str) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_suffix(suffix);
    s.add_filter(&escape_regex(&home.display().to_string()), "<home>");
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
        "[time]",
    );
    s.add_redaction(".backfill.owner", "[owner]");
    s
}

fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn init(home: &Path) -> StateDbHandle {
    let ctx = ProcessContext::plain("snapshots");
    try_init(&ctx, &StateDbConfig::new(home, Timings::short()))
        .expect("init on a fixture home")
        .handle
}

/// The fixture's threads plus an id with no rollout at all.
fn threads_and_unknown(fixture: &str) -> Vec<Labeled> {
    let mut all = threads(fixture);
    all.push(Labeled {
        label: "unknown".into(),
        id: unknown_id(),
    });
    all
}

#[derive(Serialize)]
struct LookupEntry<'a> {
    thread: &'a str,
    scope: Scope,
    result: LookupResult,
}

#[rstest]
fn lookups_in_every_scope(
    #[values("basic", "odd", "offset")] fixture: &str,
    #[values(true, false)] with_handle: bool,
) {
    let home = materialize(fixture);
    let handle = with_handle.then(|| init(home.path()));
    let threads = threads_and_unknown(fixture);
    let mut entries = Vec::new();
    for t in &threads {
        for scope in SCOPES {
            let result = find_thread_path(handle.as_ref(), home.path(), &t.id.to_string(), scope);
            entries.push(LookupEntry {
                thread: &t.label,
                scope,
                result,
            });
        }
    }
    let mode = if with_handle { "db" } else { "no-db" };
    settings(home.path(), &format!("{fixture}-{mode}")).bind(|| {
        insta::assert_json_snapshot!("lookups", entries);
    });
}

#[derive(Serialize)]
struct IndexedRow {
    thread: String,
    rollout_path: PathBuf,
    archived: bool,
    first_user_message: String,
}

#[derive(Serialize)]
struct BackfillView {
    status: String,
    owner: Option<String>,
    last_watermark: Option<String>,
    failures: Vec<(String, String)>,
}

#[derive(Serialize)]
struct IndexView {
    backfill: BackfillView,
    rows: Vec<IndexedRow>,
}

/// What the startup backfill makes of each fixture home.
#[rstest]
fn index_after_init(#[values("basic", "odd", "offset")] fixture: &str) {
    let home = materialize(fixture);
    let handle = init(home.path());
    let labels = threads(fixture);
    let label_of = |id: Uuid| {
        labels
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| id.to_string(), |t| t.label.clone())
    };
    let state = handle.backfill_state().expect("backfill state");
    let failures = handle
        .read("failures", backfill_state::failures)
        .expect("failures");
    let mut rows: Vec<IndexedRow> = handle
        .all_threads()
        .expect("rows")
        .into_iter()
        .map(|m| IndexedRow {
            thread: label_of(m.id),
            archived: m.is_archived(),
            rollout_path: m.rollout_path,
            first_user_message: m.first_user_message,
        })
        .collect();
    rows.sort_by(|a, b| a.thread.cmp(&b.thread));
    let view = IndexView {
        backfill: BackfillView {
            status: state.status.to_string(),
            owner: state.owner.map(|o| o.owner_id),
            last_watermark: state.last_watermark,
            failures,
        },
        rows,
    };
    settings(home.path(), fixture).bind(|| {
        insta::assert_json_snapshot!("index", view);
    });
}

/// Damage done to one row from outside the process.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum Fault {
    /// The row points at a path that no longer exists.
    StaleRow,
    /// The row points at another thread's rollout.
    OtherThreadsFile,
    /// The row is gone.
    MissingRow,
    /// The row points at an empty file.
    EmptyFile,
    /// The row's archived flag is the opposite of where the file is.
    WrongArchivedFlag,
}

fn apply_fault(
    home: &Path,
    fault: Fault,
    target: &Labeled,
    other: &Labeled,
    handle: &StateDbHandle,
) {
    let db = outside_connection(home);
    let changed = match fault {
        Fault::StaleRow => set_row_path(
            &db,
            target.id,
            &home.join("sessions/2026/01/01/rollout-moved-away.jsonl"),
        ),
        Fault::OtherThreadsFile => {
            let row = handle.get_thread(other.id).expect("read").expect("row");
            set_row_path(&db, target.id, &row.rollout_path)
        }
        Fault::MissingRow => delete_row(&db, target.id),
        Fault::EmptyFile => {
            let empty = home.join("sessions/2026/01/01/rollout-2026-01-01T00-00-00-empty.jsonl");
            std::fs::create_dir_all(empty.parent().expect("parent")).expect("dirs");
            std::fs::write(&empty, b"").expect("empty file");
            set_row_path(&db, target.id, &empty)
        }
        Fault::WrongArchivedFlag => flip_archived(&db, target.id),
    };
    assert_eq!(changed, 1, "the fault must change exactly one row");
}

#[derive(Serialize)]
struct RowView {
    rollout_path: PathBuf,
    archived: bool,
}

#[derive(Serialize)]
struct FaultEntry<'a> {
    thread: &'a str,
    scope: Scope,
    first: LookupResult,
    row_after_first: Option<RowView>,
    second: LookupResult,
}

/// Each fault on an active and on an archived thread, looked up twice in the thread's own
/// scope: the first lookup falls back and repairs, the second is a DB hit.
#[rstest]
#[case::stale_row(Fault::StaleRow)]
#[case::other_threads_file(Fault::OtherThreadsFile)]
#[case::missing_row(Fault::MissingRow)]
#[case::empty_file(Fault::EmptyFile)]
#[case::wrong_archived_flag(Fault::WrongArchivedFlag)]
fn lookups_after_a_fault(#[case] fault: Fault) {
    let home = materialize("basic");
    let handle = init(home.path());
    let threads = threads("basic");
    let pick = |label: &str| threads.iter().find(|t| t.label == label).expect("thread");
    let cases = [
        (pick("active-0"), pick("active-1"), Scope::Active),
        (pick("archived-0"), pick("archived-1"), Scope::Archived),
    ];
    let mut entries = Vec::new();
    for (target, other, scope) in cases {
        apply_fault(home.path(), fault, target, other, &handle);
        let id = target.id.to_string();
        let first = find_thread_path(Some(&handle), home.path(), &id, scope);
        let row_after_first = handle
            .get_thread(target.id)
            .expect("read")
            .map(|m| RowView {
                archived: m.is_archived(),
                rollout_path: m.rollout_path,
            });
        let second = find_thread_path(Some(&handle), home.path(), &id, scope);
        entries.push(FaultEntry {
            thread: &target.label,
            scope,
            first,
            row_after_first,
            second,
        });
    }
    let suffix = serde_json::to_value(fault).expect("name");
    settings(home.path(), suffix.as_str().expect("string")).bind(|| {
        insta::assert_json_snapshot!("fault", entries);
    });
}

#[derive(Serialize)]
struct Listing {
    active: Vec<ListPage>,
    archived: Vec<ListPage>,
}

fn all_pages(handle: Option<&StateDbHandle>, home: &Path, archived: bool) -> Vec<ListPage> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let req = ListRequest {
            archived,
            page_size: 2,
            cursor,
            ..ListRequest::default()
        };
        let page = list_threads(handle, home, &req).expect("list");
        cursor = page.next_cursor.clone();
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 20, "listing does not end");
    }
}

/// Pages of two, newest first, from the DB and from the files.
#[rstest]
fn listing_pages(
    #[values("basic", "odd", "offset")] fixture: &str,
    #[values(true, false)] with_handle: bool,
) {
    let home = materialize(fixture);
    let handle = with_handle.then(|| init(home.path()));
    let listing = Listing {
        active: all_pages(handle.as_ref(), home.path(), false),
        archived: all_pages(handle.as_ref(), home.path(), true),
    };
    let mode = if with_handle { "db" } else { "no-db" };
    settings(home.path(), &format!("{fixture}-{mode}")).bind(|| {
        insta::assert_json_snapshot!("listing", listing);
    });
}

/// A row whose file is gone is left out of its page, reported as stale, and not deleted.
#[test]
fn listing_reports_a_stale_row_without_deleting_it() {
    let home = materialize("basic");
    let handle = init(home.path());
    let threads = threads("basic");
    let target = threads
        .iter()
        .find(|t| t.label == "active-1")
        .expect("thread");
    let other = threads
        .iter()
        .find(|t| t.label == "active-0")
        .expect("thread");
    apply_fault(home.path(), Fault::StaleRow, target, other, &handle);
    let pages = all_pages(Some(&handle), home.path(), false);
    assert!(
        handle.get_thread(target.id).expect("read").is_some(),
        "row kept"
    );
    settings(home.path(), "basic-stale-row").bind(|| {
        insta::assert_json_snapshot!("listing", pages);
    });
}

/// The committed homes are exactly what the generators write (so they can be regenerated
/// and reviewed as code).
#[rstest]
fn committed_fixture_homes_match_their_generator(
    #[values("basic", "odd", "offset")] fixture: &str,
) {
    let fresh = tempfile::tempdir().expect("tempdir");
    fixture_homes::generate(fixture, fresh.path());
    let committed = files_under(&fixture_dir(fixture));
    let generated = files_under(fresh.path());
    assert_same_files(
        &committed,
        &generated,
        &format!("fixtures/{fixture} vs its generator"),
    );
}

/// Rewrites `fixtures/` from the generators. Deterministic: on an unchanged generator it
/// rewrites identical bytes.
#[test]
#[ignore = "rewrites fixtures/; run on purpose after changing a generator"]
fn regenerate_fixture_homes() {
    for fixture in fixture_homes::FIXTURES {
        let dir = fixture_dir(fixture);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove old fixture");
        }
        fixture_homes::generate(fixture, &dir);
    }
}
