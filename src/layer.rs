//! `StateLayer`: the seam through which the harness drives an implementation of the state
//! layer. The reference (with its seeded-bug variants, chosen by the `ProcessContext`) is
//! one implementation; another crate implements this trait for its own state layer and
//! runs the whole scenario catalog against it (see `examples/`).
//!
//! Operations are blocking; the harness calls them from blocking threads or worker
//! processes. Methods an implementation cannot support are declared through
//! `Capabilities`, and scenarios that need them are reported as skipped, never as passed.

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use crate::backfill::run_backfill;
use crate::consumers::{read_session_index, LocalThreadStore};
use crate::entrypoints::{run_entrypoint, EntrypointKind, Workload};
use crate::lookup::{find_thread_path_in, list_threads_in, ListPage, ListRequest, LookupResult};
use crate::process::ProcessContext;
use crate::rollout::metadata::extract_metadata;
use crate::state::{threads, OpenMode, StateDbHandle, StateRuntime};
use crate::state_db::{open_existing, try_init, StateDbConfig};
use crate::thread::Scope;

/// What an implementation supports beyond the core operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// Honours the failpoints of the `ProcessContext`.
    pub failpoints: bool,
    /// Reads time through the context's `Clock` (so clock-skew faults apply).
    pub clock_skew: bool,
    /// Implements `run_entrypoint` (consumer wiring checks).
    pub entrypoints: bool,
}

impl Capabilities {
    /// Names of the capabilities this set lacks among `needed`.
    pub fn missing(&self, needed: &[Capability]) -> Vec<Capability> {
        needed
            .iter()
            .copied()
            .filter(|c| match c {
                Capability::Failpoints => !self.failpoints,
                Capability::ClockSkew => !self.clock_skew,
                Capability::Entrypoints => !self.entrypoints,
            })
            .collect()
    }
}

/// One optional capability, as scenarios require them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Failpoints,
    ClockSkew,
    Entrypoints,
}

/// What a successful startup reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InitSummary {
    pub status: String,
    pub waited_ms: u64,
    pub backfill_ran: bool,
    pub scanned: u64,
    pub upserted: u64,
    pub failed: u64,
}

/// A failed operation: its text, and whether it was the startup gate's timeout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerError {
    pub message: String,
    pub timed_out: bool,
}

impl LayerError {
    pub fn new(message: impl Into<String>) -> Self {
        LayerError {
            message: message.into(),
            timed_out: false,
        }
    }
}

