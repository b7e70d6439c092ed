//! Worker roles: what one worker does, the same code whether it runs as a tokio blocking
//! task or as a real OS process (`worker_main`). A worker gets everything explicitly in a
//! `WorkerPlan` (homes, timings, failpoints, clock skew, variant, role parameters) and
//! reports a `WorkerOutcome`; along the way its `ProcessContext` emits events.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::model::{HandleMode, Role};
use crate::clock::Clock;
use crate::events::EventSink;
use crate::failpoints::{DeathMode, FailpointSet};
use crate::layer::{InitSummary, StateLayer};
use crate::lookup::{ListRequest, LookupResult};
use crate::process::ProcessContext;
use crate::rollout::writer::{write_rollout, RolloutSpec};
use crate::state::threads::SortKey;
use crate::state::{JournalMode, RuntimeOptions};
use crate::state_db::StateDbConfig;
use crate::thread::Scope;
use crate::timing::Timings;
use crate::variant::Variant;

/// Everything a worker needs, passed explicitly (as JSON to a process worker).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerPlan {
    pub name: String,
    pub role: Role,
    pub codex_home: PathBuf,
    pub sqlite_home: PathBuf,
    pub journal_mode: JournalMode,
    pub timings: Timings,
    pub failpoints: Vec<String>,
    pub release_dir: PathBuf,
    pub skew_ms: i64,
    pub variant: Variant,
    pub handle: HandleMode,
    /// (alias, id) of the threads a lookup worker looks up.
    pub threads: Vec<(String, Uuid)>,
    /// Ids among `threads` whose rollout is archived (entrypoint workloads).
    #[serde(default)]
    pub archived_ids: Vec<Uuid>,
    pub scope: Scope,
    pub repeat: u32,
    pub hold_ms: Option<u64>,
    pub count: u32,
    pub page_size: Option<usize>,
    pub list_archived: bool,
    pub prune: bool,
    /// lookup/list: the codex home asked about, when not the handle's own.
    #[serde(default)]
    pub ask_home: Option<PathBuf>,
    /// list: the cursor of the first page requested (`None`: the first page).
    #[serde(default)]
    pub cursor: Option<String>,
    /// list: source kinds and model providers to keep (empty: all).
    #[serde(default)]
    pub list_filter: crate::lookup::ListFilter,
    /// archive: move the thread back out of the archive instead.
    #[serde(default)]
    pub unarchive: bool,
    pub entrypoint: Option<String>,
    pub seed: u64,
}

impl WorkerPlan {
    pub fn config(&self) -> StateDbConfig {
        let mut runtime = RuntimeOptions::new(&self.codex_home);
        runtime.sqlite_home = self.sqlite_home.clone();
        runtime.journal_mode = self.journal_mode;
        runtime.busy_timeout = self.timings.busy_timeout;
        StateDbConfig {
            runtime,
            timings: self.timings,
        }
    }

    /// The process context this plan describes, with the given event sink and death mode.
    pub fn context(
        &self,
        events: EventSink,
        death: DeathMode,
    ) -> Result<Arc<ProcessContext>, String> {
        let failpoints = self
            .failpoints
            .iter()
            .map(|f| f.parse())
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ProcessContext::builder()
            .name(&self.name)
            .clock(Clock::skewed(self.skew_ms))
            .variant(self.variant)
            .events(events)
            .failpoints(FailpointSet::new(
                failpoints,
                Some(self.release_dir.clone()),
                death,
            ))
            .build())
    }
}

/// A listing over all pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSummary {
    pub archived: bool,
    pub items: Vec<Uuid>,
    /// The path listed for each item (same order), for the outside checks.
    #[serde(default)]
    pub paths: Vec<std::path::PathBuf>,
    pub stale: Vec<Uuid>,
    pub pages: usize,
}

/// What a worker reports when it ends.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerOutcome {
    pub ok: bool,
    pub error: Option<String>,
    pub timed_out: bool,
    /// Stopped by a `kill`/`exit` failpoint (task workers) or a signal (process workers).
    pub killed: bool,
    pub elapsed_ms: u64,
    pub init: Option<InitSummary>,
    pub lookups: Vec<LookupResult>,
    pub list: Option<ListSummary>,
    pub entrypoint: Option<serde_json::Value>,
    /// Set by the runner for process workers.
    pub exit_code: Option<i32>,
}

/// Event kind of a process worker's final report line.
pub const WORKER_RESULT: &str = "worker_result";

