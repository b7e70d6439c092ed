//! The scenario runner: builds the home, prepares the DB, applies setup faults, runs the
//! steps (starting workers, waiting on their events, injecting faults, joining them with
//! expectations), then checks invariants, oracles and fault coverage. A failing run keeps
//! its directory as a failure bundle (home, DB, worker plans and logs, event trace,
//! scenario, seed) and names the replay command.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use uuid::Uuid;

use super::checks::{
    check_expect, check_row, event_invariants, lookup_never_foreign, rollout_digests,
    rollouts_unchanged, run_oracle,
};
use super::model::{
    parse_bound, DbSetup, Expect, FaultTime, HandleMode, Role, Scenario, Step, WorkerKind,
    WorkerSpec,
};
use super::roles::{WorkerOutcome, WorkerPlan};
use super::waits::DeclaredWaits;
use super::workers::{worker_files, EventLog, WorkerHandle};
use crate::clock::real_now_ms;
use crate::events::{kinds, Event};
use crate::failpoints::{FailAction, FailpointSet};
use crate::faults::{HomeModel, ThreadEntry};
use crate::fixture::{generate_home, FixtureOptions};
use crate::layer::{Capability, StateLayer};
use crate::process::ProcessContext;
use crate::rollout::layout::Root;
use crate::state::{threads, OpenMode, RuntimeOptions, StateRuntime};
use crate::state_db::StateDbConfig;
use crate::thread::{Scope, ThreadMetadata};
use crate::timing::format_duration;
use crate::variant::Variant;

/// How to run scenarios.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub seed: u64,
    pub variant: Variant,
    /// The binary process workers re-invoke (`<binary> worker --plan FILE`); `None` skips
    /// scenarios that need process workers.
    pub worker_binary: Option<PathBuf>,
    /// Keep the run directory even when the scenario passes.
    pub keep: bool,
    /// Where run directories are created (default: the system temp dir).
    pub work_dir: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: 0,
            variant: Variant::Reference,
            worker_binary: None,
            keep: false,
            work_dir: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// Whether a declared fault or failpoint fired.
#[derive(Debug, Clone, Serialize)]
pub struct FaultCoverage {
    pub id: String,
    pub kind: String,
    pub fired: bool,
    pub detail: String,
}

/// The result of one scenario run.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioOutcome {
    pub name: String,
    pub file: PathBuf,
    pub status: Status,
    pub seed: u64,
    pub variant: String,
    pub duration_ms: u64,
    /// Waiting the scenario declares on purpose (sleeps, expected timeouts, failpoint sleeps).
    pub declared_wait_ms: u64,
    pub failures: Vec<String>,
    pub faults: Vec<FaultCoverage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<PathBuf>,
    #[serde(skip)]
    pub events: Vec<Event>,
}

impl ScenarioOutcome {
    /// The one command that replays this run.
    pub fn replay_command(&self) -> String {
        let variant = if self.variant == "reference" {
            String::new()
        } else {
            format!(" --variant {}", self.variant)
        };
        format!(
            "statedb-harness replay {} --seed {}{variant}",
            self.file.display(),
            self.seed
        )
    }
}

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
    let mut outcome = ScenarioOutcome {
        name: sc.name.clone(),
        file: file.to_path_buf(),
        status: Status::Pass,
        seed: opts.seed,
        variant: opts.variant.to_string(),
        duration_ms: 0,
        declared_wait_ms: 0,
        failures: Vec::new(),
        faults: Vec::new(),
        skipped_reason: None,
        bundle: None,
        events: Vec::new(),
    };
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
    if outcome.status == Status::Fail || opts.keep {
        let path = dir.keep();
        write_bundle(&path, &outcome, file);
        outcome.bundle = Some(path);
    }
    outcome
}

