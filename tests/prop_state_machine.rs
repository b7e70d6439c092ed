//! Property-based state machine test of lookup, read-repair and listing: random sequences of
//! rollout writes, archive moves, row and file damage, held write locks and re-inits with
//! stuck or expired leases, checked against a model of the files after every step (see
//! `prop_support`).
//!
//! `cargo test` runs a few cases; `PROPTEST_CASES=10000 cargo test --release --test
//! prop_state_machine` is the fuzzing mode. A failing case is shrunk and its seed appended
//! to `proptest-regressions/prop_state_machine.txt`; commit that file so every later run
//! replays the seed first. The shrunk sequence is also written as a scenario file under
//! `target/tmp/fuzz-scenarios/` (the panic message names it): copy it into `scenarios/`
//! to keep the finding as a permanent scenario (see `scenarios/README.md`).

mod common;
mod prop_support;

use std::path::{Path, PathBuf};

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestError, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use statedb_harness::scenario::model::Scenario;
use statedb_harness::scenario::runner::{RunOptions, ScenarioOutcome, Status};
use statedb_harness::variant::Variant;

use prop_support::{
    recording_of, Model, ModelMachine, ReferenceImpl, StateDbMachine, TimestampCursor, Transition,
    TrustsDbPath, TrustsIndex, VariantChoice,
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

/// Where the main property writes the scenario of a failing case.
fn findings_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-scenarios")
}

/// A failing case: the failure, the shrunk input, and the scenario file written for it.
struct Finding {
    reason: String,
    initial: Model,
    transitions: Vec<Transition>,
    scenario: Result<PathBuf, String>,
    /// The runner's statistics (what `proptest!` prints after a failure).
    runner: String,
}

/// Runs the machine against implementation `V`: what `prop_state_machine!` expands to (a
/// `TestRunner` over the machine's sequential strategy with this file as the source, so a
/// configured regressions file is replayed first and appended to on failure), plus, on
/// failure, the shrunk sequence written as a scenario file into `findings`. `None` when
/// every case passes.
fn run_machine<V: VariantChoice>(config: Config, findings: &Path) -> Option<Finding> {
    let config = Config {
        source_file: Some(file!()),
        ..config
    };
    let mut runner = TestRunner::new(config.clone());
    let strategy = ModelMachine::sequential_strategy(1..25);
    let outcome = runner.run(&strategy, |(initial, transitions, seen)| {
        StateDbMachine::<V>::test_sequential(config.clone(), initial, transitions, seen);
        Ok(())
    });
    match outcome {
        Ok(()) => None,
        Err(TestError::Fail(reason, (initial, transitions, _))) => {
            let last = transitions.last().map(|t| format!("{t:?}"));
            let name = format!(
                "state machine finding ({}): {}",
                V::VARIANT,
                last.unwrap_or_default()
            );
            let mut recording = recording_of(&transitions, &initial, &name);
            recording
                .description
                .push_str(&format!("\n\nFailure ({}): {reason}", V::VARIANT));
            Some(Finding {
                reason: reason.to_string(),
                scenario: recording.write(findings).map_err(|e| e.to_string()),
                initial,
                transitions,
                runner: runner.to_string(),
            })
        }
        Err(e) => panic!("{e}\n{runner}"),
    }
}

#[test]
fn lookups_and_listings_agree_with_the_files() {
    if let Some(f) = run_machine::<ReferenceImpl>(config(), &findings_dir()) {
        let scenario = match &f.scenario {
            Ok(path) => format!("regression scenario written to {}", path.display()),
            Err(e) => format!("the regression scenario could not be written: {e}"),
        };
        panic!(
            "Test failed: {}.\nminimal failing input: initial = {:?}, transitions = {:#?}\n{scenario}\n{}",
            f.reason, f.initial, f.transitions, f.runner
        );
    }
}

