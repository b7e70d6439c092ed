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
