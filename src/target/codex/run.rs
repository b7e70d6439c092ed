//! One scenario on Codex: set up the home, run the steps with app-server workers, and
//! judge the answers, listings, rows and files from outside.

use crate::lookup::ListFilter;
use crate::scenario::file_expect::check_files;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::db;
use super::support::{codex_timing, observable, Subject};
use super::worker::{run_job, CodexOutcome, Job};
use super::CodexTarget;
use crate::codex::{AppServer, HomeSpec};
use crate::faults::{Fault, HomeModel};
use crate::observe::{
    check_answer_path, check_listing, writes, Census, FdSampler, FilesLedger, ObservedScope,
};
use crate::rollout::layout::watermark_for;
use crate::scenario::checks::{check_expect, check_row, run_oracle, write_invariants};
use crate::scenario::model::{
    DbSetup, Expect, FaultTime, Oracle, Role, Scenario, Step, TimingSpec, PATH_OF_ROW,
};
use crate::scenario::roles::WorkerOutcome;
use crate::scenario::run_dir::{add_never_injected, fault_index, unfired};
use crate::scenario::runner::{build_home, step_label, FaultCoverage};
use crate::thread::Scope;

/// Every Codex request may take this long: Codex's 30 s startup wait plus a margin.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

struct Running {
    role: Role,
    task: tokio::task::JoinHandle<CodexOutcome>,
    started: Instant,
    killed: bool,
}

pub struct CodexRun<'a> {
    target: &'a CodexTarget,
    sc: &'a Scenario,
    timing: TimingSpec,
    dir: PathBuf,
    pub home: HomeModel,
    spec: HomeSpec,
    workers: HashMap<String, Running>,
    pub failures: Vec<String>,
    pub coverage: Vec<FaultCoverage>,
    pub not_observed: Vec<String>,
    pub declared_wait: Duration,
    pub stderr_log: String,
    ledger: FilesLedger,
    seed: u64,
    /// Descriptors on the DB file per app-server process, observed from `/proc`.
    fds: Option<Arc<FdSampler>>,
    /// The first step skipped as not observable; DB-state expectations after it are not
    /// comparable (the reference's step may have written rows).
    diverged: Option<String>,
}

impl<'a> CodexRun<'a> {
    pub fn new(target: &'a CodexTarget, sc: &'a Scenario, dir: PathBuf, seed: u64) -> Self {
        let codex_home = dir.join("home");
        let sqlite_home = if sc.home.separate_sqlite_home {
            dir.join("sqlite")
        } else {
            codex_home.clone()
        };
        let spec = HomeSpec {
            codex_home: codex_home.clone(),
            sqlite_home: sc.home.separate_sqlite_home.then(|| sqlite_home.clone()),
        };
        CodexRun {
            target,
            sc,
            timing: codex_timing(&sc.timing),
            dir,
            home: HomeModel::new(codex_home, sqlite_home),
            spec,
            workers: HashMap::new(),
            failures: Vec::new(),
            coverage: Vec::new(),
            not_observed: Vec::new(),
            declared_wait: Duration::ZERO,
            stderr_log: String::new(),
            ledger: FilesLedger::default(),
            seed,
            fds: None,
            diverged: None,
        }
    }

    pub async fn execute(&mut self) {
        if let Err(e) = self.setup().await {
            self.failures.push(format!("setup: {e}"));
            return;
        }
        for (i, step) in self.sc.steps.iter().enumerate() {
            let problems = match self.step(step).await {
                Ok(p) => p,
                Err(e) => vec![e],
            };
            if !problems.is_empty() {
                let label = step_label(step);
                for p in problems {
                    self.failures.push(format!("step {} ({label}): {p}", i + 1));
                }
                break;
            }
        }
        self.finish().await;
    }