/// Runs the machine against implementation `V` with a fixed seed and returns the shrunk
/// counterexample with the scenario file written for it into `findings`, printing both.
/// Panics if the run passes.
fn shrunk_failure<V: VariantChoice>(findings: &Path) -> Finding {
    let config = Config {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(20_561),
        ..Config::default()
    };
    let Some(finding) = run_machine::<V>(config, findings) else {
        panic!("the seeded bug was not caught");
    };
    println!("failure: {}", finding.reason);
    println!("initial files: {:?}", finding.initial.files);
    for (i, t) in finding.transitions.iter().enumerate() {
        println!("  {}. {t:?}", i + 1);
    }
    finding
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

/// Runs a scenario file against `variant` (run directories under `work`).
fn run_file(path: &Path, variant: Variant, work: &Path) -> ScenarioOutcome {
    let sc = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        variant,
        work_dir: Some(work.to_path_buf()),
        ..common::scenario_options(11)
    };
    common::run_scenario_blocking(&sc, path, &opts)
}

/// The scenario file written for a variant's shrunk counterexample is one that the variant
/// fails (for `expected_failure`) and the reference passes: the finding is now a permanent
/// regression scenario.
fn assert_a_regression_scenario<V: VariantChoice>(finding: &Finding, expected_failure: &str) {
    let path = finding.scenario.as_ref().expect("the scenario was written");
    let text = std::fs::read_to_string(path).expect("read the scenario back");
    println!("scenario written to {}:\n{text}", path.display());
    let work = tempfile::tempdir().expect("tempdir");
    let bad = run_file(path, V::VARIANT, work.path());
    assert_eq!(bad.status, Status::Fail, "{} passes:\n{text}", V::VARIANT);
    assert!(
        bad.failures.iter().any(|f| f.contains(expected_failure)),
        "{} fails for another reason: {:?}\n{text}",
        V::VARIANT,
        bad.failures
    );
    println!("{} fails it: {:?}", V::VARIANT, bad.failures);
    let good = run_file(path, Variant::Reference, work.path());
    assert_eq!(
        good.status,
        Status::Pass,
        "the reference does not pass: {:?}\n{text}",
        good.failures
    );
}

/// The lookup invariants are not vacuous: a lookup that returns the DB path without reading
/// the file head is caught returning a file that is not the thread's. The finding becomes a
/// scenario the variant fails and the reference passes.
#[test]
fn the_property_catches_a_lookup_that_trusts_the_db_path() {
    let findings = tempfile::tempdir().expect("tempdir");
    let finding = shrunk_failure::<TrustsDbPath>(findings.path());
    assert!(
        finding.reason.contains("whose head is"),
        "failed for another reason than a foreign or empty file: {}",
        finding.reason
    );
    assert!(
        finding
            .transitions
            .iter()
            .any(|t| matches!(t, Transition::Lookup { .. })),
        "a lookup must be part of the counterexample"
    );
    assert_a_regression_scenario::<TrustsDbPath>(
        &finding,
        "as verified, but its head is unreadable",
    );
    assert_short_and_reference_passes(finding.initial, finding.transitions);
}

/// The listing invariants are not vacuous: a timestamp-only cursor loses one of the slots
/// whose `updated_at` ties. The finding becomes a scenario the variant fails and the
/// reference passes.
#[test]
fn the_property_catches_a_listing_cursor_that_loses_ties() {
    let findings = tempfile::tempdir().expect("tempdir");
    let finding = shrunk_failure::<TimestampCursor>(findings.path());
    assert!(
        finding.reason.contains("listing") && finding.reason.contains("skipped or invented"),
        "failed for another reason than a lost thread: {}",
        finding.reason
    );
    assert_a_regression_scenario::<TimestampCursor>(&finding, "listing skipped");
    assert_short_and_reference_passes(finding.initial, finding.transitions);
}

/// The "listing equals the files" property is not vacuous: a listing that trusts the index
/// alone misses a rollout that appeared (or lost its row) behind the DB's back.
#[test]
fn the_property_catches_a_listing_that_trusts_the_index() {
    let findings = tempfile::tempdir().expect("tempdir");
    let finding = shrunk_failure::<TrustsIndex>(findings.path());
    assert!(
        finding
            .reason
            .contains("skipped rollouts on disk that had no row"),
        "failed for another reason than an unlisted rollout: {}",
        finding.reason
    );
    assert!(
        finding
            .transitions
            .iter()
            .any(|t| matches!(t, Transition::ListAll { .. })),
        "a listing must be part of the counterexample"
    );
    assert_short_and_reference_passes(finding.initial, finding.transitions);
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
