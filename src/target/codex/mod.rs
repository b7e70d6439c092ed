//! The real Codex CLI as a scenario target. Homes are the fixture rollouts with a DB built
//! by Codex itself (`indexed`: one app-server start lets Codex backfill; `fresh`: that DB
//! emptied back to `pending`; `none`: no DB). Faults are the harness's injectors on Codex's
//! schema, with lease faults in Codex's own lease model (`db`). Workers are app-server
//! processes (`worker`); what Codex cannot show is skipped with the reason (`support`).
//! Every answer, listing and file is judged from outside (`crate::observe`).

pub mod db;
pub mod run;
pub mod support;
pub mod worker;

use std::path::Path;
use std::time::Instant;

use crate::codex::{CodexBin, CodexError};
use crate::scenario::model::Scenario;
use crate::scenario::runner::{
    collapse_repeats, make_run_dir, remove_run_dir, write_bundle, RanOn, RunOptions,
    ScenarioOutcome, Status,
};

/// The pinned (or given) Codex binary, its version, and whether slow scenarios run.
#[derive(Debug, Clone)]
pub struct CodexTarget {
    pub bin: CodexBin,
    pub version: String,
    /// Run scenarios that wait out Codex's 30 s startup wait.
    pub slow: bool,
}

impl CodexTarget {
    pub fn new(bin: CodexBin, slow: bool) -> Result<CodexTarget, CodexError> {
        let version = bin.version()?;
        Ok(CodexTarget { bin, version, slow })
    }

    /// A not-yet-run outcome of `sc` on this Codex (named by its version).
    pub fn start_outcome(&self, sc: &Scenario, file: &Path, opts: &RunOptions) -> ScenarioOutcome {
        let mut outcome = ScenarioOutcome::start(sc, file, opts);
        outcome.ran_on = RanOn::Codex {
            version: self.version.clone(),
            slow: self.slow,
        };
        outcome
    }

    pub async fn run_scenario(
        &self,
        sc: &Scenario,
        file: &Path,
        opts: &RunOptions,
    ) -> ScenarioOutcome {
        let started = Instant::now();
        let mut outcome = self.start_outcome(sc, file, opts);
        if let Some(reason) = support::unsupported(sc, opts.worker_binary.is_some()) {
            outcome.status = Status::Skip;
            outcome.skipped_reason = Some(reason);
            return outcome;
        }
        if support::is_slow(sc) && !self.slow {
            outcome.status = Status::Skip;
            outcome.skipped_reason = Some(
                "slow on this target: waits out Codex's 30 s startup wait (run with --slow)".into(),
            );
            return outcome;
        }
        let dir = match make_run_dir(opts) {
            Ok(d) => d,
            Err(e) => {
                outcome.status = Status::Fail;
                outcome.failures.push(e);
                return outcome;
            }
        };
        let mut run = run::CodexRun::new(self, sc, dir.path().to_path_buf(), opts.seed);
        run.execute().await;
        run.home.teardown();
        outcome.failures = collapse_repeats(std::mem::take(&mut run.failures));
        outcome.faults = std::mem::take(&mut run.coverage);
        outcome.not_observed = std::mem::take(&mut run.not_observed);
        outcome.declared_wait_ms = run.declared_wait.as_millis() as u64;
        outcome.duration_ms = started.elapsed().as_millis() as u64;
        if !outcome.failures.is_empty() {
            outcome.status = Status::Fail;
        }
        if opts.bundles.keeps(outcome.status) {
            let path = dir.keep();
            let _ = std::fs::write(path.join("codex-stderr.txt"), &run.stderr_log);
            write_bundle(&path, &outcome, file);
            outcome.bundle = Some(path);
        } else {
            remove_run_dir(dir).await;
        }
        outcome
    }
}