fn make_run_dir(opts: &RunOptions) -> Result<tempfile::TempDir, String> {
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

fn write_bundle(dir: &Path, outcome: &ScenarioOutcome, file: &Path) {
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
            outcome.variant,
            outcome.replay_command()
        ),
    );
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
    baseline: BTreeMap<u64, usize>,
    declared_wait: DeclaredWaits,
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
            baseline: BTreeMap::new(),
            declared_wait: DeclaredWaits::default(),
            one_shots: 0,
        }
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
        let threads = generate_home(
            &self.home.codex_home,
            &FixtureOptions {
                threads: self.sc.home.threads,
                archived: self.sc.home.archived,
                seed: self.opts.seed,
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
            self.home.threads.insert(
                alias,
                ThreadEntry {
                    id: t.id,
                    path: t.path,
                    root: t.root,
                },
            );
        }
        for extra in &self.sc.home.files {
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
            let path = self.home.codex_home.join(&extra.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::write(&path, &extra.content)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
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
        for (i, decl) in self.sc.faults.iter().enumerate() {
            if decl.at == FaultTime::Setup {
                self.inject(i);
            }
        }
        self.baseline = rollout_digests(&self.home.codex_home);
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
        let result = decl.fault.apply(&mut self.home);
        let (fired, detail) = match result {
            Ok(d) => (true, d),
            Err(e) => (false, e),
        };
        self.coverage.push(FaultCoverage {
            id: id.clone(),
            kind: decl.fault.kind().to_string(),
            fired,
            detail: detail.clone(),
        });
        if decl.fault.touches_rollouts() {
            self.baseline = rollout_digests(&self.home.codex_home);
        }
        (!fired).then(|| format!("fault '{id}' did not fire: {detail}"))
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
                WorkerHandle::spawn_process(binary, &plan, &plan_file, &log_file, self.log.clone())?
            }
        };
        self.workers.insert(name, handle);
        Ok(())
    }

    /// Checks every lookup of an outcome against the "never another thread's file" invariant.
    fn lookup_invariants(&mut self, out: &WorkerOutcome) {
        for r in &out.lookups {
            if let Some(v) = lookup_never_foreign(r) {
                self.failures.push(v);
            }
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
        self.lookup_invariants(&out);
        Ok(out)
    }

    fn expect(&mut self, e: &Expect, out: &WorkerOutcome) -> Vec<String> {
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
        self.declared_wait
            .ending_at(real_now_ms(), timeout.max(floor));
        let rows = (e.path.as_deref() == Some(super::model::PATH_OF_ROW)).then(|| self.read_rows());
        check_expect(e, out, &self.home, &self.sc.timing, rows.as_ref())
    }

    async fn step(&mut self, step: &Step) -> Vec<String> {
        match self.step_inner(step).await {
            Ok(problems) => problems,
            Err(e) => vec![e],
        }
    }

    async fn step_inner(&mut self, step: &Step) -> Result<Vec<String>, String> {
        match step {
            Step::Start { worker } => {
                let spec = self
                    .sc
                    .workers
                    .iter()
                    .find(|w| &w.name == worker)
                    .ok_or("unknown worker")?
                    .clone();
                let plan = self.plan(&spec.name, spec.role, Some(&spec))?;
                self.start(plan, spec.kind)?;
                Ok(vec![])
            }
            Step::WaitFor {
                worker,
                event,
                timeout,
            } => {
                let timeout = timeout.unwrap_or(Duration::from_secs(30));
                let (kind, fp) = match event.strip_prefix("failpoint:") {
                    Some(fp) => ("failpoint_fired".to_string(), Some(fp.to_string())),
                    None => (event.clone(), None),
                };
                let w = worker.clone();
                let matches = |e: &Event| {
                    e.worker == w
                        && e.kind == kind
                        && fp.as_deref().is_none_or(|name| {
                            e.data.get("name").and_then(|v| v.as_str()) == Some(name)
                        })
                };
                // Wait in short slices so a worker that ended without the event fails the
                // step at once instead of after the whole timeout.
                let deadline = Instant::now() + timeout;
                let mut seen = false;
                let mut ended = false;
                while !seen && !ended && Instant::now() < deadline {
                    let slice = deadline
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(50));
                    seen = self.log.wait_for(slice, matches).await;
                    ended = self.workers.get_mut(worker).is_some_and(|h| h.has_ended());
                }
                if !seen && ended {
                    // Its last events may still be on their way into the log.
                    seen = self.log.wait_for(Duration::from_millis(200), matches).await;
                    if !seen {
                        return Ok(vec![format!(
                            "worker {worker} ended without emitting '{event}'"
                        )]);
                    }
                }
                Ok(if seen {
                    vec![]
                } else {
                    vec![format!(
                        "worker {worker} did not emit '{event}' within {}",
                        format_duration(timeout)
                    )]
                })
            }
            Step::Release { worker, failpoint } => {
                let file = FailpointSet::release_file(&self.release_dir(), worker, failpoint);
                std::fs::write(&file, b"").map_err(|e| format!("{}: {e}", file.display()))?;
                Ok(vec![])
            }
            Step::Kill { worker } => {
                let h = self
                    .workers
                    .get_mut(worker)
                    .ok_or_else(|| format!("worker {worker} was not started"))?;
                h.kill().await?;
                Ok(vec![])
            }
            Step::Join {
                worker,
                timeout,
                expect,
            } => {
                let h = self
                    .workers
                    .get_mut(worker)
                    .ok_or_else(|| format!("worker {worker} was not started"))?;
                let out = h.join(timeout.unwrap_or(Duration::from_secs(60))).await?;
                self.lookup_invariants(&out);
                Ok(self.expect(expect, &out))
            }
            Step::Inject { fault } => {
                let index = (0..self.sc.faults.len())
                    .find(|i| &self.sc.fault_id(*i) == fault)
                    .ok_or_else(|| format!("unknown fault {fault}"))?;
                Ok(self.inject(index).into_iter().collect())
            }
            Step::Sleep { duration } => {
                self.declared_wait.starting_at(real_now_ms(), *duration);
                tokio::time::sleep(*duration).await;
                Ok(vec![])
            }
            Step::Init { expect } => {
                let out = self.one_shot(Role::Init, |_| {}).await?;
                Ok(self.expect(expect, &out))
            }
            Step::Lookup {
                thread,
                scope,
                handle,
                expect,
            } => {
                let id = self.home.thread(thread)?.id;
                let (alias, scope, handle) = (thread.clone(), *scope, *handle);
                let out = self
                    .one_shot(Role::Lookup, move |p| {
                        p.threads = vec![(alias, id)];
                        p.scope = scope;
                        p.handle = handle;
                    })
                    .await?;
                Ok(self.expect(expect, &out))
            }
            Step::List {
                archived,
                page_size,
                prune,
                handle,
                expect,
            } => {
                let (archived, page_size, prune, handle) = (*archived, *page_size, *prune, *handle);
                let out = self
                    .one_shot(Role::List, move |p| {
                        p.list_archived = archived;
                        p.page_size = page_size;
                        p.prune = prune;
                        p.handle = handle;
                    })
                    .await?;
                Ok(self.expect(expect, &out))
            }
            Step::Entrypoint { entrypoint, expect } => {
                let kind = *entrypoint;
                let ids: Vec<(String, Uuid)> = self
                    .home
                    .threads
                    .iter()
                    .map(|(a, t)| (a.clone(), t.id))
                    .collect();
                let archived: Vec<Uuid> = self
                    .home
                    .threads
                    .values()
                    .filter(|t| t.root == Root::Archived)
                    .map(|t| t.id)
                    .collect();
                let out = self
                    .one_shot(Role::Entrypoint, move |p| {
                        p.entrypoint = Some(kind.name().to_string());
                        p.threads = ids;
                        p.archived_ids = archived;
                    })
                    .await?;
                Ok(self.expect(expect, &out))
            }
            Step::ExpectRow { thread, expect } => {
                let id = self.home.thread(thread)?.id;
                let rows = self.read_rows()?;
                Ok(check_row(
                    expect,
                    rows.iter().find(|r| r.id == id),
                    &self.home,
                ))
            }
            Step::ExpectBackfill { status, rows } => {
                let mut f = Vec::new();
                let (got_status, got_rows) = self.read_status_and_count()?;
                if let Some(s) = status {
                    if s != &got_status {
                        f.push(format!("expected backfill status = {s}, got {got_status}"));
                    }
                }
                if let Some(n) = rows {
                    if *n != got_rows {
                        f.push(format!("expected {n} rows, got {got_rows}"));
                    }
                }
                Ok(f)
            }
            Step::Check { oracle } => {
                let rows = if self.home.db_path().exists() {
                    Some(self.read_rows()?)
                } else {
                    None
                };
                let status = self.read_status_and_count().ok().map(|(s, _)| s);
                Ok(run_oracle(
                    *oracle,
                    &self.home,
                    rows.as_deref(),
                    status.as_deref(),
                    &self.log.snapshot(),
                ))
            }
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
        for check in &self.sc.checks {
            let rows = if self.home.db_path().exists() {
                self.read_rows().ok()
            } else {
                None
            };
            let status = self.read_status_and_count().ok().map(|(s, _)| s);
            self.failures.extend(run_oracle(
                check.oracle,
                &self.home,
                rows.as_deref(),
                status.as_deref(),
                &events,
            ));
        }
        self.failures.extend(event_invariants(&events));
        if let Some(v) = rollouts_unchanged(&self.baseline, &rollout_digests(&self.home.codex_home))
        {
            self.failures.push(v);
        }
        // Fault coverage: every declared fault and every failpoint of a declared worker fired.
        for (i, decl) in self.sc.faults.iter().enumerate() {
            let id = self.sc.fault_id(i);
            if !self.coverage.iter().any(|c| c.id == id) {
                self.coverage.push(FaultCoverage {
                    id: id.clone(),
                    kind: decl.fault.kind().to_string(),
                    fired: false,
                    detail: "never injected".into(),
                });
            }
        }
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
        for c in &self.coverage {
            if !c.fired {
                self.failures.push(format!(
                    "fault coverage: declared fault '{}' never fired ({})",
                    c.id, c.detail
                ));
            }
        }
    }
}

