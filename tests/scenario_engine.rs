//! The scenario engine itself, on small inline scenarios run against the reference with
//! real process workers (this crate's binary).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use statedb_harness::layer::ReferenceLayer;
use statedb_harness::scenario::model::Scenario;
use statedb_harness::scenario::runner::{run_scenario, RunOptions, ScenarioOutcome};

fn run(text: &str) -> ScenarioOutcome {
    let file = Path::new("inline.toml");
    let sc = Scenario::parse(file, text).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        seed: 7,
        worker_binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_statedb-harness"))),
        ..RunOptions::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run_scenario(Arc::new(ReferenceLayer), &sc, file, &opts))
}

const EXIT_AFTER_OPEN: &str = r#"
name = "exit failpoint"
[home]
threads = 2
db = "fresh"
[[worker]]
name = "quitter"
kind = "process"
role = "init"
failpoints = ["init.after_open=exit(3)"]
[[step]]
do = "start"
worker = "quitter"
[[step]]
do = "join"
worker = "quitter"
expect = { ok = false, killed = KILLED, exit_code = 3 }
"#;

#[test]
fn a_process_ended_by_an_exit_failpoint_is_joined_as_killed() {
    let out = run(&EXIT_AFTER_OPEN.replace("KILLED", "true"));
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let out = run(&EXIT_AFTER_OPEN.replace("KILLED", "false"));
    assert!(
        out.failures
            .iter()
            .any(|f| f.contains("expected killed = false, got true (exit code Some(3))")),
        "{:?}",
        out.failures
    );
}

#[test]
fn a_wrong_exit_code_is_reported_with_the_real_one() {
    let out = run(&EXIT_AFTER_OPEN
        .replace("KILLED", "true")
        .replace("exit_code = 3", "exit_code = 4"));
    assert!(
        out.failures
            .iter()
            .any(|f| f.contains("expected exit_code = 4, got 3")),
        "{:?}",
        out.failures
    );
}

#[test]
fn a_process_that_reports_is_not_killed() {
    let out = run(r#"
name = "plain init"
[home]
threads = 2
db = "fresh"
[[worker]]
name = "starter"
kind = "process"
role = "init"
[[step]]
do = "start"
worker = "starter"
[[step]]
do = "join"
worker = "starter"
expect = { ok = true, killed = false, exit_code = 0, status = "complete" }
"#);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
}

const UNVERIFIED_LAST_RESORT: &str = r#"
name = "path = row"
[home]
threads = 2
[[fault]]
kind = "FAULT"
thread = "t0"
FIELD
[[fault]]
kind = "delete_file"
thread = "t0"
[[step]]
do = "lookup"
thread = "t0"
handle = "HANDLE"
expect = { path = "row" }
"#;

#[test]
fn path_row_is_the_path_the_row_holds() {
    // The last-resort answer is the row's own (unverifiable) file, which no alias names.
    let text = UNVERIFIED_LAST_RESORT
        .replace("FAULT", "unverifiable_row")
        .replace("FIELD", "content = \"empty\"")
        .replace("HANDLE", "init");
    let out = run(&text);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    // Without a DB the lookup finds nothing, while the row still names the odd file.
    let out = run(&text.replace("\"init\"", "\"none\""));
    assert!(
        out.failures.iter().any(|f| f.contains(
            "expected path = the row's path sessions/odd/custom-rollout-name-1.jsonl, got none"
        )),
        "{:?}",
        out.failures
    );
}

#[test]
fn path_row_without_a_row_says_so() {
    let text = UNVERIFIED_LAST_RESORT
        .replace("FAULT", "delete_row")
        .replace("FIELD", "")
        .replace("HANDLE", "init");
    let out = run(&text);
    assert!(
        out.failures
            .iter()
            .any(|f| f.contains("expected path = the row's path, but the thread has no row")),
        "{:?}",
        out.failures
    );
}

#[test]
fn events_of_a_last_one_shot_step_reach_the_checks() {
    // The final step's backfill_complete event must be in the log the oracle reads; it
    // used to be lost now and then when the step's forwarder had not run yet.
    let text = r#"
name = "last step backfills"
[home]
threads = 3
db = "fresh"
[[step]]
do = "init"
expect = { ok = true, backfill_ran = true }
[[check]]
oracle = "one_backfill_run"
"#;
    let runs: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || (0..25).map(|_| run(text)).collect::<Vec<_>>()))
        .collect();
    for r in runs {
        for out in r.join().expect("runner thread") {
            assert!(out.failures.is_empty(), "{:?}", out.failures);
        }
    }
}
