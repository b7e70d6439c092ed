//! The kill matrix judges why a scenario fails: a scenario the reference fails too is
//! reported as a reference failure and kills nothing, while an expected killer still
//! kills for its expected reason.

mod common;

use std::path::{Path, PathBuf};

use statedb_harness::mutants::{kill_matrix, Verdict};
use statedb_harness::scenario::catalog::Entry;
use statedb_harness::scenario::model::Scenario;
use statedb_harness::scenario::runner::RunOptions;
use statedb_harness::variant::Variant;

const FAILS_ON_REFERENCE: &str = r#"
name = "expects a fallback on a healthy index"
[home]
threads = 2
[[step]]
do = "lookup"
thread = "t0"
expect = { source = "filesystem" }
"#;

#[test]
fn a_scenario_failing_on_the_reference_kills_nothing() {
    let bad_file = Path::new("fails_on_reference.toml");
    let bad = Entry {
        file: bad_file.to_path_buf(),
        scenario: Scenario::parse(bad_file, FAILS_ON_REFERENCE).unwrap_or_else(|e| panic!("{e}")),
    };
    let killer_file =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/list_cursor_ties.toml");
    let killer = Entry {
        scenario: Scenario::load(&killer_file).unwrap_or_else(|e| panic!("{e}")),
        file: killer_file,
    };
    let work = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        work_dir: Some(work.path().to_path_buf()),
        ..common::scenario_options(7)
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let m = rt.block_on(kill_matrix(
        &[bad, killer],
        &opts,
        &[Variant::ListTimestampCursor],
        2,
    ));
    assert_eq!(m.reference_failures.len(), 1, "{:?}", m.reference_failures);
    assert_eq!(m.reference_failures[0].scenario, "fails_on_reference");
    let row = &m.variants[0];
    let verdict_of = |key: &str| {
        row.verdicts
            .iter()
            .find(|v| v.scenario == key)
            .map(|v| v.verdict.clone())
    };
    assert!(
        matches!(
            verdict_of("fails_on_reference"),
            Some(Verdict::ReferenceFailed { .. })
        ),
        "{:?}",
        row.verdicts
    );
    assert!(
        matches!(verdict_of("list_cursor_ties"), Some(Verdict::Killed { .. })),
        "{:?}",
        row.verdicts
    );
    assert_eq!(row.kills, 1, "only the expected killer counts");
    assert!(!m.is_clean(), "a reference failure must fail the run");
    // Its failures are expected and reported in the matrix: no run directory stays behind.
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert!(left.is_empty(), "run directories left behind: {left:?}");
}
