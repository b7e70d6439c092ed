//! Reports of a scenario run, as separate consumers of the runner's outcomes: a human table,
//! JSON, and JUnit XML. The closing line of the human report is `N passed, N failed`.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::json;

use super::runner::{ScenarioOutcome, Status};
use crate::events::Event;

/// Output format of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Human,
    Json,
    Junit,
}

pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub wall_ms: u64,
    pub declared_wait_ms: u64,
}

pub fn totals(outcomes: &[ScenarioOutcome], wall: Duration) -> Totals {
    Totals {
        passed: outcomes.iter().filter(|o| o.status == Status::Pass).count(),
        failed: outcomes.iter().filter(|o| o.status == Status::Fail).count(),
        skipped: outcomes.iter().filter(|o| o.status == Status::Skip).count(),
        wall_ms: wall.as_millis() as u64,
        declared_wait_ms: outcomes.iter().map(|o| o.declared_wait_ms).sum(),
    }
}

pub fn human(outcomes: &[ScenarioOutcome], t: &Totals) -> String {
    let mut s = String::new();
    let width = outcomes
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(10)
        .min(90);
    s.push_str(&format!(
        "{:<6} {:>8}  {:<width$}  file\n",
        "status", "time", "scenario"
    ));
    for o in outcomes {
        let status = match o.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        };
        s.push_str(&format!(
            "{status:<6} {:>6}ms  {:<width$}  {}\n",
            o.duration_ms,
            o.name,
            o.file.display()
        ));
    }
    for o in outcomes.iter().filter(|o| o.status != Status::Pass) {
        s.push('\n');
        match o.status {
            Status::Skip => s.push_str(&format!(
                "SKIPPED {}: {}\n",
                o.name,
                o.skipped_reason.as_deref().unwrap_or("")
            )),
            _ => {
                s.push_str(&format!("FAILED {} ({})\n", o.name, o.file.display()));
                for f in &o.failures {
                    s.push_str(&format!("  - {f}\n"));
                }
                s.push_str(&format!("  replay: {}\n", o.replay_command()));
                if let Some(b) = &o.bundle {
                    s.push_str(&format!("  failure bundle: {}\n", b.display()));
                }
            }
        }
    }
    let share = if t.wall_ms > 0 {
        format!(
            "; declared waits {} ms summed over scenarios",
            t.declared_wait_ms
        )
    } else {
        String::new()
    };
    s.push_str(&format!("\nwall time {} ms{share}\n", t.wall_ms));
    s.push_str(&format!(
        "{} passed, {} failed, {} skipped\n",
        t.passed, t.failed, t.skipped
    ));
    s
}

pub fn json(outcomes: &[ScenarioOutcome], t: &Totals, seed: u64, variant: &str) -> String {
    let scenarios: Vec<_> = outcomes
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "file": o.file,
                "status": o.status,
                "seed": o.seed,
                "duration_ms": o.duration_ms,
                "declared_wait_ms": o.declared_wait_ms,
                "failures": o.failures,
                "faults": o.faults,
                "skipped_reason": o.skipped_reason,
                "bundle": o.bundle,
                "replay": (o.status == Status::Fail).then(|| o.replay_command()),
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({
        "seed": seed,
        "variant": variant,
        "scenarios": scenarios,
        "summary": {
            "passed": t.passed,
            "failed": t.failed,
            "skipped": t.skipped,
            "wall_ms": t.wall_ms,
            "declared_wait_ms": t.declared_wait_ms,
        },
    }))
    .unwrap_or_default()
}

pub fn junit(outcomes: &[ScenarioOutcome], t: &Totals) -> Result<String, String> {
    let mut report = Report::new("statedb-harness");
    let mut suite = TestSuite::new("scenarios");
    for o in outcomes {
        let status = match o.status {
            Status::Pass => TestCaseStatus::success(),
            Status::Skip => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(o.skipped_reason.clone().unwrap_or_default());
                s
            }
            Status::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(o.failures.first().cloned().unwrap_or_default());
                s.set_description(format!(
                    "{}\nreplay: {}",
                    o.failures.join("\n"),
                    o.replay_command()
                ));
                s
            }
        };
        let mut case = TestCase::new(o.name.clone(), status);
        case.set_classname(o.file.display().to_string());
        case.set_time(Duration::from_millis(o.duration_ms));
        suite.add_test_case(case);
    }
    suite.set_time(Duration::from_millis(t.wall_ms));
    report.add_test_suite(suite);
    report.to_string().map_err(|e| e.to_string())
}

/// The event log with everything that legitimately differs between two runs of one seed
/// removed (times, owner tokens, absolute paths, heartbeats), per worker in order.
pub fn normalized_events(events: &[Event]) -> BTreeMap<String, Vec<String>> {
    // Free texts (`error`, a repair's `skipped` reason) name the run directory.
    const VOLATILE: [&str; 9] = [
        "at_ms",
        "now_ms",
        "owner",
        "db_owner",
        "waited_ms",
        "path",
        "db",
        "error",
        "skipped",
    ];
    let mut per_worker: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        let heartbeat = e.kind == "fenced_write"
            && e.data.get("write").and_then(|v| v.as_str()) == Some("heartbeat");
        // Heartbeats and the gate's polls repeat as often as time allows.
        if heartbeat
            || e.kind == "lease_heartbeat"
            || e.kind == "gate_waiting"
            || e.kind == "lease_claim_refused"
        {
            continue;
        }
        let mut data = e.data.clone();
        if let Some(obj) = data.as_object_mut() {
            for k in VOLATILE {
                obj.remove(k);
            }
        }
        per_worker
            .entry(e.worker.clone())
            .or_default()
            .push(format!("{} {}", e.kind, data));
    }
    per_worker
}

/// The first difference between two normalized logs, if any.
pub fn first_difference(
    a: &BTreeMap<String, Vec<String>>,
    b: &BTreeMap<String, Vec<String>>,
) -> Option<String> {
    let workers: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for w in workers {
        let (x, y) = (
            a.get(w).cloned().unwrap_or_default(),
            b.get(w).cloned().unwrap_or_default(),
        );
        for i in 0..x.len().max(y.len()) {
            if x.get(i) != y.get(i) {
                return Some(format!(
                    "worker {w}, event {}: first run {:?}, second run {:?}",
                    i + 1,
                    x.get(i),
                    y.get(i)
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(data: serde_json::Value) -> Event {
        Event {
            at_ms: 1,
            worker: "w".into(),
            kind: "repair".into(),
            data,
        }
    }

    #[test]
    fn a_skipped_repair_naming_its_run_directory_normalizes_equal_but_written_counts() {
        let skipped = |dir: &str, written: bool| {
            event(json!({"thread_id": "t", "written": written,
                "skipped": format!("repair failed: state db at {dir}/state_5.sqlite is busy")}))
        };
        let a = normalized_events(&[skipped("/tmp/statedb-scenario-a", false)]);
        let b = normalized_events(&[skipped("/tmp/statedb-scenario-b", false)]);
        assert_eq!(first_difference(&a, &b), None);
        let c = normalized_events(&[skipped("/tmp/statedb-scenario-b", true)]);
        assert!(first_difference(&a, &c).is_some());
    }
}
