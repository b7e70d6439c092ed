//! The modelled system's own startup tests, re-expressed against the reference (see the
//! reference study, state crate): `init_records_successful_sqlite_init_phases_to_explicit_telemetry`
//! and `init_removes_legacy_state_db_files`. Judged from the event log a process writes
//! and from the files left in the sqlite home.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{cfg, ctx_with_variant, home_with};
use serde_json::Value;
use statedb_harness::events::kinds;
use statedb_harness::state::legacy_files::legacy_names;
use statedb_harness::state_db::{open_existing, try_init};
use statedb_harness::variant::Variant;

fn phases(events: &std::sync::Mutex<Vec<statedb_harness::events::Event>>) -> Vec<(String, String)> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.kind == kinds::INIT_PHASE)
        .map(|e| {
            let s = |k: &str| {
                e.data
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string()
            };
            (s("phase"), s("status"))
        })
        .collect()
}

/// `init_records_successful_sqlite_init_phases_to_explicit_telemetry`: a successful start
/// records each phase once, as a success, in order — open, migrate, the post-init query,
/// legacy-file removal, the backfill gate (claim and run here), ready. Catches a phase that
/// is not recorded, recorded twice, out of order, or recorded as success when it failed.
#[test]
fn init_records_each_startup_phase_as_an_event_in_order() {
    let (home, _) = home_with(3, 1);
    let (ctx, events) = ctx_with_variant("init-phases", Variant::Reference);
    try_init(&ctx, &cfg(home.path())).expect("init");
    let want: Vec<(String, String)> = [
        "open_state",
        "migrate_state",
        "post_init_query",
        "remove_legacy_state_dbs",
        "backfill_gate",
        "ready",
    ]
    .iter()
    .map(|p| (p.to_string(), "success".to_string()))
    .collect();
    assert_eq!(phases(&events), want);
    // The gate phase really covered the claim and the backfill: they happened before it
    // was recorded.
    let log = events.lock().unwrap();
    let at = |kind: &str| log.iter().position(|e| e.kind == kind);
    let gate = log
        .iter()
        .position(|e| e.kind == kinds::INIT_PHASE && e.data["phase"] == "backfill_gate")
        .unwrap();
    assert!(at(kinds::LEASE_CLAIMED).is_some_and(|i| i < gate));
    assert!(at(kinds::BACKFILL_COMPLETE).is_some_and(|i| i < gate));
}

