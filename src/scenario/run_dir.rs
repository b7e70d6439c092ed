//! The directory a scenario runs in, shared by every target: the home it describes (the
//! fixture threads, aliased `t0..` / `a0..`, and its extra files), the run directory, and
//! the failure bundle written into it. A directory that is not kept (see
//! [`super::outcome::Bundles`]) is removed on tokio's blocking pool, awaited before the
//! scenario's outcome is returned.

use std::path::Path;

use super::model::Scenario;
use super::outcome::{FaultCoverage, RunOptions, ScenarioOutcome};
use crate::faults::{HomeModel, ThreadEntry};
use crate::fixture::{generate_home, FixtureOptions};
use crate::rollout::layout::Root;

/// Writes the scenario's home: the fixture threads (aliased `t0..`, `a0..`) and its extra
/// files. Shared by every target.
pub(crate) fn build_home(sc: &Scenario, seed: u64, home: &mut HomeModel) -> Result<(), String> {
    let threads = generate_home(
        &home.codex_home,
        &FixtureOptions {
            threads: sc.home.threads,
            archived: sc.home.archived,
            seed,
            ..FixtureOptions::default()
        },
    )
    .map_err(|e| format!("cannot generate the home: {e}"))?;
    let (mut active, mut archived) = (0, 0);
    for t in threads {
        let alias = if t.root == Root::Archived {
            archived += 1;
            format!("a{}", archived - 1)
        } else {
            active += 1;
            format!("t{}", active - 1)
        };
        home.threads.insert(
            alias,
            ThreadEntry {
                id: t.id,
                path: t.path,
                root: t.root,
            },
        );
    }
    for extra in &sc.home.files {
        if extra.path.is_absolute()
            || extra
                .path
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(format!(
                "home file {} must be relative and inside the home",
                extra.path.display()
            ));
        }
        let path = home.codex_home.join(&extra.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, &extra.content).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Removes a finished run's directory on the blocking pool, so a large home's removal
/// does not hold up the async workers of the scenarios still running.
pub(crate) async fn remove_run_dir(dir: tempfile::TempDir) {
    match tokio::task::spawn_blocking(move || dir.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("removing a run directory failed: {e}"),
        Err(e) => tracing::warn!("removing a run directory failed: {e}"),
    }
}

pub(crate) fn make_run_dir(opts: &RunOptions) -> Result<tempfile::TempDir, String> {
    let mut b = tempfile::Builder::new();
    b.prefix("statedb-scenario-");
    match &opts.work_dir {
        Some(w) => {
            std::fs::create_dir_all(w)
                .map_err(|e| format!("cannot create work dir {}: {e}", w.display()))?;
            b.tempdir_in(w)
                .map_err(|e| format!("cannot create a run dir in {}: {e}", w.display()))
        }
        None => b
            .tempdir()
            .map_err(|e| format!("cannot create a run dir: {e}")),
    }
}

pub(crate) fn write_bundle(dir: &Path, outcome: &ScenarioOutcome, file: &Path) {
    let events: String = outcome
        .events
        .iter()
        .filter_map(|e| serde_json::to_string(e).ok())
        .map(|l| l + "\n")
        .collect();
    let _ = std::fs::write(dir.join("events.jsonl"), events);
    let _ = std::fs::copy(file, dir.join("scenario.toml"));
    let _ = std::fs::write(
        dir.join("outcome.json"),
        serde_json::to_string_pretty(outcome).unwrap_or_default(),
    );
    let _ = std::fs::write(
        dir.join("REPLAY.txt"),
        format!(
            "seed: {}\nvariant: {}\nreplay: {}\n",
            outcome.seed,
            outcome.ran_on,
            outcome.replay_command()
        ),
    );
}

/// Folds identical failure lines into one with a count, keeping first-seen order.
pub(crate) fn collapse_repeats(lines: Vec<String>) -> Vec<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in lines {
        match counts.iter_mut().find(|(l, _)| *l == line) {
            Some((_, n)) => *n += 1,
            None => counts.push((line, 1)),
        }
    }
    counts
        .into_iter()
        .map(|(l, n)| if n > 1 { format!("{l} (x{n})") } else { l })
        .collect()
}

/// The index of the fault a step names by id.
pub(crate) fn fault_index(sc: &Scenario, id: &str) -> Result<usize, String> {
    (0..sc.faults.len())
        .find(|i| sc.fault_id(*i) == id)
        .ok_or_else(|| format!("unknown fault {id}"))
}

/// Adds a "never injected" entry for every declared fault the run did not inject.
pub(crate) fn add_never_injected(sc: &Scenario, coverage: &mut Vec<FaultCoverage>) {
    for (i, decl) in sc.faults.iter().enumerate() {
        let id = sc.fault_id(i);
        if !coverage.iter().any(|c| c.id == id) {
            coverage.push(FaultCoverage {
                id,
                kind: decl.fault.kind().to_string(),
                fired: false,
                detail: "never injected".into(),
            });
        }
    }
}

/// One failure per declared fault or failpoint that never fired.
pub(crate) fn unfired(coverage: &[FaultCoverage]) -> Vec<String> {
    coverage
        .iter()
        .filter(|c| !c.fired)
        .map(|c| {
            format!(
                "fault coverage: declared fault '{}' never fired ({})",
                c.id, c.detail
            )
        })
        .collect()
}