/// Runs one role to completion.
pub fn run_role<L: StateLayer>(
    layer: &L,
    ctx: &Arc<ProcessContext>,
    plan: &WorkerPlan,
) -> WorkerOutcome {
    let started = Instant::now();
    let mut out = WorkerOutcome::default();
    let result = match plan.role {
        Role::Init => init_handle(layer, ctx, plan, &mut out).map(drop),
        Role::Backfill => layer
            .backfill(ctx, &plan.config())
            .map(|summary| out.init = Some(summary))
            .map_err(|e| e.message),
        Role::Lookup => role_lookup(layer, ctx, plan, &mut out),
        Role::List => role_list(layer, ctx, plan, &mut out),
        Role::Writer => role_writer(layer, ctx, plan),
        Role::LockHolder => role_lock_holder(ctx, plan),
        Role::Archive => {
            let handle = obtain(layer, ctx, plan, &mut out);
            match plan.threads.first() {
                Some((_, id)) => layer
                    .archive(ctx, handle.as_ref(), &plan.codex_home, *id, plan.unarchive)
                    .map(|moved| ctx.emit("archived", json!({"moved": moved})))
                    .map_err(|e| e.message),
                None => Err("archive needs a thread".to_string()),
            }
        }
        Role::Commit => role_commit(ctx, plan),
        Role::Entrypoint => {
            let kind = plan.entrypoint.clone().unwrap_or_default();
            let active: Vec<Uuid> = plan
                .threads
                .iter()
                .map(|(_, id)| *id)
                .filter(|id| !plan.archived_ids.contains(id))
                .collect();
            match layer.run_entrypoint(ctx, &plan.config(), &kind, &active, &plan.archived_ids) {
                Some(report) => {
                    out.entrypoint = Some(report);
                    Ok(())
                }
                None => Err("this state layer does not implement entrypoints".to_string()),
            }
        }
    };
    out.elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(()) => out.ok = true,
        Err(e) => {
            out.killed = e.contains("killed the worker");
            out.error = Some(e);
        }
    }
    out
}

/// Process startup; records the summary (or the timeout) in `out`.
fn init_handle<L: StateLayer>(
    layer: &L,
    ctx: &Arc<ProcessContext>,
    plan: &WorkerPlan,
    out: &mut WorkerOutcome,
) -> Result<L::Handle, String> {
    match layer.init(ctx, &plan.config()) {
        Ok((handle, summary)) => {
            out.init = Some(summary);
            Ok(handle)
        }
        Err(e) => {
            out.timed_out = e.timed_out;
            Err(e.message)
        }
    }
}

fn obtain<L: StateLayer>(
    layer: &L,
    ctx: &Arc<ProcessContext>,
    plan: &WorkerPlan,
    out: &mut WorkerOutcome,
) -> Option<L::Handle> {
    match plan.handle {
        HandleMode::None => None,
        HandleMode::OpenOnly => match layer.open_existing(ctx, &plan.config()) {
            Ok(h) => h,
            Err(e) => {
                ctx.emit("handle_unavailable", json!({"error": e.message}));
                None
            }
        },
        HandleMode::Init => match init_handle(layer, ctx, plan, out) {
            Ok(h) => Some(h),
            Err(message) => {
                // Like the CLI: go on without the DB, and say why.
                ctx.emit("handle_unavailable", json!({"error": message}));
                None
            }
        },
    }
}

fn role_lookup<L: StateLayer>(
    layer: &L,
    ctx: &Arc<ProcessContext>,
    plan: &WorkerPlan,
    out: &mut WorkerOutcome,
) -> Result<(), String> {
    let handle = obtain(layer, ctx, plan, out);
    for _ in 0..plan.repeat.max(1) {
        for (_, id) in &plan.threads {
            let r = layer.lookup(
                ctx,
                handle.as_ref(),
                plan.ask_home.as_ref().unwrap_or(&plan.codex_home),
                &id.to_string(),
                plan.scope,
            );
            out.lookups.push(r);
        }
    }
    if out.lookups.iter().all(|r| r.path.is_some()) {
        Ok(())
    } else {
        Err("some lookups found nothing".to_string())
    }
}

