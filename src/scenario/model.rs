//! The scenario file format (TOML), parsed with serde and validated before anything runs.
//!
//! A malformed file is rejected whole with file, line and column; unknown names (fault
//! kinds, roles, failpoints, threads, workers, expectation keys) list the valid values.
//! The format is documented field by field in `scenarios/README.md`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::failpoints::FailpointSpec;
use crate::faults::Fault;
use crate::state::JournalMode;
use crate::thread::Scope;
use crate::timing::{humantime_serde_compat as hs, Timings};

/// A parsed, validated scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Why this scenario's event log may differ between two runs with one seed (it is then
    /// exempt from `--check-determinism`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing_dependent: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub timing: TimingSpec,
    #[serde(default)]
    pub home: HomeSpec,
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultDecl>,
    #[serde(default, rename = "worker", skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerSpec>,
    #[serde(default, rename = "step", skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    #[serde(default, rename = "check", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
}

/// `[timing]`: the state layer's timings for every worker, plus the slack timing bounds allow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingSpec {
    #[serde(with = "hs", default = "d_lease")]
    pub lease: Duration,
    #[serde(with = "hs", default = "d_poll")]
    pub poll: Duration,
    #[serde(with = "hs", default = "d_wait")]
    pub wait_timeout: Duration,
    #[serde(with = "hs", default = "d_busy")]
    pub busy_timeout: Duration,
    #[serde(with = "hs::option", default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Duration>,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Allowed lateness of timing bounds (`[wait_timeout, wait_timeout + slack]`).
    #[serde(with = "hs", default = "d_slack")]
    pub slack: Duration,
    /// The gate's cap for an owner that keeps making progress.
    #[serde(with = "hs", default = "d_wait_cap")]
    pub wait_cap: Duration,
    /// How long without progress before the gate calls a live owner wedged (default: wait_timeout).
    #[serde(with = "hs::option", default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<Duration>,
}

fn d_lease() -> Duration {
    Timings::short().lease
}
fn d_poll() -> Duration {
    Timings::short().poll_interval
}
fn d_wait() -> Duration {
    Timings::short().wait_timeout
}
fn d_busy() -> Duration {
    Timings::short().busy_timeout
}
fn d_batch() -> usize {
    Timings::short().batch_size
}
fn d_wait_cap() -> Duration {
    Timings::short().wait_cap
}
fn d_slack() -> Duration {
    Duration::from_millis(750)
}

impl Default for TimingSpec {
    fn default() -> Self {
        TimingSpec {
            lease: d_lease(),
            poll: d_poll(),
            wait_timeout: d_wait(),
            busy_timeout: d_busy(),
            heartbeat: None,
            batch_size: d_batch(),
            slack: d_slack(),
            wait_cap: d_wait_cap(),
            stall: None,
        }
    }
}

impl TimingSpec {
    pub fn timings(&self) -> Timings {
        Timings {
            lease: self.lease,
            poll_interval: self.poll,
            wait_timeout: self.wait_timeout,
            busy_timeout: self.busy_timeout,
            heartbeat: self.heartbeat,
            batch_size: self.batch_size,
            wait_cap: self.wait_cap,
            stall: self.stall,
        }
    }
}

/// What the DB looks like before the first step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DbSetup {
    /// A completed backfill indexed every rollout.
    #[default]
    Indexed,
    /// The DB exists and is migrated; the backfill is still pending.
    Fresh,
    /// No DB file.
    None,
}

/// `[home]`: the generated codex home.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeSpec {
    /// Active threads, aliased `t0`, `t1`, ...
    #[serde(default = "d_threads")]
    pub threads: usize,
    /// Archived threads, aliased `a0`, `a1`, ...
    #[serde(default)]
    pub archived: usize,
    #[serde(default, skip_serializing_if = "is_default")]
    pub db: DbSetup,
    #[serde(default, skip_serializing_if = "is_default")]
    pub journal_mode: JournalMode,
    /// Put the DB in its own directory instead of the codex home.
    #[serde(default, skip_serializing_if = "is_default")]
    pub separate_sqlite_home: bool,
    /// Extra files (odd names, notes, gitignores) relative to the codex home.
    #[serde(default, rename = "file", skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ExtraFile>,
}