    async fn setup(&mut self) -> Result<(), String> {
        for d in [&self.home.codex_home, &self.home.sqlite_home] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        build_home(self.sc, self.seed(), &mut self.home)?;
        if self.sc.home.db != DbSetup::None {
            // Codex builds its own DB: one start runs its migrations and backfill.
            let server = AppServer::start(&self.target.bin, &self.spec, REQUEST_TIMEOUT)
                .await
                .map_err(|e| format!("Codex could not index the home: {e}"))?;
            let exit = server.shutdown().await.map_err(|e| e.to_string())?;
            self.stderr_log
                .push_str(&format!("--- setup\n{}", exit.stderr));
            if self.sc.home.db == DbSetup::Fresh {
                db::reset_to_fresh(&self.home.sqlite_home)?;
            }
        }
        // Codex's writes of its `backfill_state` row are logged from here on (the lease
        // checks of `observe::lease` that need no owner token apply to Codex too).
        if self.sc.home.db != DbSetup::None {
            writes::install(&self.home).map_err(|e| format!("cannot observe the DB: {e}"))?;
        }
        self.ledger = FilesLedger::new(&Census::take(&self.home.codex_home));
        for (i, decl) in self.sc.faults.iter().enumerate() {
            if decl.at == FaultTime::Setup {
                if let Some(e) = self.inject(i) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    /// Applies fault `index` (lease faults in Codex's model) and accounts for exactly its
    /// own changes to the files.
    fn inject(&mut self, index: usize) -> Option<String> {
        let decl = &self.sc.faults[index];
        let id = self.sc.fault_id(index);
        let before = Census::take(&self.home.codex_home);
        let _ = writes::mark_fault(&self.home, &id, true);
        let result = match &decl.fault {
            Fault::StuckLease { .. } => db::stuck_lease(&self.home.sqlite_home),
            Fault::ExpiredLease {
                checkpoint_after, ..
            } => {
                let watermark = match checkpoint_after {
                    Some(alias) => match self.home.thread(alias) {
                        Ok(t) => Ok(Some(watermark_for(&self.home.codex_home, &t.path))),
                        Err(e) => Err(e),
                    },
                    None => Ok(None),
                };
                watermark.and_then(|w| db::expired_lease(&self.home.sqlite_home, w))
            }
            other => other.apply(&mut self.home),
        };
        let _ = writes::mark_fault(&self.home, &id, false);
        self.ledger
            .account_fault(&before, &Census::take(&self.home.codex_home));
        let (coverage, failure) = FaultCoverage::of_injection(id, decl.fault.kind(), result);
        self.coverage.push(coverage);
        failure
    }

    fn spawn(&mut self, name: &str, role: Role, job: Job) {
        let (bin, spec) = (self.target.bin.clone(), self.spec.clone());
        let db = self.home.db_path();
        let sampler = self
            .fds
            .get_or_insert_with(|| Arc::new(FdSampler::start(db, Duration::from_millis(5))))
            .clone();
        let task = tokio::spawn(run_job(
            bin,
            spec,
            job,
            REQUEST_TIMEOUT,
            Some((sampler, name.to_string())),
        ));
        self.workers.insert(
            name.to_string(),
            Running {
                role,
                task,
                started: Instant::now(),
                killed: false,
            },
        );
    }

    fn job_for(
        &self,
        role: Role,
        threads: &[String],
        scope: Scope,
        repeat: u32,
        archived: bool,
    ) -> Result<Job, String> {
        Ok(match role {
            Role::Init | Role::Backfill => Job::Init,
            Role::Lookup => Job::Lookup {
                ids: threads
                    .iter()
                    .map(|a| self.home.thread(a).map(|t| t.id))
                    .collect::<Result<_, _>>()?,
                scope,
                repeat,
            },
            Role::List => Job::List {
                archived,
                page_size: None,
                filter: ListFilter::default(),
            },
            other => return Err(format!("role {other:?} has no Codex worker")),
        })
    }

    /// Waits for worker `name` (killed ones report `killed`).
    async fn join(
        &mut self,
        name: &str,
        timeout: Duration,
    ) -> Result<(Role, CodexOutcome), String> {
        let w = self
            .workers
            .remove(name)
            .ok_or_else(|| format!("worker {name} was not started"))?;
        if w.killed {
            let outcome = WorkerOutcome {
                killed: true,
                elapsed_ms: w.started.elapsed().as_millis() as u64,
                error: Some("killed".into()),
                ..WorkerOutcome::default()
            };
            return Ok((
                w.role,
                CodexOutcome {
                    outcome,
                    ..CodexOutcome::default()
                },
            ));
        }
        let mut task = w.task;
        match tokio::time::timeout(timeout, &mut task).await {
            Ok(Ok(done)) => {
                self.stderr_log
                    .push_str(&format!("--- {name}\n{}", done.stderr));
                Ok((w.role, done))
            }
            Ok(Err(e)) => Err(format!("worker {name} crashed: {e}")),
            Err(_) => {
                task.abort();
                Err(format!("worker {name} did not finish within {timeout:?}"))
            }
        }
    }

    /// The outside checks of every answer: lookup paths by their heads, listings whole.
    fn judge_answers(&mut self, done: &CodexOutcome, e: &Expect) {
        let home = self.home.codex_home.clone();
        for r in &done.outcome.lookups {
            if let Some(p) = &r.path {
                self.failures
                    .extend(check_answer_path(&r.thread_id, p, &home));
            }
        }
        if let Some(list) = &done.outcome.list {
            let scope = if list.archived {
                ObservedScope::Archived
            } else {
                ObservedScope::Active
            };
            let census = Census::take(&home);
            let known = self.home.known_ids();
            let complete = (e.all_threads == Some(true)).then_some(&known);
            self.failures
                .extend(check_listing(&done.listed, &census, scope, &home, complete));
        }
    }

    fn expect(&mut self, e: &Expect, role: Role, done: &CodexOutcome) -> Vec<String> {
        let (e, gone) = observable(e, Subject::of_role(role));
        for g in gone {
            self.note(g.to_string());
        }
        let rows =
            (e.path.as_deref() == Some(PATH_OF_ROW)).then(|| db::read_rows(&self.home.sqlite_home));
        check_expect(&e, &done.outcome, &self.home, &self.timing, rows.as_ref())
    }

    async fn one_shot(&mut self, role: Role, job: Job, e: &Expect) -> Vec<String> {
        let name = format!("step-{}", self.workers.len() + self.coverage.len() + 1000);
        self.spawn(&name, role, job);
        match self.join(&name, REQUEST_TIMEOUT * 3).await {
            Ok((role, done)) => {
                self.judge_answers(&done, e);
                self.expect(e, role, &done)
            }
            Err(err) => vec![err],
        }
    }

    async fn step(&mut self, step: &Step) -> Result<Vec<String>, String> {
        if let Some(gap) = super::support::step_gap(step) {
            self.note(format!("{gap}, not run"));
            // On the reference that step may have written rows; the DB's state after it
            // is no longer comparable.
            self.diverged.get_or_insert(step_label(step));
            return Ok(vec![]);
        }
        if let (
            Some(after),
            Step::ExpectRow { .. } | Step::ExpectBackfill { .. } | Step::Check { .. },
        ) = (&self.diverged, step)
        {
            let line = format!(
                "step '{}' (DB state after the skipped step '{after}')",
                step_label(step)
            );
            self.note(line);
            return Ok(vec![]);
        }
        match step {
            Step::Start { worker } => {
                let spec = self.sc.worker(worker).ok_or("unknown worker")?.clone();
                let job = self.job_for(spec.role, &spec.threads, spec.scope, spec.repeat, false)?;
                self.spawn(&spec.name, spec.role, job);
                Ok(vec![])
            }
            Step::Kill { worker } => {
                let w = self
                    .workers
                    .get_mut(worker)
                    .ok_or_else(|| format!("worker {worker} was not started"))?;
                // Dropping the task's app-server kills its process.
                w.task.abort();
                w.killed = true;
                Ok(vec![])
            }
            Step::Join {
                worker,
                timeout,
                expect,
            } => {
                let (role, done) = self
                    .join(worker, timeout.unwrap_or(REQUEST_TIMEOUT * 3))
                    .await?;
                self.judge_answers(&done, expect);
                Ok(self.expect(expect, role, &done))
            }
            Step::Inject { fault } => {
                let index = fault_index(self.sc, fault)?;
                Ok(self.inject(index).into_iter().collect())
            }
            Step::Sleep { duration } => {
                self.declared_wait += *duration;
                tokio::time::sleep(*duration).await;
                Ok(vec![])
            }
            Step::Init { expect } => Ok(self.one_shot(Role::Init, Job::Init, expect).await),
            Step::Lookup {
                thread,
                scope,
                expect,
                ..
            } => {
                let job =
                    self.job_for(Role::Lookup, std::slice::from_ref(thread), *scope, 1, false)?;
                Ok(self.one_shot(Role::Lookup, job, expect).await)
            }
            Step::List {
                archived,
                page_size,
                sources,
                providers,
                expect,
                ..
            } => {
                let job = Job::List {
                    archived: *archived,
                    page_size: *page_size,
                    filter: ListFilter {
                        sources: sources.clone(),
                        providers: providers.clone(),
                    },
                };
                Ok(self.one_shot(Role::List, job, expect).await)
            }
            Step::ExpectRow { thread, expect } => {
                let id = self.home.thread(thread)?.id;
                let rows = db::read_rows(&self.home.sqlite_home)?;
                Ok(check_row(
                    expect,
                    rows.iter().find(|r| r.id == id),
                    &self.home,
                ))
            }
            Step::ExpectBackfill { status, rows } => {
                let mut f = Vec::new();
                if let Some(s) = status {
                    let got = db::read_status(&self.home.sqlite_home)?;
                    if s != &got {
                        f.push(format!("expected backfill status = {s}, got {got}"));
                    }
                }
                if let Some(n) = rows {
                    let got = db::count_rows(&self.home.sqlite_home)?;
                    if *n != got {
                        f.push(format!("expected {n} rows, got {got}"));
                    }
                }
                Ok(f)
            }
            Step::Check { oracle } => Ok(self.oracle(*oracle)),
            Step::ExpectFiles { present, absent } => {
                Ok(check_files(self.sc, &self.home, present, absent))
            }
            Step::WaitFor { .. }
            | Step::Release { .. }
            | Step::Entrypoint { .. }
            | Step::Archive { .. } => {
                Err("not observable on this target (the scenario should have been skipped)".into())
            }
        }
    }

    /// Records something this run could not observe (once).
    fn note(&mut self, line: String) {
        if !self.not_observed.contains(&line) {
            self.not_observed.push(line);
        }
    }

    fn oracle(&mut self, oracle: Oracle) -> Vec<String> {
        let status = db::read_status(&self.home.sqlite_home).ok();
        run_oracle(
            oracle,
            &self.home,
            status.as_deref(),
            &writes::read(&self.home),
        )
    }

    async fn finish(&mut self) {
        let names: Vec<String> = self.workers.keys().cloned().collect();
        for name in names {
            if let Some(w) = self.workers.remove(&name) {
                w.task.abort();
                let _ = w.task.await;
            }
        }
        if let Some(sampler) = self.fds.take().and_then(|s| Arc::try_unwrap(s).ok()) {
            // Codex's connection pool size is its own: the count is reported, not judged.
            if let Some(max) = sampler.stop().values().max() {
                self.note(format!(
                    "one handle per process (Codex's pool size is its own; at most {max} descriptors on the DB file per app-server were seen)"
                ));
            }
        }
        for check in &self.sc.checks {
            if let Some(after) = &self.diverged {
                let line = format!(
                    "check {:?} (DB state after the skipped step '{after}')",
                    check.oracle
                );
                self.note(line);
                continue;
            }
            let f = self.oracle(check.oracle);
            self.failures.extend(f);
        }
        let written = writes::read(&self.home);
        let codex_wrote = written.as_ref().is_ok_and(|log| {
            !log.lease_watched
                && log
                    .entries
                    .iter()
                    .any(|e| matches!(e.change, writes::Change::Backfill { .. }))
        });
        if codex_wrote {
            self.note(
                "lease owner and fence checks (Codex's lease is backfill_state's status and updated_at, no owner row)"
                    .into(),
            );
        }
        self.failures.extend(write_invariants(&written));
        let lost = self
            .ledger
            .judge(&self.home.codex_home, &self.dir.join("lost-rollouts"));
        self.failures.extend(lost);
        add_never_injected(self.sc, &mut self.coverage);
        self.failures.extend(unfired(&self.coverage));
    }
}