impl std::fmt::Display for LayerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The state layer under test.
pub trait StateLayer: Send + Sync + 'static {
    /// The per-process handle consumers receive.
    type Handle: Clone + Send + Sync + 'static;

    fn name(&self) -> String;
    fn capabilities(&self) -> Capabilities;

    /// Process startup: open, migrate and pass the backfill gate.
    fn init(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<(Self::Handle, InitSummary), LayerError>;

    /// Open-only: never creates, migrates or backfills.
    fn open_existing(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<Option<Self::Handle>, LayerError>;

    /// One backfill attempt without the gate (claim, scan, complete — or return at once).
    fn backfill(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<InitSummary, LayerError>;

    fn lookup(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&Self::Handle>,
        codex_home: &Path,
        id: &str,
        scope: Scope,
    ) -> LookupResult;

    fn list(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&Self::Handle>,
        codex_home: &Path,
        req: &ListRequest,
    ) -> Result<ListPage, LayerError>;

    /// Archives (or unarchives) a thread by moving its rollout between the roots; returns
    /// what moved. Implementations without it report an error (the step fails, never passes).
    fn archive(
        &self,
        _ctx: &Arc<ProcessContext>,
        _handle: Option<&Self::Handle>,
        _codex_home: &Path,
        _id: Uuid,
        _unarchive: bool,
    ) -> Result<String, LayerError> {
        Err(LayerError::new(format!(
            "{} does not implement archive",
            self.name()
        )))
    }

    /// Indexes one rollout file (what a live writer does after appending).
    fn index_rollout(&self, handle: &Self::Handle, path: &Path) -> Result<(), LayerError>;

    /// Runs an entrypoint's consumer wiring over the given active and archived threads
    /// and returns its report (with `db_opens`, `refused_opens` and `consumers`); `None`
    /// when not supported.
    fn run_entrypoint(
        &self,
        _ctx: &Arc<ProcessContext>,
        _cfg: &StateDbConfig,
        _kind: &str,
        _active: &[Uuid],
        _archived: &[Uuid],
    ) -> Option<serde_json::Value> {
        None
    }
}

/// The reference implementation (its variant comes from each `ProcessContext`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceLayer;

impl StateLayer for ReferenceLayer {
    type Handle = StateDbHandle;

    fn name(&self) -> String {
        "reference".to_string()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            failpoints: true,
            clock_skew: true,
            entrypoints: true,
        }
    }

    fn init(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<(StateDbHandle, InitSummary), LayerError> {
        match try_init(ctx, cfg) {
            Ok(r) => Ok((
                r.handle.clone(),
                InitSummary {
                    status: r.status.to_string(),
                    waited_ms: r.waited.as_millis() as u64,
                    backfill_ran: r.backfill.ran,
                    scanned: r.backfill.scanned,
                    upserted: r.backfill.upserted,
                    failed: r.backfill.failed,
                },
            )),
            Err(err) => Err(LayerError {
                timed_out: err.is_timeout(),
                message: err.to_string(),
            }),
        }
    }

    fn open_existing(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<Option<StateDbHandle>, LayerError> {
        open_existing(ctx, cfg).map_err(|e| LayerError::new(e.to_string()))
    }

    fn backfill(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<InitSummary, LayerError> {
        let rt = StateRuntime::open(ctx, cfg.runtime.clone(), OpenMode::CreateAndMigrate)
            .map_err(|e| LayerError::new(e.to_string()))?;
        let outcome =
            run_backfill(&rt, &cfg.timings).map_err(|e| LayerError::new(e.to_string()))?;
        let status = rt
            .backfill_state()
            .map(|s| s.status.to_string())
            .map_err(|e| LayerError::new(e.to_string()))?;
        Ok(InitSummary {
            status,
            waited_ms: 0,
            backfill_ran: outcome.ran,
            scanned: outcome.scanned,
            upserted: outcome.upserted,
            failed: outcome.failed,
        })
    }

    fn lookup(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&StateDbHandle>,
        codex_home: &Path,
        id: &str,
        scope: Scope,
    ) -> LookupResult {
        find_thread_path_in(ctx, handle, codex_home, id, scope)
    }

    fn list(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&StateDbHandle>,
        codex_home: &Path,
        req: &ListRequest,
    ) -> Result<ListPage, LayerError> {
        list_threads_in(ctx, handle, codex_home, req).map_err(|e| LayerError::new(e.to_string()))
    }

    fn run_entrypoint(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
        kind: &str,
        active: &[Uuid],
        archived: &[Uuid],
    ) -> Option<serde_json::Value> {
        let kind: EntrypointKind = match kind.parse() {
            Ok(k) => k,
            Err(e) => return Some(serde_json::json!({ "error": e })),
        };
        // Name lookup resolves active threads only: names come from their index entries.
        let names = read_session_index(&cfg.runtime.codex_home)
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| active.contains(&e.id))
            .map(|e| e.thread_name)
            .collect();
        let workload = Workload {
            thread_ids: active.iter().chain(archived).copied().collect(),
            names,
        };
        serde_json::to_value(run_entrypoint(ctx, cfg, kind, &workload)).ok()
    }

    fn archive(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&StateDbHandle>,
        codex_home: &Path,
        id: Uuid,
        unarchive: bool,
    ) -> Result<String, LayerError> {
        let provider = handle
            .map_or("openai", |h| h.default_provider())
            .to_string();
        let store =
            LocalThreadStore::new(codex_home, provider, handle.cloned()).with_process(ctx.clone());
        let moved = if unarchive {
            store.unarchive_thread(id)
        } else {
            store.archive_thread(id)
        }
        .map_err(|e| LayerError::new(e.to_string()))?;
        Ok(format!(
            "{} -> {}",
            moved.from.display(),
            moved.to.display()
        ))
    }

    fn index_rollout(&self, handle: &StateDbHandle, path: &Path) -> Result<(), LayerError> {
        let extraction = extract_metadata(path, handle.default_provider())
            .map_err(|e| LayerError::new(e.to_string()))?;
        handle
            .write("index rollout", |tx| {
                threads::upsert(tx, &extraction.metadata).map_err(handle.err("index rollout"))
            })
            .map_err(|e| LayerError::new(e.to_string()))
    }
}