fn d_threads() -> usize {
    3
}

impl Default for HomeSpec {
    fn default() -> Self {
        HomeSpec {
            threads: d_threads(),
            archived: 0,
            db: DbSetup::Indexed,
            journal_mode: JournalMode::Wal,
            separate_sqlite_home: false,
            files: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraFile {
    pub path: PathBuf,
    #[serde(default)]
    pub content: String,
}

/// `[[fault]]`: an injector, applied at setup or by an `inject` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultDecl {
    /// Name used by `inject` steps (default `<kind>` or `<kind>#<n>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `setup` (after the DB is prepared, before the first step) or `step`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub at: FaultTime,
    #[serde(flatten)]
    pub fault: Fault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTime {
    #[default]
    Setup,
    Step,
}

/// How a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    /// A tokio blocking task with its own `ProcessContext`.
    #[default]
    Task,
    /// A real OS process: the binary re-invoked with the hidden `worker` command.
    Process,
}

/// What a worker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Process startup: `init` with the backfill gate.
    Init,
    /// One backfill attempt without the gate.
    Backfill,
    /// Startup, then look threads up.
    Lookup,
    /// Startup, then list every page.
    List,
    /// Startup, then write new rollouts and index them while others read.
    Writer,
    /// Hold a write transaction on the DB for `hold`.
    LockHolder,
    /// Startup, then archive (or unarchive) one thread through the thread store.
    Archive,
    /// Commit one small write transaction (a racing writer).
    Commit,
    /// Run an entrypoint's consumer wiring over the home's threads.
    Entrypoint,
}

/// How a lookup/list worker obtains its handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandleMode {
    /// `init` (falls back to no handle when init fails, like the CLI).
    #[default]
    Init,
    /// `open_existing`.
    OpenOnly,
    /// No DB.
    None,
}

/// `[[worker]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: WorkerKind,
    pub role: Role,
    /// Failpoints of this worker, `NAME[@N]=ACTION`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failpoints: Vec<String>,
    /// This worker's clock runs ahead by this much (negative: behind), e.g. "2s", "-1s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub handle: HandleMode,
    /// Threads a lookup worker looks up (aliases).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub scope: Scope,
    /// Lookups per thread.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub repeat: u32,
    /// lock_holder: how long to hold the write lock.
    #[serde(with = "hs::option", default)]
    pub hold: Option<Duration>,
    /// writer: rollouts to write.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u32,
    /// list: page size.
    #[serde(default)]
    pub page_size: Option<usize>,
    /// entrypoint: which (`cli`, `exec`, `app_server`, `mcp_server`).
    #[serde(default)]
    pub entrypoint: Option<String>,
    /// Override this worker's wait timeout.
    #[serde(with = "hs::option", default)]
    pub wait_timeout: Option<Duration>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// Serialisation leaves out values equal to their default, so a written scenario shows
/// only what it sets.
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl WorkerSpec {
    pub fn parsed_failpoints(&self) -> Result<Vec<FailpointSpec>, String> {
        self.failpoints.iter().map(|f| f.parse()).collect()
    }

    pub fn skew_ms(&self) -> Result<i64, String> {
        match self.clock_skew.as_deref() {
            None => Ok(0),
            Some(text) => {
                let (neg, body) = match text.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, text),
                };
                let d = crate::timing::parse_duration(body)?;
                let ms = d.as_millis() as i64;
                Ok(if neg { -ms } else { ms })
            }
        }
    }
}

