//! The scenario runner: builds the home, prepares the DB, applies setup faults, runs the
//! steps (starting workers, waiting on their events, injecting faults, joining them with
//! expectations), then checks invariants, oracles and fault coverage. A failing run keeps
//! its directory as a failure bundle (home, DB, worker plans and logs, event trace,
//! scenario, seed) and names the replay command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::scenario::checks::{check_expect, event_invariants, run_oracle, write_invariants};
use crate::scenario::lease_waits::lease_expiries;
use crate::scenario::model::{
    parse_bound, DbSetup, Expect, FaultTime, Role, Scenario, Step, WorkerKind, WorkerSpec,
};
use crate::scenario::roles::{WorkerOutcome, WorkerPlan};
use crate::scenario::waits::{busy_timeout_met, DeclaredWaits};
use crate::scenario::workers::{worker_files, EventLog, WorkerHandle};
mod steps;

use crate::clock::real_now_ms;
use crate::events::{kinds, Event};
use crate::failpoints::{FailAction, FailpointSet};
use crate::faults::HomeModel;
use crate::layer::{Capability, StateLayer};
use crate::lookup::LookupSource;
use crate::observe::answers::{check_verified_label, Listed};
use crate::observe::handles::{judge, FdSampler};
use crate::observe::{
    check_answer_path, check_listing, writes, Census, FilesLedger, ObservedScope,
};
use crate::process::ProcessContext;
use crate::rollout::layout::Root;
pub use crate::scenario::outcome::{
    Bundles, FaultCoverage, RanOn, RunOptions, ScenarioOutcome, Status,
};
use crate::scenario::run_dir::{add_never_injected, unfired};
pub(crate) use crate::scenario::run_dir::{
    build_home, collapse_repeats, make_run_dir, remove_run_dir, write_bundle,
};
use crate::state::{threads, OpenMode, RuntimeOptions, StateRuntime};
use crate::state_db::StateDbConfig;
use crate::thread::ThreadMetadata;
pub use steps::step_label;

/// How often process workers' DB descriptors are sampled from `/proc`.
const FD_SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// Descriptors one reference handle holds on the DB file: its connection and the lease
/// heartbeat's connection. More in one process means a second handle.
const REFERENCE_FDS_PER_HANDLE: usize = 2;
/// Events of a `lock_holder` worker: it holds / gave up the DB's write lock.
const LOCK_HELD: &str = "lock_held";
const LOCK_RELEASED: &str = "lock_released";

/// Capabilities a scenario needs from the state layer.
pub fn required_capabilities(sc: &Scenario) -> Vec<Capability> {
    let mut caps = Vec::new();
    if sc.workers.iter().any(|w| !w.failpoints.is_empty()) {
        caps.push(Capability::Failpoints);
    }
    if sc.workers.iter().any(|w| w.clock_skew.is_some()) {
        caps.push(Capability::ClockSkew);
    }
    if sc.workers.iter().any(|w| w.role == Role::Entrypoint)
        || sc
            .steps
            .iter()
            .any(|s| matches!(s, Step::Entrypoint { .. }))
    {
        caps.push(Capability::Entrypoints);
    }
    caps
}