fn role_list<L: StateLayer>(
    layer: &L,
    ctx: &Arc<ProcessContext>,
    plan: &WorkerPlan,
    out: &mut WorkerOutcome,
) -> Result<(), String> {
    let handle = obtain(layer, ctx, plan, out);
    let mut summary = ListSummary {
        archived: plan.list_archived,
        ..Default::default()
    };
    let mut cursor = plan.cursor.clone();
    loop {
        let req = ListRequest {
            archived: plan.list_archived,
            page_size: plan.page_size.unwrap_or(2),
            cursor: cursor.take(),
            sort: SortKey::Updated,
            prune: plan.prune,
            filter: plan.list_filter.clone(),
        };
        let page = layer
            .list(
                ctx,
                handle.as_ref(),
                plan.ask_home.as_ref().unwrap_or(&plan.codex_home),
                &req,
            )
            .map_err(|e| e.message)?;
        summary.pages += 1;
        summary.items.extend(page.items.iter().map(|i| i.thread_id));
        summary
            .paths
            .extend(page.items.iter().map(|i| i.path.clone()));
        summary.stale.extend(page.stale.iter().copied());
        match page.next_cursor {
            Some(c) if summary.pages < 10_000 => cursor = Some(c),
            _ => break,
        }
    }
    out.list = Some(summary);
    Ok(())
}

fn role_writer<L: StateLayer>(
    layer: &L,
    ctx: &Arc<ProcessContext>,
    plan: &WorkerPlan,
) -> Result<(), String> {
    let (handle, _) = layer.init(ctx, &plan.config()).map_err(|e| e.message)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(plan.seed ^ 0x5752_4954);
    for i in 0..plan.count {
        let created = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(
            crate::clock::real_now_ms() - 1000 * i64::from(i),
        )
        .unwrap_or_default();
        let mut bytes = [0u8; 10];
        rng.fill_bytes(&mut bytes);
        let id =
            uuid::Builder::from_unix_timestamp_millis(created.timestamp_millis() as u64, &bytes)
                .into_uuid();
        let mut spec = RolloutSpec::new(id, created);
        spec.user_messages = vec![format!("written by {} #{i}", plan.name)];
        let path = write_rollout(&plan.codex_home, &spec).map_err(|e| e.to_string())?;
        layer.index_rollout(&handle, &path).map_err(|e| e.message)?;
        ctx.emit("rollout_written", json!({"thread_id": id, "path": path}));
    }
    Ok(())
}

fn raw_connection(plan: &WorkerPlan) -> Result<rusqlite::Connection, String> {
    let db = plan.config().runtime.db_path();
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    conn.busy_timeout(plan.timings.busy_timeout)
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn role_lock_holder(ctx: &Arc<ProcessContext>, plan: &WorkerPlan) -> Result<(), String> {
    let conn = raw_connection(plan)?;
    conn.execute_batch(
        "BEGIN IMMEDIATE; UPDATE backfill_state SET updated_at = updated_at WHERE id = 1;",
    )
    .map_err(|e| format!("could not take the write lock: {e}"))?;
    ctx.emit("lock_held", json!({}));
    std::thread::sleep(Duration::from_millis(plan.hold_ms.unwrap_or(0)));
    conn.execute_batch("ROLLBACK").map_err(|e| e.to_string())?;
    ctx.emit("lock_released", json!({}));
    Ok(())
}

/// The `tokens_used` value a `commit` worker writes (scenarios check for it).
pub const COMMIT_TOKENS: i64 = 4242;

fn role_commit(ctx: &Arc<ProcessContext>, plan: &WorkerPlan) -> Result<(), String> {
    let conn = raw_connection(plan)?;
    let target = plan.threads.first().map(|(_, id)| id.to_string());
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| format!("could not begin: {e}"))?;
    let n = match &target {
        Some(id) => conn.execute(
            "UPDATE threads SET tokens_used = ?2 WHERE id = ?1",
            (id, COMMIT_TOKENS),
        ),
        None => conn.execute("UPDATE threads SET tokens_used = ?1", [COMMIT_TOKENS]),
    }
    .map_err(|e| e.to_string())?;
    conn.execute_batch("COMMIT").map_err(|e| e.to_string())?;
    ctx.emit("committed", json!({"rows": n}));
    Ok(())
}

/// Entry point of a worker process: `<binary> worker --plan FILE`. Another crate builds its
/// own worker binary by calling this with its `StateLayer`.
pub fn worker_main<L: StateLayer>(layer: L, plan_file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(plan_file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "error: cannot read worker plan {}: {e}",
                plan_file.display()
            );
            return ExitCode::from(2);
        }
    };
    let plan: WorkerPlan = match serde_json::from_str(&text) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: worker plan {} is invalid: {e}", plan_file.display());
            return ExitCode::from(2);
        }
    };
    let ctx = match plan.context(EventSink::Stdout, DeathMode::RealProcess) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: worker plan {}: {e}", plan_file.display());
            return ExitCode::from(2);
        }
    };
    let outcome = run_role(&layer, &ctx, &plan);
    let ok = outcome.ok;
    ctx.emit(
        WORKER_RESULT,
        serde_json::to_value(&outcome).unwrap_or_default(),
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
