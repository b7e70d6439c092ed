//! Shared helpers of the integration tests: temporary homes built from the fixture
//! generator, and configs with short timings.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use uuid::Uuid;

use statedb_harness::fixture::{generate_home, FixtureOptions, FixtureThread};
use statedb_harness::process::ProcessContext;
use statedb_harness::state::STATE_DB_FILENAME;
use statedb_harness::state_db::StateDbConfig;
use statedb_harness::timing::Timings;

/// A temporary codex home with `active` + `archived` generated rollouts.
pub fn home_with(active: usize, archived: usize) -> (tempfile::TempDir, Vec<FixtureThread>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let threads = generate_home(
        dir.path(),
        &FixtureOptions {
            threads: active,
            archived,
            seed: 7,
            ..FixtureOptions::default()
        },
    )
    .expect("fixture home");
    (dir, threads)
}

/// Short timings: 500ms lease, 10ms poll, 1s wait.
pub fn cfg(home: &Path) -> StateDbConfig {
    StateDbConfig::new(home, Timings::short())
}

pub fn cfg_with(home: &Path, f: impl FnOnce(&mut Timings)) -> StateDbConfig {
    let mut t = Timings::short();
    f(&mut t);
    StateDbConfig::new(home, t)
}

pub fn ctx(name: &str) -> Arc<ProcessContext> {
    ProcessContext::plain(name)
}

pub const MS: Duration = Duration::from_millis(1);

/// A temporary home with generated rollouts, initialised (and backfilled) by `ctx`.
pub fn indexed_in(
    ctx: &Arc<ProcessContext>,
    active: usize,
    archived: usize,
) -> (
    tempfile::TempDir,
    Vec<FixtureThread>,
    statedb_harness::state::StateDbHandle,
) {
    let (home, threads) = home_with(active, archived);
    let handle = statedb_harness::state_db::try_init(ctx, &cfg(home.path()))
        .expect("init")
        .handle;
    (home, threads, handle)
}

/// Runs one SQL statement on the handle's connection (test setup), returning the changes.
pub fn exec_sql(
    handle: &statedb_harness::state::StateDbHandle,
    sql: &str,
    params: impl rusqlite::Params,
) -> usize {
    handle
        .read("test setup", |c| c.execute(sql, params))
        .expect("test sql")
}

/// A context running `variant`, collecting its events in memory.
pub fn ctx_with_variant(
    name: &str,
    variant: statedb_harness::variant::Variant,
) -> (
    Arc<ProcessContext>,
    Arc<std::sync::Mutex<Vec<statedb_harness::events::Event>>>,
) {
    let (sink, events) = statedb_harness::events::EventSink::memory();
    let ctx = ProcessContext::builder()
        .name(name)
        .variant(variant)
        .events(sink)
        .build();
    (ctx, events)
}

/// How many events of `kind` were collected.
pub fn count_events(
    events: &std::sync::Mutex<Vec<statedb_harness::events::Event>>,
    kind: &str,
) -> usize {
    events
        .lock()
        .expect("events")
        .iter()
        .filter(|e| e.kind == kind)
        .count()
}

/// Every regular file under `dir`, by path relative to it, with its bytes.
pub fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                out.insert(rel, std::fs::read(&path).expect("read file"));
            }
        }
    }
    out
}

/// Asserts that two `files_under` maps hold the same files with the same bytes, naming
/// the first difference (the bytes themselves are not printed).
pub fn assert_same_files(
    actual: &BTreeMap<PathBuf, Vec<u8>>,
    expected: &BTreeMap<PathBuf, Vec<u8>>,
    what: &str,
) {
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{what}: the set of files differs"
    );
    for (path, bytes) in expected {
        assert!(
            actual[path] == *bytes,
            "{what}: bytes of {} differ",
            path.display()
        );
    }
}

/// A connection to the home's state DB from outside the process under test: the fault
/// injector's. `synchronous = NORMAL` like the reference's own connections (no fsync per
/// commit in WAL mode).
pub fn outside_connection(home: &Path) -> Connection {
    let conn = Connection::open(home.join(STATE_DB_FILENAME)).expect("open state db");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("synchronous");
    conn
}

/// Row fault: points the row of `id` at `path`. Returns the rows changed.
pub fn set_row_path(conn: &Connection, id: Uuid, path: &Path) -> usize {
    conn.execute(
        "UPDATE threads SET rollout_path = ?1 WHERE id = ?2",
        (path.to_string_lossy(), id.to_string()),
    )
    .expect("set rollout_path")
}

/// Row fault: flips the row's archived flag (and `archived_at` with it), keeping its path.
pub fn flip_archived(conn: &Connection, id: Uuid) -> usize {
    conn.execute(
        "UPDATE threads SET archived = 1 - archived,
            archived_at = CASE WHEN archived = 0 THEN 1 ELSE NULL END
         WHERE id = ?1",
        [id.to_string()],
    )
    .expect("flip archived")
}

/// Row fault: deletes the row.
pub fn delete_row(conn: &Connection, id: Uuid) -> usize {
    conn.execute("DELETE FROM threads WHERE id = ?1", [id.to_string()])
        .expect("delete row")
}

/// Scenario run options with this crate's binary as the process-worker binary, and run
/// directories (a failing run's bundle stays) under cargo's scratch directory for tests,
/// `target/tmp`, not the system temp dir.
pub fn scenario_options(seed: u64) -> statedb_harness::scenario::runner::RunOptions {
    statedb_harness::scenario::runner::RunOptions {
        seed,
        worker_binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_statedb-harness"))),
        work_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("scenario-runs")),
        ..Default::default()
    }
}

/// Runs one scenario against the reference layer on a fresh two-thread runtime.
pub fn run_scenario_blocking(
    sc: &statedb_harness::scenario::model::Scenario,
    file: &Path,
    opts: &statedb_harness::scenario::runner::RunOptions,
) -> statedb_harness::scenario::runner::ScenarioOutcome {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(32)
        .enable_all()
        .build()
        .expect("runtime");
    let out = rt.block_on(statedb_harness::scenario::runner::run_scenario(
        Arc::new(statedb_harness::layer::ReferenceLayer),
        sc,
        file,
        opts,
    ));
    rt.shutdown_timeout(Duration::from_secs(2));
    out
}