impl<L: StateLayer> Run<'_, L> {
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

/// Folds identical failure lines into one with a count, keeping first-seen order.
fn collapse_repeats(lines: Vec<String>) -> Vec<String> {
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

/// A short label of a step for failure messages.
pub fn step_label(step: &Step) -> String {
    match step {
        Step::Start { worker } => format!("start {worker}"),
        Step::WaitFor { worker, event, .. } => format!("wait_for {worker} {event}"),
        Step::Release { worker, failpoint } => format!("release {worker} {failpoint}"),
        Step::Kill { worker } => format!("kill {worker}"),
        Step::Join { worker, .. } => format!("join {worker}"),
        Step::Inject { fault } => format!("inject {fault}"),
        Step::Sleep { duration } => format!("sleep {}", format_duration(*duration)),
        Step::Init { .. } => "init".into(),
        Step::Lookup {
            thread,
            scope,
            handle,
            ..
        } => {
            let scope = match scope {
                Scope::Active => "",
                Scope::Archived => " archived",
                Scope::Any => " any",
            };
            let handle = match handle {
                HandleMode::Init => "",
                HandleMode::OpenOnly => " open-only",
                HandleMode::None => " no-db",
            };
            format!("lookup {thread}{scope}{handle}")
        }
        Step::List { .. } => "list".into(),
        Step::Entrypoint { entrypoint, .. } => format!("entrypoint {entrypoint}"),
        Step::ExpectRow { thread, .. } => format!("expect_row {thread}"),
        Step::ExpectBackfill { .. } => "expect_backfill".into(),
        Step::Check { oracle } => format!("check {oracle:?}"),
    }
}
