//! The scenario engine itself, on small inline scenarios run against the reference with
//! real process workers (this crate's binary).

mod common;

use std::path::Path;

use statedb_harness::scenario::model::Scenario;
use statedb_harness::scenario::runner::{ScenarioOutcome, Status};

fn run(text: &str) -> ScenarioOutcome {
    let file = Path::new("inline.toml");
    let sc = Scenario::parse(file, text).unwrap_or_else(|e| panic!("{e}"));
    common::run_scenario_blocking(&sc, file, &common::scenario_options(7))
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

/// A recording becomes a scenario file that loads and passes against the reference: every
/// op kind, with the expectations the reference must meet (a lock blocks the repair of the
/// lookup it covers; the repair lands once the lock is gone; a stuck lease makes startup
/// time out and an expired one is taken over), ending with an index that matches the files.
#[test]
fn a_recorded_scenario_runs_end_to_end_against_the_reference() {
    use statedb_harness::faults::{Fault, RootName};
    use statedb_harness::scenario::model::HandleMode;
    use statedb_harness::scenario::record::{RecordedOp, Recording};
    use statedb_harness::scenario::runner::Status;
    use statedb_harness::thread::Scope;
    use std::time::Duration;

    let lookup = |thread: &str, scope, handle, then_db_hit| RecordedOp::Lookup {
        thread: thread.to_string(),
        scope,
        handle,
        expect_found: Some(true),
        then_db_hit,
    };
    let mut rec = Recording::new("recorded end to end", 3, 1);
    rec.description = "Built by the scenario_engine test from every op kind.".into();
    rec.index_whole = true;
    rec.ops = vec![
        RecordedOp::Note("a note lands in the description".into()),
        RecordedOp::Fault(Fault::SameTimestamp {
            threads: vec!["t0".into(), "t1".into()],
        }),
        lookup("t0", Scope::Active, HandleMode::Init, true),
        RecordedOp::Fault(Fault::StaleRow {
            thread: "t0".into(),
            points_to: "t1".into(),
        }),
        RecordedOp::HoldWriteLockDuringNext,
        lookup("t0", Scope::Active, HandleMode::OpenOnly, false),
        lookup("t0", Scope::Active, HandleMode::Init, true),
        RecordedOp::Fault(Fault::MoveRollout {
            thread: "t2".into(),
            to: RootName::Archived,
        }),
        lookup("t2", Scope::Archived, HandleMode::Init, true),
        RecordedOp::HoldWriteLockDuringNext,
        RecordedOp::ListAll {
            archived: true,
            page_size: 1,
            handle: HandleMode::OpenOnly,
            expect_all: true,
        },
        RecordedOp::Fault(Fault::StuckLease {
            expires_in: Duration::from_secs(600),
        }),
        RecordedOp::Init {
            expect_timeout: true,
        },
        lookup("t1", Scope::Any, HandleMode::None, false),
        RecordedOp::ListAll {
            archived: false,
            page_size: 1,
            handle: HandleMode::None,
            expect_all: true,
        },
        RecordedOp::Fault(Fault::ExpiredLease {
            age: Duration::from_secs(3600),
            checkpoint_after: None,
        }),
        RecordedOp::Init {
            expect_timeout: false,
        },
        RecordedOp::Fault(Fault::DeleteRow {
            thread: "t1".into(),
        }),
        lookup("t1", Scope::Active, HandleMode::Init, true),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let path = rec.write(dir.path()).expect("write the scenario");
    let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = common::run_scenario_blocking(&sc, &path, &common::scenario_options(7));
    let text = std::fs::read_to_string(&path).expect("read back");
    assert_eq!(
        out.status,
        Status::Pass,
        "{}\n{text}\nbundle: {:?}",
        out.failures.join("\n"),
        out.bundle
    );
    // The lock really covered the read: the repair under it was skipped, the next one landed.
    let repairs: Vec<(bool, bool)> = out
        .events
        .iter()
        .filter(|e| e.kind == "repair")
        .map(|e| (e.data["written"] == true, e.data["skipped"].is_string()))
        .collect();
    assert!(
        repairs.starts_with(&[(false, true), (true, false)]),
        "{repairs:?}"
    );
}

#[test]
fn waiting_for_an_event_from_a_worker_that_ended_fails_at_once() {
    let out = run(r#"
name = "wait for an event that never comes"
[home]
threads = 1
[[worker]]
name = "quick"
role = "init"
[[step]]
do = "start"
worker = "quick"
[[step]]
do = "wait_for"
worker = "quick"
event = "lease_claimed"
timeout = "10m"
"#);
    assert_eq!(out.status, Status::Fail);
    assert!(
        out.failures
            .iter()
            .any(|f| f.contains("worker quick ended without emitting 'lease_claimed'")),
        "{:?}",
        out.failures
    );
}

mod broken_layer;

#[test]
fn a_scenario_whose_run_panics_is_a_failure_with_its_message() {
    use statedb_harness::scenario::catalog::{run_all, Entry};
    let entry = |file: &str, name: &str, db: &str| Entry {
        file: file.into(),
        scenario: Scenario::parse(
            Path::new(file),
            &format!(
                "name = \"{name}\"\n[home]\nthreads = 1\ndb = \"{db}\"\n\
                 [[step]]\ndo = \"sleep\"\nfor = \"1ms\"\n"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}")),
    };
    let entries = vec![
        entry("calm.toml", "calm", "none"),
        entry("panics.toml", "panics", "indexed"),
        entry("calm2.toml", "calm again", "none"),
    ];
    let layer = broken_layer::BrokenLayer::new(broken_layer::Bends {
        init: Some(std::sync::Arc::new(|_, _| panic!("init exploded"))),
        ..Default::default()
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcomes = rt.block_on(run_all(
        layer,
        &entries,
        &common::scenario_options(7),
        2,
        |_| {},
    ));
    let summary: Vec<(&str, Status)> = outcomes
        .iter()
        .map(|o| (o.name.as_str(), o.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("calm", Status::Pass),
            ("panics", Status::Fail),
            ("calm again", Status::Pass)
        ]
    );
    assert_eq!(
        outcomes[1].failures,
        vec!["the scenario run panicked: init exploded".to_string()]
    );
}

/// Two workers paused at one failpoint; the scenario releases RELEASED and then joins
/// JOINED within a short timeout.
const TWO_PAUSED: &str = r#"
name = "release one of two paused workers"
[home]
threads = 2
db = "fresh"
[[worker]]
name = "a"
role = "init"
failpoints = ["init.after_open=pause(5s)"]
[[worker]]
name = "b"
role = "init"
failpoints = ["init.after_open=pause(5s)"]
[[step]]
do = "start"
worker = "a"
[[step]]
do = "start"
worker = "b"
[[step]]
do = "wait_for"
worker = "a"
event = "failpoint:init.after_open"
[[step]]
do = "wait_for"
worker = "b"
event = "failpoint:init.after_open"
[[step]]
do = "release"
worker = "RELEASED"
failpoint = "init.after_open"
[[step]]
do = "join"
worker = "JOINED"
timeout = "2s"
expect = { ok = true }
"#;

#[test]
fn a_release_frees_only_the_worker_it_names() {
    let out = run(&TWO_PAUSED.replace("RELEASED", "a").replace("JOINED", "a"));
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    // Releasing a leaves b paused: joining b must time out, not pass.
    let out = run(&TWO_PAUSED.replace("RELEASED", "a").replace("JOINED", "b"));
    assert!(
        out.failures
            .iter()
            .any(|f| f.contains("join b") && f.contains("worker b did not finish within 2s")),
        "{:?}",
        out.failures
    );
}

#[test]
fn an_unknown_failpoint_name_in_a_scenario_file_names_the_file_and_the_valid_names() {
    let err = Scenario::parse(
        Path::new("scenarios/typo.toml"),
        r#"
name = "typo"
[[worker]]
name = "w"
role = "init"
failpoints = ["backfill.after_clam=pause"]
[[step]]
do = "start"
worker = "w"
"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("scenarios/typo.toml"), "{err}");
    assert!(
        err.contains("unknown failpoint 'backfill.after_clam'"),
        "{err}"
    );
    assert!(err.contains("backfill.after_claim"), "{err}");
}

#[test]
fn a_catalog_run_returns_only_once_every_passing_run_directory_is_gone() {
    use statedb_harness::scenario::catalog::{run_all, Entry};
    use statedb_harness::scenario::runner::RunOptions;
    let entries: Vec<Entry> = (0..3)
        .map(|i| {
            let file = format!("calm{i}.toml");
            Entry {
                scenario: Scenario::parse(
                    Path::new(&file),
                    &format!(
                        "name = \"calm {i}\"\n[home]\nthreads = 20\ndb = \"indexed\"\n\
                         [[step]]\ndo = \"sleep\"\nfor = \"1ms\"\n"
                    ),
                )
                .unwrap_or_else(|e| panic!("{e}")),
                file: file.into(),
            }
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        work_dir: Some(work.path().to_path_buf()),
        ..common::scenario_options(7)
    };
    let layer = std::sync::Arc::new(statedb_harness::layer::ReferenceLayer);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcomes = rt.block_on(run_all(layer, &entries, &opts, 1, |_| {}));
    assert!(
        outcomes.iter().all(|o| o.status == Status::Pass),
        "{outcomes:?}"
    );
    // Removed on threads of their own, and all gone by the time the catalog run returned.
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
