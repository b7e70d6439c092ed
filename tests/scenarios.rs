//! The scenario catalog as tests: one rstest case per file under `scenarios/`, run against
//! the reference with real process workers (this crate's binary). `cargo nextest run
//! --partition hash:K/N` shards them like any other test.

use std::path::PathBuf;
use std::sync::Arc;

use rstest::rstest;
use statedb_harness::layer::ReferenceLayer;
use statedb_harness::scenario::model::Scenario;
use statedb_harness::scenario::runner::{run_scenario, RunOptions, Status};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(32)
        .enable_all()
        .build()
        .expect("runtime")
}

#[rstest]
fn scenario(#[files("scenarios/*.toml")] path: PathBuf) {
    let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        seed: 20261126,
        worker_binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_statedb-harness"))),
        ..RunOptions::default()
    };
    let rt = runtime();
    let out = rt.block_on(run_scenario(Arc::new(ReferenceLayer), &sc, &path, &opts));
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
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
