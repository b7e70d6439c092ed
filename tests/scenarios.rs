//! The scenario catalog as tests: one rstest case per file under `scenarios/`, run against
//! the reference with real process workers (this crate's binary). `cargo nextest run
//! --partition hash:K/N` shards them like any other test.

mod common;

use std::path::PathBuf;

use rstest::rstest;
use statedb_harness::scenario::model::Scenario;
use statedb_harness::scenario::runner::Status;

#[rstest]
fn scenario(#[files("scenarios/*.toml")] path: PathBuf) {
    let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = common::run_scenario_blocking(&sc, &path, &common::scenario_options(20261126));
    assert_ne!(
        out.status,
        Status::Fail,
        "{}:\n  {}\nreplay: {}\nbundle: {:?}",
        out.name,
        out.failures.join("\n  "),
        out.replay_command(),
        out.bundle
    );
    assert_ne!(
        out.status,
        Status::Skip,
        "{}: skipped: {:?}",
        out.name,
        out.skipped_reason
    );
}