/// Runs one scenario against `layer`.
pub async fn run_scenario<L: StateLayer>(
    layer: Arc<L>,
    sc: &Scenario,
    file: &Path,
    opts: &RunOptions,
) -> ScenarioOutcome {
    let started = Instant::now();
    let mut outcome = ScenarioOutcome::start(sc, file, opts);
    let missing = layer.capabilities().missing(&required_capabilities(sc));
    if !missing.is_empty() {
        outcome.status = Status::Skip;
        outcome.skipped_reason = Some(format!("{} lacks {:?}", layer.name(), missing));
        return outcome;
    }
    if sc.workers.iter().any(|w| w.kind == WorkerKind::Process) && opts.worker_binary.is_none() {
        outcome.status = Status::Skip;
        outcome.skipped_reason =
            Some("process workers need the statedb-harness binary (worker_binary)".into());
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
    let mut run = Run::new(layer, sc, opts, dir.path().to_path_buf());
    run.execute().await;
    run.home.teardown();
    outcome.failures = collapse_repeats(std::mem::take(&mut run.failures));
    outcome.faults = std::mem::take(&mut run.coverage);
    outcome.declared_wait_ms = run.declared_wait.critical_path().as_millis() as u64;
    outcome.events = run.log.snapshot();
    outcome.duration_ms = started.elapsed().as_millis() as u64;
    if !outcome.failures.is_empty() {
        outcome.status = Status::Fail;
    }
    if opts.bundles.keeps(outcome.status) {
        let path = dir.keep();
        write_bundle(&path, &outcome, file);
        outcome.bundle = Some(path);
    } else {
        remove_run_dir(dir).await;
    }
    outcome
}

struct Run<'a, L: StateLayer> {
    layer: Arc<L>,
    sc: &'a Scenario,
    opts: &'a RunOptions,
    dir: PathBuf,
    home: HomeModel,
    log: Arc<EventLog>,
    workers: HashMap<String, WorkerHandle>,
    failures: Vec<String>,
    coverage: Vec<FaultCoverage>,
    /// The rollout bytes expected at the end (setup, plus each fault's own changes).
    ledger: FilesLedger,
    /// Descriptors on the DB file of each process worker, from `/proc` (started lazily).
    fds: Option<FdSampler>,
    declared_wait: DeclaredWaits,
    /// When the current step began (epoch ms), for waits judged over a step.
    step_started_ms: i64,
    /// When the worker an expectation judges began (the step's start for a one-shot, the
    /// `start` step for a joined worker): none of its waits began earlier.
    judged_since_ms: i64,
    /// When each started worker was started (epoch ms).
    started_ms: HashMap<String, i64>,
    one_shots: u32,
}

impl<'a, L: StateLayer> Run<'a, L> {
    fn new(layer: Arc<L>, sc: &'a Scenario, opts: &'a RunOptions, dir: PathBuf) -> Self {
        let codex_home = dir.join("home");
        let sqlite_home = if sc.home.separate_sqlite_home {
            dir.join("sqlite")
        } else {
            codex_home.clone()
        };
        Run {
            layer,
            sc,
            opts,
            home: HomeModel::new(codex_home, sqlite_home),
            dir,
            log: Arc::new(EventLog::default()),
            workers: HashMap::new(),
            failures: Vec::new(),
            coverage: Vec::new(),
            ledger: FilesLedger::default(),
            fds: None,
            declared_wait: DeclaredWaits::default(),
            step_started_ms: 0,
            judged_since_ms: 0,
            started_ms: HashMap::new(),
            one_shots: 0,
        }
    }