/// `[[step]]`: one action of the controller, with what it must observe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Start a declared worker.
    Start { worker: String },
    /// Wait until a worker emits an event (`kind`, or `failpoint:<name>`).
    WaitFor {
        worker: String,
        event: String,
        #[serde(with = "hs::option", default)]
        timeout: Option<Duration>,
    },
    /// Release a paused failpoint of a worker.
    Release { worker: String, failpoint: String },
    /// SIGKILL a process worker.
    Kill { worker: String },
    /// Wait for a worker to end and check its outcome.
    Join {
        worker: String,
        #[serde(with = "hs::option", default)]
        timeout: Option<Duration>,
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// Apply a `[[fault]]` declared with `at = "step"`.
    Inject { fault: String },
    /// A deliberate wait (e.g. for a lease to expire); counted as declared waiting time.
    Sleep {
        #[serde(rename = "for", with = "hs")]
        duration: Duration,
    },
    /// Process startup in a fresh one-shot process context.
    Init {
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// A lookup in a fresh one-shot process context.
    Lookup {
        thread: String,
        #[serde(default, skip_serializing_if = "is_default")]
        scope: Scope,
        /// Ask about another (empty) codex home with this process's handle.
        #[serde(default, skip_serializing_if = "is_default")]
        ask_other_home: bool,
        #[serde(default, skip_serializing_if = "is_default")]
        handle: HandleMode,
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// Page through a listing in a fresh one-shot process context.
    List {
        #[serde(default)]
        archived: bool,
        #[serde(default)]
        page_size: Option<usize>,
        #[serde(default, skip_serializing_if = "is_default")]
        prune: bool,
        /// Ask about another (empty) codex home with this process's handle.
        #[serde(default, skip_serializing_if = "is_default")]
        ask_other_home: bool,
        /// Start from this cursor (any form a client may hold) instead of the first page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        #[serde(default, skip_serializing_if = "is_default")]
        handle: HandleMode,
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// Archive (or with `unarchive`, unarchive) a thread in a fresh one-shot process context.
    Archive {
        thread: String,
        #[serde(default, skip_serializing_if = "is_default")]
        unarchive: bool,
        #[serde(default, skip_serializing_if = "is_default")]
        handle: HandleMode,
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// Run an entrypoint's wiring in a fresh one-shot process context.
    Entrypoint {
        entrypoint: String,
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// Check the DB row of a thread directly.
    ExpectRow { thread: String, expect: RowExpect },
    /// Check the backfill state directly.
    ExpectBackfill {
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        rows: Option<i64>,
    },
    /// Run an oracle now.
    Check { oracle: Oracle },
}

/// `expect.path` value meaning "the path the looked-up thread's DB row holds".
pub const PATH_OF_ROW: &str = "row";

/// Expectations of a step or join. Every field is optional; each given one is checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The operation succeeded (init ready / lookup found / role finished without error).
    pub ok: Option<bool>,
    /// The error text contains this.
    pub error_contains: Option<String>,
    /// The startup gate timed out.
    pub timed_out: Option<bool>,
    /// A process worker was killed (by a signal or a failpoint) instead of exiting.
    pub killed: Option<bool>,
    /// A process worker's exit code (`exit(CODE)` failpoint: CODE; none after a signal).
    pub exit_code: Option<i32>,
    /// Elapsed time bounds: a duration, or `wait_timeout`, `wait_timeout+slack`, `lease`, `lease+slack`.
    pub elapsed_min: Option<String>,
    pub elapsed_max: Option<String>,
    /// Startup: backfill status after the gate, and whether this worker ran the backfill.
    pub status: Option<String>,
    pub backfill_ran: Option<bool>,
    pub upserted: Option<u64>,
    pub failed: Option<u64>,
    /// Lookup: `db`, `filesystem`, `unverified_db` or `none`.
    pub source: Option<String>,
    /// Lookup: a fallback reason or `none`.
    pub fallback_reason: Option<String>,
    pub repaired: Option<bool>,
    /// Lookup: a thread alias whose current file must be returned, `none`, `other:<alias>`,
    /// or `row` (the path the thread's DB row holds when the step is checked).
    pub path: Option<String>,
    /// List: number of items over all pages.
    pub items: Option<usize>,
    /// List: every thread of the scope exactly once over all pages.
    pub all_threads: Option<bool>,
    /// List: aliases reported stale.
    pub stale: Option<Vec<String>>,
    /// Entrypoint: DB opens and refused second opens in the process.
    pub db_opens: Option<u32>,
    pub refused_opens: Option<u32>,
    pub consumers_ok: Option<bool>,
}

/// Expectations of a DB row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowExpect {
    pub exists: Option<bool>,
    /// Alias whose current file the row must point at.
    pub path: Option<String>,
    pub archived: Option<bool>,
    pub tokens_used: Option<i64>,
    pub title: Option<String>,
}

/// `[[check]]`: a global check after the last step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub oracle: Oracle,
}

/// Oracles comparing the DB with the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Oracle {
    /// Every verifiable rollout has a row pointing at it (or at another file of the same
    /// id), with the archived flag of its root; no row points at a missing or foreign file.
    IndexMatchesFiles,
    /// The backfill state is `complete`.
    BackfillComplete,
    /// No DB file exists (nothing was created).
    NoDbFile,
    /// Exactly one worker completed a backfill (from the event log).
    OneBackfillRun,
    /// The bytes a DB-damaging fault left are kept in a `state_5.sqlite.corrupt-*` file
    /// next to the DB.
    DamagedDbKept,
}

/// A scenario load error: the file and what is wrong, with line and column when known.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}{}: {message}", .location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ScenarioError {
    pub file: PathBuf,
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl Scenario {
    /// Reads, parses and validates one scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_path_buf(),
            location: None,
            message: format!("cannot read scenario: {e}"),
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let location = e.span().map(|span| line_col(text, span.start));
            ScenarioError {
                file: path.to_path_buf(),
                location,
                message: e.message().trim().to_string(),
            }
        })?;
        scenario.validate().map_err(|message| ScenarioError {
            file: path.to_path_buf(),
            location: None,
            message,
        })?;
        Ok(scenario)
    }

    /// Aliases the home provides.
    pub fn aliases(&self) -> BTreeSet<String> {
        (0..self.home.threads)
            .map(|i| format!("t{i}"))
            .chain((0..self.home.archived).map(|i| format!("a{i}")))
            .collect()
    }

    pub fn fault_id(&self, index: usize) -> String {
        let decl = &self.faults[index];
        decl.id.clone().unwrap_or_else(|| {
            let kind = decl.fault.kind();
            let same = self
                .faults
                .iter()
                .filter(|f| f.fault.kind() == kind)
                .count();
            if same > 1 {
                format!("{kind}#{index}")
            } else {
                kind.to_string()
            }
        })
    }

    fn validate(&self) -> Result<(), String> {
        let aliases = self.aliases();
        let check_alias = |alias: &str, at: &str| -> Result<(), String> {
            let bare = alias.strip_prefix("other:").unwrap_or(alias);
            if bare == "none" || aliases.contains(bare) {
                Ok(())
            } else {
                Err(format!(
                    "{at}: unknown thread '{alias}' (this home has: {})",
                    aliases.iter().cloned().collect::<Vec<_>>().join(", ")
                ))
            }
        };
        let fault_ids: Vec<String> = (0..self.faults.len()).map(|i| self.fault_id(i)).collect();
        for (i, decl) in self.faults.iter().enumerate() {
            for alias in decl.fault.thread_aliases() {
                check_alias(alias, &format!("fault '{}'", fault_ids[i]))?;
            }
        }
        let mut names = BTreeSet::new();
        for w in &self.workers {
            if !names.insert(w.name.clone()) {
                return Err(format!("worker '{}' is declared twice", w.name));
            }
            w.parsed_failpoints()
                .map_err(|e| format!("worker '{}': {e}", w.name))?;
            w.skew_ms()
                .map_err(|e| format!("worker '{}': clock_skew: {e}", w.name))?;
            for t in &w.threads {
                check_alias(t, &format!("worker '{}'", w.name))?;
            }
            match w.role {
                Role::Lookup if w.threads.is_empty() => {
                    return Err(format!("worker '{}': role lookup needs `threads`", w.name))
                }
                Role::LockHolder if w.hold.is_none() => {
                    return Err(format!(
                        "worker '{}': role lock_holder needs `hold`",
                        w.name
                    ))
                }
                Role::Entrypoint => check_entrypoint(w.entrypoint.as_deref().unwrap_or(""))
                    .map_err(|e| format!("worker '{}': {e}", w.name))?,
                _ => {}
            }
        }
        let worker = |name: &str, at: usize| -> Result<&WorkerSpec, String> {
            self.workers.iter().find(|w| w.name == name).ok_or_else(|| {
                format!(
                    "step {}: unknown worker '{name}' (declared: {})",
                    at + 1,
                    self.workers
                        .iter()
                        .map(|w| w.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        };
        let mut started = BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("step {}", i + 1);
            match step {
                Step::Start { worker: w } => {
                    worker(w, i)?;
                    if !started.insert(w.clone()) {
                        return Err(format!("{at}: worker '{w}' is started twice"));
                    }
                }
                Step::WaitFor {
                    worker: w, event, ..
                } => {
                    worker(w, i)?;
                    if let Some(fp) = event.strip_prefix("failpoint:") {
                        crate::failpoints::validate_name(fp).map_err(|e| format!("{at}: {e}"))?;
                    }
                }
                Step::Release {
                    worker: w,
                    failpoint,
                } => {
                    worker(w, i)?;
                    crate::failpoints::validate_name(failpoint)
                        .map_err(|e| format!("{at}: {e}"))?;
                }
                Step::Kill { worker: w } => {
                    if worker(w, i)?.kind != WorkerKind::Process {
                        return Err(format!(
                            "{at}: kill needs a process worker; '{w}' is a task"
                        ));
                    }
                }
                Step::Join {
                    worker: w, expect, ..
                } => {
                    worker(w, i)?;
                    check_expect(expect, &at, &check_alias)?;
                }
                Step::Inject { fault } => {
                    let idx = fault_ids.iter().position(|f| f == fault).ok_or_else(|| {
                        format!(
                            "{at}: unknown fault '{fault}' (declared: {})",
                            fault_ids.join(", ")
                        )
                    })?;
                    if self.faults[idx].at != FaultTime::Step {
                        return Err(format!("{at}: fault '{fault}' is applied at setup; declare it with at = \"step\""));
                    }
                }
                Step::Lookup { thread, expect, .. } | Step::Archive { thread, expect, .. } => {
                    check_alias(thread, &at)?;
                    check_expect(expect, &at, &check_alias)?;
                }
                Step::Init { expect } | Step::List { expect, .. } => {
                    check_expect(expect, &at, &check_alias)?
                }
                Step::Entrypoint { entrypoint, expect } => {
                    check_entrypoint(entrypoint).map_err(|e| format!("{at}: {e}"))?;
                    check_expect(expect, &at, &check_alias)?;
                }
                Step::ExpectRow { thread, expect } => {
                    check_alias(thread, &at)?;
                    if let Some(p) = &expect.path {
                        check_alias(p, &at)?;
                    }
                }
                Step::Sleep { .. } | Step::ExpectBackfill { .. } | Step::Check { .. } => {}
            }
        }
        Ok(())
    }
}

fn check_entrypoint(name: &str) -> Result<(), String> {
    const VALID: [&str; 4] = ["cli", "exec", "app_server", "mcp_server"];
    if VALID.contains(&name) {
        Ok(())
    } else {
        Err(format!(
            "unknown entrypoint '{name}' (valid: {})",
            VALID.join(", ")
        ))
    }
}

fn check_expect(
    e: &Expect,
    at: &str,
    check_alias: &dyn Fn(&str, &str) -> Result<(), String>,
) -> Result<(), String> {
    if let Some(p) = e.path.as_deref().filter(|p| *p != PATH_OF_ROW) {
        check_alias(p, at)?;
    }
    for s in e.stale.iter().flatten() {
        check_alias(s, at)?;
    }
    if let Some(source) = &e.source {
        const VALID: [&str; 4] = ["db", "filesystem", "unverified_db", "none"];
        if !VALID.contains(&source.as_str()) {
            return Err(format!(
                "{at}: unknown source '{source}' (valid: {})",
                VALID.join(", ")
            ));
        }
    }
    if let Some(reason) = &e.fallback_reason {
        const VALID: [&str; 7] = [
            "db_unavailable",
            "missing_row",
            "db_error",
            "stale_path",
            "mismatch",
            "unverified_path",
            "none",
        ];
        if !VALID.contains(&reason.as_str()) {
            return Err(format!(
                "{at}: unknown fallback_reason '{reason}' (valid: {})",
                VALID.join(", ")
            ));
        }
    }
    for bound in [&e.elapsed_min, &e.elapsed_max].into_iter().flatten() {
        parse_bound(bound, &TimingSpec::default()).map_err(|err| format!("{at}: {err}"))?;
    }
    Ok(())
}

/// Resolves an elapsed-time bound against the scenario's timings.
pub fn parse_bound(text: &str, timing: &TimingSpec) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    for part in text.split('+') {
        let part = part.trim();
        total += match part {
            "wait_timeout" => timing.wait_timeout,
            "lease" => timing.lease,
            "slack" => timing.slack,
            "poll" => timing.poll,
            "stall" => timing.stall.unwrap_or(timing.wait_timeout),
            "wait_cap" => timing.wait_cap.max(timing.wait_timeout),
            other => crate::timing::parse_duration(other).map_err(|_| {
                format!("invalid time bound '{text}' (a duration, or sums of wait_timeout, lease, slack, poll, stall, wait_cap)")
            })?,
        };
    }
    Ok(total)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(Path::new("s.toml"), text)
    }

    #[test]
    fn a_minimal_scenario_parses_with_defaults() {
        let s = parse("name = \"x\"\n[[step]]\ndo = \"lookup\"\nthread = \"t0\"\nexpect = { source = \"db\" }\n").unwrap();
        assert_eq!(s.home.threads, 3);
        assert_eq!(s.timing.wait_timeout, Duration::from_secs(1));
    }

    #[test]
    fn an_unknown_fault_kind_is_reported_with_line_and_valid_kinds() {
        let err = parse("name = \"x\"\n\n[[fault]]\nkind = \"explode\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("s.toml:3:"), "{text}");
        assert!(text.contains("stale_row"), "{text}");
    }

    #[test]
    fn an_unknown_thread_alias_lists_the_home() {
        let err = parse("name = \"x\"\n[[step]]\ndo = \"lookup\"\nthread = \"t9\"\n").unwrap_err();
        assert!(err.to_string().contains("t0, t1, t2"), "{err}");
    }

    #[test]
    fn an_unknown_step_key_is_rejected() {
        let err = parse("name = \"x\"\n[[step]]\ndo = \"lookup\"\nthread = \"t0\"\nexpect = { sorce = \"db\" }\n").unwrap_err();
        assert!(err.to_string().contains("sorce"), "{err}");
    }

    #[test]
    fn bounds_resolve_against_timings() {
        let t = TimingSpec::default();
        assert_eq!(
            parse_bound("wait_timeout+slack", &t).unwrap(),
            t.wait_timeout + t.slack
        );
        assert_eq!(
            parse_bound("200ms", &t).unwrap(),
            Duration::from_millis(200)
        );
        assert!(parse_bound("soon", &t).is_err());
    }

    /// Serialising a scenario gives TOML that parses back to the same scenario, leaving
    /// out what is default: checked on every file of the catalog.
    #[test]
    fn catalog_scenarios_serialise_and_parse_back() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let sc = Scenario::load(&path).unwrap();
            let text = toml::to_string_pretty(&sc).unwrap();
            let again = Scenario::parse(&path, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(
                toml::to_string_pretty(&again).unwrap(),
                text,
                "{}",
                path.display()
            );
            assert!(
                !text.contains("prune = false"),
                "defaults are left out:\n{text}"
            );
            seen += 1;
        }
        assert!(seen > 10, "only {seen} scenarios under {}", dir.display());
    }

    #[test]
    fn kill_of_a_task_worker_is_rejected() {
        let err = parse(
            "name = \"x\"\n[[worker]]\nname = \"w\"\nrole = \"init\"\n[[step]]\ndo = \"kill\"\nworker = \"w\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("process worker"), "{err}");
    }
}
