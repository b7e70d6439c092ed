//! The seam between the scenario engine and the code under test: a `Target` is either the
//! reference (in process, through the `StateLayer` trait, with failpoints and events) or
//! the real Codex CLI (`codex app-server` processes on the scenario's home). Both run the
//! same scenario files and are judged by the same outside checks (`crate::observe`); what
//! a target cannot show is skipped with the reason.

pub mod codex;
pub mod conformance;

use std::path::Path;
use std::sync::Arc;

use crate::layer::ReferenceLayer;
use crate::scenario::catalog::Entry;
use crate::scenario::model::Scenario;
use crate::scenario::runner::{run_scenario as run_reference, RunOptions, ScenarioOutcome, Status};

pub use codex::CodexTarget;

/// The implementation a run drives.
#[derive(Clone)]
pub enum Target {
    Reference,
    Codex(Arc<CodexTarget>),
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Reference => "reference",
            Target::Codex(_) => "codex",
        }
    }

    /// A not-yet-run outcome of `sc` on this target.
    pub fn start_outcome(&self, sc: &Scenario, file: &Path, opts: &RunOptions) -> ScenarioOutcome {
        match self {
            Target::Reference => ScenarioOutcome::start(sc, file, opts),
            Target::Codex(t) => t.start_outcome(sc, file, opts),
        }
    }

    pub async fn run_scenario(
        &self,
        sc: &Scenario,
        file: &Path,
        opts: &RunOptions,
    ) -> ScenarioOutcome {
        match self {
            Target::Reference => run_reference(Arc::new(ReferenceLayer), sc, file, opts).await,
            Target::Codex(t) => t.run_scenario(sc, file, opts).await,
        }
    }
}

/// Runs `entries` on `target` with at most `jobs` at a time; `on_done` is called as each
/// finishes. A scenario whose task panicked is a failure with the panic, never dropped.
pub async fn run_all(
    target: &Target,
    entries: &[Entry],
    opts: &RunOptions,
    jobs: usize,
    on_done: impl Fn(&ScenarioOutcome),
) -> Vec<ScenarioOutcome> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let (target, opts, e, sem) = (target.clone(), opts.clone(), e.clone(), semaphore.clone());
        let handle = set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, target.run_scenario(&e.scenario, &e.file, &opts).await)
        });
        ids.insert(handle.id(), i);
    }
    let mut results: Vec<Option<ScenarioOutcome>> = vec![None; entries.len()];
    while let Some(done) = set.join_next_with_id().await {
        let (i, outcome) = match done {
            Ok((_, (i, o))) => (i, o),
            Err(e) => {
                let i = ids[&e.id()];
                let mut o = target.start_outcome(&entries[i].scenario, &entries[i].file, opts);
                o.status = Status::Fail;
                o.failures.push(format!("the scenario's task failed: {e}"));
                (i, o)
            }
        };
        on_done(&outcome);
        results[i] = Some(outcome);
    }
    results.into_iter().flatten().collect()
}
