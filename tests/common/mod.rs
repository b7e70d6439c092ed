//! Shared helpers of the integration tests: temporary homes built from the fixture
//! generator, and configs with short timings.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use statedb_harness::fixture::{generate_home, FixtureOptions, FixtureThread};
use statedb_harness::process::ProcessContext;
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