    /// An empty codex home beside the scenario's, for steps asking about another home.
    fn other_home(&self, wanted: bool) -> Result<Option<PathBuf>, String> {
        if !wanted {
            return Ok(None);
        }
        let dir = self.dir.join("other-home");
        std::fs::create_dir_all(dir.join("sessions"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Some(dir))
    }

    fn release_dir(&self) -> PathBuf {
        self.dir.join("release")
    }

    async fn execute(&mut self) {
        if let Err(e) = self.setup() {
            self.failures.push(format!("setup: {e}"));
            return;
        }
        for (i, step) in self.sc.steps.iter().enumerate() {
            let problems = self.step(step).await;
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

    fn setup(&mut self) -> Result<(), String> {
        for d in [
            &self.home.codex_home,
            &self.home.sqlite_home,
            &self.release_dir(),
            &self.dir.join("workers"),
        ] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        build_home(self.sc, self.opts.seed, &mut self.home)?;
        let setup_ctx = ProcessContext::builder().name("setup").build();
        match self.sc.home.db {
            DbSetup::None => {}
            DbSetup::Fresh => {
                StateRuntime::open(
                    &setup_ctx,
                    self.runtime_options(),
                    OpenMode::CreateAndMigrate,
                )
                .map_err(|e| format!("cannot create the db: {e}"))?;
            }
            DbSetup::Indexed => {
                self.layer
                    .init(&setup_ctx, &self.config())
                    .map_err(|e| format!("cannot index the home: {e}"))?;
            }
        }
        // Lease writes are judged from the DB's own write log from here on (setup faults'
        // own writes are marked in it). A home without a DB has none: nothing to judge.
        let _ = writes::install(&self.home);
        self.ledger = FilesLedger::new(&Census::take(&self.home.codex_home));
        for (i, decl) in self.sc.faults.iter().enumerate() {
            if decl.at == FaultTime::Setup {
                self.inject(i);
            }
        }
        Ok(())
    }

    fn runtime_options(&self) -> RuntimeOptions {
        let mut r = RuntimeOptions::new(&self.home.codex_home);
        r.sqlite_home = self.home.sqlite_home.clone();
        r.journal_mode = self.sc.home.journal_mode;
        r.busy_timeout = self.sc.timing.busy_timeout;
        r
    }

    fn config(&self) -> StateDbConfig {
        StateDbConfig {
            runtime: self.runtime_options(),
            timings: self.sc.timing.timings(),
        }
    }

    fn inject(&mut self, index: usize) -> Option<String> {
        let decl = &self.sc.faults[index];
        let id = self.sc.fault_id(index);
        // The fault's own changes to the files, and only those, are expected to persist.
        let before = Census::take(&self.home.codex_home);
        // The fault's own DB writes are marked in the write log (no log: nothing to mark).
        let _ = writes::mark_fault(&self.home, &id, true);
        let result = decl.fault.apply(&mut self.home);
        let _ = writes::mark_fault(&self.home, &id, false);
        self.ledger
            .account_fault(&before, &Census::take(&self.home.codex_home));
        let (coverage, failure) = FaultCoverage::of_injection(id, decl.fault.kind(), result);
        self.coverage.push(coverage);
        failure
    }

    fn plan(
        &self,
        name: &str,
        role: Role,
        spec: Option<&WorkerSpec>,
    ) -> Result<WorkerPlan, String> {
        let mut timings = self.sc.timing.timings();
        if let Some(w) = spec.and_then(|s| s.wait_timeout) {
            timings.wait_timeout = w;
        }
        let threads = spec
            .map(|s| {
                s.threads
                    .iter()
                    .map(|a| self.home.thread(a).map(|t| (a.clone(), t.id)))
                    .collect::<Result<Vec<_>, String>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(WorkerPlan {
            name: name.to_string(),
            role,
            codex_home: self.home.codex_home.clone(),
            sqlite_home: self.home.sqlite_home.clone(),
            journal_mode: self.sc.home.journal_mode,
            timings,
            failpoints: spec.map(|s| s.failpoints.clone()).unwrap_or_default(),
            release_dir: self.release_dir(),
            skew_ms: spec.map(|s| s.skew_ms()).transpose()?.unwrap_or(0),
            variant: self.opts.variant,
            handle: spec.map(|s| s.handle).unwrap_or_default(),
            archived_ids: threads
                .iter()
                .filter(|(a, _)| {
                    self.home
                        .thread(a)
                        .map(|t| t.root == Root::Archived)
                        .unwrap_or(false)
                })
                .map(|(_, id)| *id)
                .collect(),
            threads,
            scope: spec.map(|s| s.scope).unwrap_or_default(),
            repeat: spec.map(|s| s.repeat).unwrap_or(1),
            hold_ms: spec.and_then(|s| s.hold).map(|d| d.as_millis() as u64),
            count: spec.map(|s| s.count).unwrap_or(1),
            page_size: spec.and_then(|s| s.page_size),
            list_archived: false,
            prune: false,
            unarchive: false,
            cursor: None,
            list_filter: crate::lookup::ListFilter::default(),
            ask_home: None,
            entrypoint: spec
                .and_then(|s| s.entrypoint)
                .map(|k| k.name().to_string()),
            seed: self.opts.seed,
        })
    }

    fn start(&mut self, plan: WorkerPlan, kind: WorkerKind) -> Result<(), String> {
        let name = plan.name.clone();
        let handle = match kind {
            WorkerKind::Task => {
                WorkerHandle::spawn_task(self.layer.clone(), plan, self.log.clone())?
            }
            WorkerKind::Process => {
                let binary = self
                    .opts
                    .worker_binary
                    .as_ref()
                    .ok_or("process workers need the statedb-harness binary")?;
                let (plan_file, log_file) = worker_files(&self.dir, &name);
                let h = WorkerHandle::spawn_process(
                    binary,
                    &plan,
                    &plan_file,
                    &log_file,
                    self.log.clone(),
                )?;
                if let Some(pid) = h.pid() {
                    let db = self.home.db_path();
                    self.fds
                        .get_or_insert_with(|| FdSampler::start(db, FD_SAMPLE_EVERY))
                        .watch(&name, pid);
                }
                h
            }
        };
        self.started_ms.insert(name.clone(), real_now_ms());
        self.workers.insert(name, handle);
        Ok(())
    }

    /// "Never another thread's file", judged by reading the head of every path a lookup
    /// answered, whatever the answer's label; a listing holds each thread once, each with a
    /// path of its own (and every rollout, when the expectation says the listing is whole).
    fn lookup_invariants(&mut self, out: &WorkerOutcome, complete: bool) {
        for r in &out.lookups {
            if let Some(path) = &r.path {
                let home = &self.home.codex_home;
                if let Some(v) = check_answer_path(&r.thread_id, path, home) {
                    self.failures.push(v);
                }
                // The reference labels its answers; one that says it verified the head is
                // held to that by reading the head here.
                if let Some(source) = r.source.filter(|s| *s != LookupSource::UnverifiedDb) {
                    let label = format!("{source:?}").to_lowercase();
                    self.failures
                        .extend(check_verified_label(&r.thread_id, path, &label, home));
                }
            }
        }
        if let Some(list) = &out.list {
            let listed: Vec<Listed> = list
                .items
                .iter()
                .zip(&list.paths)
                .map(|(id, p)| Listed {
                    id: id.to_string(),
                    path: Some(p.clone()),
                })
                .collect();
            let scope = if list.archived {
                ObservedScope::Archived
            } else {
                ObservedScope::Active
            };
            let census = Census::take(&self.home.codex_home);
            let known = self.home.known_ids();
            self.failures.extend(check_listing(
                &listed,
                &census,
                scope,
                &self.home.codex_home,
                complete.then_some(&known),
            ));
        }
    }

    /// How long a one-shot step may take before it counts as hung: everything it may
    /// legitimately wait for (the gate, two busy timeouts, a lease) plus a generous margin.
    fn one_shot_timeout(&self) -> Duration {
        let t = &self.sc.timing;
        Duration::from_secs(10) + t.wait_timeout * 2 + t.busy_timeout * 2 + t.lease
    }

    async fn one_shot(
        &mut self,
        role: Role,
        plan_edit: impl FnOnce(&mut WorkerPlan),
    ) -> Result<WorkerOutcome, String> {
        self.one_shots += 1;
        let name = format!("step{}", self.one_shots);
        let mut plan = self.plan(&name, role, None)?;
        plan_edit(&mut plan);
        let mut handle = WorkerHandle::spawn_task(self.layer.clone(), plan, self.log.clone())?;
        let out = handle.join(self.one_shot_timeout()).await?;
        Ok(out)
    }

    /// Judges a finished worker: the outside checks of its answers, then its expectations.
    fn expect(&mut self, e: &Expect, out: &WorkerOutcome) -> Vec<String> {
        self.lookup_invariants(out, e.all_threads == Some(true));
        // Deliberate waiting: an expected timeout, or a lower time bound the scenario sets
        // (e.g. waiting out a dead owner's lease).
        let timeout = if e.timed_out == Some(true) {
            self.sc.timing.wait_timeout
        } else {
            Duration::ZERO
        };
        let floor = e
            .elapsed_min
            .as_deref()
            .and_then(|b| parse_bound(b, &self.sc.timing).ok())
            .unwrap_or(Duration::ZERO);
        let now = real_now_ms();
        // Never longer than the worker ran (a waiter that gave up early waited less).
        let ran = Duration::from_millis((now - self.judged_since_ms).max(0) as u64);
        self.declared_wait
            .ending_at(now, timeout.max(floor).min(ran));
        let (since, held) = self.write_lock_held();
        if let Some((start, end)) = busy_timeout_met(
            (self.step_started_ms, now),
            since,
            held,
            self.sc.timing.busy_timeout,
        ) {
            self.declared_wait.between(start, end);
        }
        let rows = (e.path.as_deref() == Some(super::model::PATH_OF_ROW)).then(|| self.read_rows());
        check_expect(e, out, &self.home, &self.sc.timing, rows.as_ref())
    }

    async fn step(&mut self, step: &Step) -> Vec<String> {
        self.step_started_ms = real_now_ms();
        self.judged_since_ms = self.step_started_ms;
        match self.step_inner(step).await {
            Ok(problems) => problems,
            Err(e) => vec![e],
        }
    }

    fn raw_db(&self) -> Result<rusqlite::Connection, String> {
        let db = self.home.db_path();
        let c =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| format!("cannot open {} to check it: {e}", db.display()))?;
        c.busy_timeout(Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        Ok(c)
    }

    fn read_rows(&self) -> Result<Vec<ThreadMetadata>, String> {
        threads::all(&self.raw_db()?).map_err(|e| format!("cannot read threads: {e}"))
    }

    fn read_status_and_count(&self) -> Result<(String, i64), String> {
        let c = self.raw_db()?;
        let state = crate::state::backfill_state::read(&c)
            .map_err(|e| format!("cannot read backfill state: {e}"))?;
        let n = threads::count(&c).map_err(|e| e.to_string())?;
        Ok((state.status.to_string(), n))
    }

    async fn finish(&mut self) {
        // Release every pause, now and later, so nothing is left hanging; then reap.
        let _ = std::fs::write(FailpointSet::release_all_file(&self.release_dir()), b"");
        let names: Vec<String> = self.workers.keys().cloned().collect();
        for name in names {
            if let Some(h) = self.workers.get_mut(&name) {
                if h.is_running() {
                    if h.kind == WorkerKind::Process {
                        let _ = h.kill().await;
                    }
                    if let Err(e) = h.join(Duration::from_secs(20)).await {
                        self.failures.push(format!("teardown: {e}"));
                    }
                }
            }
        }
        let events = self.log.snapshot();
        self.failpoint_sleeps(&events);
        let written = writes::read(&self.home);
        if let Ok(log) = &written {
            for (start, end) in lease_expiries(log, self.sc.timing.lease) {
                self.declared_wait.between(start, end);
            }
        }
        for check in &self.sc.checks {
            let status = self.read_status_and_count().ok().map(|(s, _)| s);
            self.failures.extend(run_oracle(
                check.oracle,
                &self.home,
                status.as_deref(),
                &written,
            ));
        }
        // One handle per process, from /proc: the events' own report is extra detail only.
        if let Some(sampler) = self.fds.take() {
            self.failures
                .extend(judge(&sampler.stop(), REFERENCE_FDS_PER_HANDLE));
        }
        self.failures.extend(event_invariants(&events));
        self.failures.extend(write_invariants(&written));
        let lost = self
            .ledger
            .judge(&self.home.codex_home, &self.dir.join("lost-rollouts"));
        self.failures.extend(lost);
        // Fault coverage: every declared fault and every failpoint of a declared worker fired.
        add_never_injected(self.sc, &mut self.coverage);
        for w in &self.sc.workers {
            for fp in w.parsed_failpoints().unwrap_or_default() {
                let fired = events.iter().any(|e| {
                    e.worker == w.name
                        && e.kind == "failpoint_fired"
                        && e.data.get("name").and_then(|v| v.as_str()) == Some(fp.name.name())
                });
                self.coverage.push(FaultCoverage {
                    id: format!("{}:{}", w.name, fp),
                    kind: format!("failpoint:{}", fp.name),
                    fired,
                    detail: if fired {
                        "fired".into()
                    } else {
                        "never reached".into()
                    },
                });
            }
        }
        self.failures.extend(unfired(&self.coverage));
    }
}

impl<L: StateLayer> Run<'_, L> {
    /// Since when a lock-holder worker has held the DB's write lock (its `lock_held`
    /// event), and whether it still holds it now (no `lock_released`, still running).
    fn write_lock_held(&mut self) -> (Option<i64>, bool) {
        let events = self.log.snapshot();
        let mut since = None;
        let mut held = false;
        for e in events.iter().filter(|e| e.kind == LOCK_HELD) {
            let released = events
                .iter()
                .any(|r| r.worker == e.worker && r.kind == LOCK_RELEASED);
            let running = self
                .workers
                .get_mut(&e.worker)
                .is_some_and(|h| !h.has_ended());
            if !released && running {
                since = Some(since.map_or(e.at_ms, |s: i64| s.min(e.at_ms)));
                held = true;
            }
        }
        (since, held)
    }

    /// Failpoint sleeps as declared waits, from when each one actually fired.
    fn failpoint_sleeps(&mut self, events: &[Event]) {
        for e in events.iter().filter(|e| e.kind == kinds::FAILPOINT_FIRED) {
            let action = e.data.get("action").and_then(|a| a.as_str());
            if let Some(Ok(FailAction::Sleep(d))) = action.map(str::parse) {
                self.declared_wait.starting_at(e.at_ms, d);
            }
        }
    }
}