/// A start that fails records the phase it failed in, with Codex's error class, after the
/// phases that succeeded and with no later phase. Catches failures recorded as success,
/// attributed to the wrong phase, or followed by phases that never ran.
#[test]
fn init_records_the_phase_it_failed_in_with_its_error_class() {
    let (home, _) = home_with(1, 0);
    // A SQLite file with tables neither Codex nor the harness made: opening works,
    // migrating must refuse it.
    let db = home.path().join("state_5.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE someone_elses (x INTEGER);")
        .unwrap();
    let (ctx, events) = ctx_with_variant("init-phases-failed", Variant::Reference);
    let err = try_init(&ctx, &cfg(home.path())).expect_err("a foreign DB cannot start");
    assert!(err.to_string().contains("state_5.sqlite"), "{err}");
    assert_eq!(
        phases(&events),
        vec![
            ("open_state".to_string(), "success".to_string()),
            ("migrate_state".to_string(), "failed".to_string()),
        ]
    );
    let log = events.lock().unwrap();
    let failed = log
        .iter()
        .rfind(|e| e.kind == kinds::INIT_PHASE)
        .expect("phase event");
    assert_eq!(failed.data["error"], "migration", "{failed:?}");
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Files next to the state DB that are not legacy state DBs, though their names come close.
const UNRELATED: &[&str] = &[
    "state.sqlite_backup",
    "state_4.sqlite.bak",
    "state_4.sqlite-wal.old",
    "state_6.sqlite",
    "state_40.sqlite",
    "state_04.sqlite",
    "xstate_3.sqlite",
    "logs_1.sqlite",
    "state_5.sqlite.corrupt-20260101T000000.000Z",
    "notes.txt",
];

fn sqlite_home_with_legacy_files() -> (tempfile::TempDir, tempfile::TempDir) {
    let (home, _) = home_with(2, 0);
    let sqlite = tempfile::tempdir().unwrap();
    for name in legacy_names()
        .iter()
        .map(String::as_str)
        .chain(UNRELATED.iter().copied())
    {
        std::fs::write(sqlite.path().join(name), name.as_bytes()).unwrap();
    }
    // A directory under a legacy name is not a file to delete.
    std::fs::remove_file(sqlite.path().join("state_2.sqlite-journal")).unwrap();
    std::fs::create_dir(sqlite.path().join("state_2.sqlite-journal")).unwrap();
    std::fs::write(sqlite.path().join("state_2.sqlite-journal/inside"), b"x").unwrap();
    (home, sqlite)
}

/// `init_removes_legacy_state_db_files`: startup removes `state.sqlite` and every
/// `state_N.sqlite` with N below 5, with their `-wal` / `-shm` / `-journal`, and keeps every
/// other file of the sqlite home byte for byte. Catches removing nothing, removing by
/// prefix (`state_40`, `state_4.sqlite.bak`), removing the current or a newer DB, or
/// entering a directory named like a legacy file.
#[test]
fn init_removes_legacy_state_dbs_and_keeps_unrelated_files() {
    let (home, sqlite) = sqlite_home_with_legacy_files();
    let mut config = cfg(home.path());
    config.runtime.sqlite_home = sqlite.path().to_path_buf();
    let (ctx, events) = ctx_with_variant("legacy-files", Variant::Reference);
    try_init(&ctx, &config).expect("init");
    let left = names_in(sqlite.path());
    for legacy in legacy_names() {
        if legacy == "state_2.sqlite-journal" {
            assert!(sqlite.path().join(&legacy).join("inside").is_file());
            continue;
        }
        assert!(!left.contains(&legacy), "{legacy} was kept");
    }
    for name in UNRELATED {
        let bytes = std::fs::read(sqlite.path().join(name))
            .unwrap_or_else(|e| panic!("{name} was removed: {e}"));
        assert_eq!(bytes, name.as_bytes(), "{name} was changed");
    }
    assert!(left.contains("state_5.sqlite"));
    assert_eq!(
        common::count_events(&events, kinds::LEGACY_DB_REMOVED),
        1,
        "the removal is reported"
    );
}

/// Open-only never removes anything: the legacy files stay when the current DB is only
/// opened. Catches cleanup run by readers.
#[test]
fn open_only_leaves_legacy_state_dbs_alone() {
    let (home, sqlite) = sqlite_home_with_legacy_files();
    let mut config = cfg(home.path());
    config.runtime.sqlite_home = sqlite.path().to_path_buf();
    {
        // A complete DB to open, made in a scratch sqlite home (an init here would remove
        // the legacy files), then copied in.
        let scratch = tempfile::tempdir().unwrap();
        let mut made = cfg(home.path());
        made.runtime.sqlite_home = scratch.path().to_path_buf();
        let (ctx, _) = ctx_with_variant("make-db", Variant::Reference);
        drop(try_init(&ctx, &made).expect("init"));
        std::fs::copy(
            scratch.path().join("state_5.sqlite"),
            sqlite.path().join("state_5.sqlite"),
        )
        .unwrap();
    }
    let (ctx, _) = ctx_with_variant("open-only", Variant::Reference);
    let handle = open_existing(&ctx, &config).expect("open");
    assert!(handle.is_some());
    let left = names_in(sqlite.path());
    for legacy in legacy_names() {
        assert!(left.contains(&legacy), "open-only removed {legacy}");
    }
}

/// In a home that is not the harness's own (a user's), startup removes nothing: Codex
/// 0.169.0 keeps the legacy files there, and the reference never deletes what the user's own
/// Codex keeps. Catches the removal running in every home.
#[test]
fn init_in_a_users_home_keeps_legacy_state_dbs() {
    let (home, sqlite) = sqlite_home_with_legacy_files();
    let marker = home
        .path()
        .join(statedb_harness::state::creation::HOME_MARKER);
    assert!(marker.is_file(), "test homes carry the harness marker");
    std::fs::remove_file(&marker).unwrap();
    let mut config = cfg(home.path());
    config.runtime.sqlite_home = sqlite.path().to_path_buf();
    let (ctx, events) = ctx_with_variant("users-home", Variant::Reference);
    // A user's home gets no harness-made DB: bring one made elsewhere, as Codex would have.
    {
        let scratch = tempfile::tempdir().unwrap();
        let (h2, _) = home_with(1, 0);
        let mut made = cfg(h2.path());
        made.runtime.sqlite_home = scratch.path().to_path_buf();
        let (c2, _) = ctx_with_variant("make-db", Variant::Reference);
        drop(try_init(&c2, &made).expect("init"));
        std::fs::copy(
            scratch.path().join("state_5.sqlite"),
            sqlite.path().join("state_5.sqlite"),
        )
        .unwrap();
    }
    let _ = try_init(&ctx, &config);
    let left = names_in(sqlite.path());
    for legacy in legacy_names() {
        assert!(
            left.contains(&legacy),
            "init removed {legacy} in a user's home"
        );
    }
    assert_eq!(common::count_events(&events, kinds::LEGACY_DB_REMOVED), 0);
}
