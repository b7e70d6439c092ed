//! Property-based state machine test of lookup, read-repair and listing: random sequences of
//! rollout writes, archive moves, row and file damage, held write locks and re-inits with
//! stuck or expired leases, checked against a model of the files after every step (see
//! `prop_support`).
//!
//! `cargo test` runs a few cases; `PROPTEST_CASES=10000 cargo test --release --test
//! prop_state_machine` is the fuzzing mode. A failing case is shrunk and its seed appended
//! to `proptest-regressions/prop_state_machine.txt`; commit that file so every later run
//! replays the seed first.

mod common;
mod prop_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestError, TestRunner};
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use statedb_harness::layer::ReferenceLayer;
use statedb_harness::scenario::model::Scenario;
use statedb_harness::scenario::runner::{run_scenario, RunOptions, ScenarioOutcome, Status};
use statedb_harness::variant::Variant;

use prop_support::{
    recording_of, Model, ModelMachine, ReferenceImpl, StateDbMachine, TimestampCursor, Transition,
    TrustsDbPath, VariantChoice,
};

/// Cases of a plain `cargo test` run; `PROPTEST_CASES` overrides it.
const DEFAULT_CASES: u32 = 64;

/// Where failing seeds are kept. `SourceParallel` only works for files below a `lib.rs` /
/// `main.rs` directory and would fall back to `tests/prop_state_machine.proptest-regressions`
/// for an integration test, so the path is given directly, anchored at the manifest.
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/prop_state_machine.txt"
);

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    #[test]
    fn lookups_and_listings_agree_with_the_files(
        sequential 1..25 => StateDbMachine<ReferenceImpl>
    );
}

/// Runs the machine against implementation `V` with a fixed seed and returns the shrunk
/// counterexample, printing it. Panics if the run passes.
fn shrunk_failure<V: VariantChoice>() -> (String, Model, Vec<Transition>) {
    let config = Config {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(20_561),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    let strategy = ModelMachine::sequential_strategy(1..25);
    let outcome = runner.run(&strategy, |(initial, transitions, seen)| {
        StateDbMachine::<V>::test_sequential(config.clone(), initial, transitions, seen);
        Ok(())
    });
    let Err(TestError::Fail(reason, (initial, transitions, _))) = outcome else {
        panic!("the seeded bug was not caught: {outcome:?}");
    };
    println!("failure: {reason}");
    println!("initial files: {:?}", initial.files);
    for (i, t) in transitions.iter().enumerate() {
        println!("  {}. {t:?}", i + 1);
    }
    (reason.to_string(), initial, transitions)
}

/// The shrunk counterexample is short, and it is about the variant, not the harness: the
/// reference passes it.
fn assert_short_and_reference_passes(initial: Model, transitions: Vec<Transition>) {
    assert!(
        transitions.len() <= 5,
        "shrunk sequence too long ({}): {transitions:?}",
        transitions.len()
    );
    StateDbMachine::<ReferenceImpl>::test_sequential(Config::default(), initial, transitions, None);
}

/// The lookup invariants are not vacuous: a lookup that returns the DB path without reading
/// the file head is caught returning a file that is not the thread's.
#[test]
fn the_property_catches_a_lookup_that_trusts_the_db_path() {
    let (reason, initial, transitions) = shrunk_failure::<TrustsDbPath>();
    assert!(
        reason.contains("whose head is"),
        "failed for another reason than a foreign or empty file: {reason}"
    );
    assert!(
        transitions
            .iter()
            .any(|t| matches!(t, Transition::Lookup { .. })),
        "a lookup must be part of the counterexample"
    );
    assert_short_and_reference_passes(initial, transitions);
}

/// The listing invariants are not vacuous: a timestamp-only cursor loses one of the slots
/// whose `updated_at` ties.
#[test]
fn the_property_catches_a_listing_cursor_that_loses_ties() {
    let (reason, initial, transitions) = shrunk_failure::<TimestampCursor>();
    assert!(
        reason.contains("listing") && reason.contains("skipped or invented"),
        "failed for another reason than a lost thread: {reason}"
    );
    assert_short_and_reference_passes(initial, transitions);
}

/// Runs a scenario file against `variant` (run directories under `work`).
fn run_file(path: &Path, variant: Variant, work: &Path) -> ScenarioOutcome {
    let sc = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        seed: 11,
        variant,
        worker_binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_statedb-harness"))),
        work_dir: Some(work.to_path_buf()),
        ..RunOptions::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run_scenario(Arc::new(ReferenceLayer), &sc, path, &opts))
}

/// Cases of `recorded_sequences_pass_against_the_reference`; `RECORDED_CASES` overrides it.
const RECORDED_CASES: u32 = 8;

/// Recording is faithful where it claims to be: random sequences, recorded, are valid
/// scenarios the reference passes (every declared fault fires, and every expectation the
/// recording derives — found files, DB hits after repairs, complete listings, timed-out or
/// successful startups — is one the reference meets).
#[test]
fn recorded_sequences_pass_against_the_reference() {
    let cases = std::env::var("RECORDED_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RECORDED_CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(4_711),
        ..Config::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut runner = TestRunner::new(config);
    let strategy = ModelMachine::sequential_strategy(1..25);
    let outcome = runner.run(&strategy, |(initial, transitions, _)| {
        let recording = recording_of(&transitions, &initial, "recorded sequence");
        let path = recording.write(dir.path()).expect("write the scenario");
        let out = run_file(&path, Variant::Reference, &dir.path().join("runs"));
        let text = std::fs::read_to_string(&path).expect("read back");
        std::fs::remove_file(&path).expect("remove the scenario");
        proptest::prop_assert_eq!(out.status, Status::Pass, "{:?}\n{}", out.failures, text);
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}\n{runner}");
    }
}
