//! A deliberately wrong state layer for proving that the harness's checks fail: it wraps
//! the reference and bends one operation's answer (or panics in it), so a test can run a
//! scenario through the runner and show the check that must catch the bend does.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use statedb_harness::layer::{Capabilities, InitSummary, LayerError, ReferenceLayer, StateLayer};
use statedb_harness::lookup::{ListPage, ListRequest, LookupResult};
use statedb_harness::process::ProcessContext;
use statedb_harness::scenario::model::Scenario;
use statedb_harness::scenario::runner::{run_scenario, ScenarioOutcome};
use statedb_harness::state::StateDbHandle;
use statedb_harness::state_db::StateDbConfig;
use statedb_harness::thread::Scope;

type InitResult = Result<(StateDbHandle, InitSummary), LayerError>;

type Hook<F> = Option<Arc<F>>;
type Replace<T> = dyn Fn(&Arc<ProcessContext>, &StateDbConfig) -> T + Send + Sync;
type Bend<T> = dyn Fn(T) -> T + Send + Sync;
/// A lookup bend also gets the codex home (to pick a file to answer with).
type LookupBend = dyn Fn(LookupResult, &Path) -> LookupResult + Send + Sync;

/// One bend of the reference. `init` and `open_existing` replace the operation (call the
/// reference inside to bend its answer); the others get the reference's answer and return
/// the one the broken layer reports instead.
#[derive(Clone, Default)]
pub struct Bends {
    pub init: Hook<Replace<InitResult>>,
    pub open_existing: Hook<Replace<Result<Option<StateDbHandle>, LayerError>>>,
    pub backfill: Hook<Bend<Result<InitSummary, LayerError>>>,
    pub lookup: Hook<LookupBend>,
    pub list: Hook<Bend<Result<ListPage, LayerError>>>,
    pub entrypoint: Hook<Bend<Option<serde_json::Value>>>,
}

/// The reference with `bends` applied.
#[derive(Clone, Default)]
pub struct BrokenLayer {
    pub bends: Bends,
}

impl BrokenLayer {
    pub fn new(bends: Bends) -> Arc<Self> {
        Arc::new(BrokenLayer { bends })
    }
}

impl StateLayer for BrokenLayer {
    type Handle = StateDbHandle;

    fn name(&self) -> String {
        "broken".into()
    }

    fn capabilities(&self) -> Capabilities {
        ReferenceLayer.capabilities()
    }

    fn init(&self, ctx: &Arc<ProcessContext>, cfg: &StateDbConfig) -> InitResult {
        match &self.bends.init {
            Some(replace) => replace(ctx, cfg),
            None => ReferenceLayer.init(ctx, cfg),
        }
    }

    fn open_existing(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<Option<StateDbHandle>, LayerError> {
        match &self.bends.open_existing {
            Some(replace) => replace(ctx, cfg),
            None => ReferenceLayer.open_existing(ctx, cfg),
        }
    }

    fn backfill(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<InitSummary, LayerError> {
        let r = ReferenceLayer.backfill(ctx, cfg);
        match &self.bends.backfill {
            Some(bend) => bend(r),
            None => r,
        }
    }

    fn lookup(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&StateDbHandle>,
        codex_home: &Path,
        id: &str,
        scope: Scope,
    ) -> LookupResult {
        let r = ReferenceLayer.lookup(ctx, handle, codex_home, id, scope);
        match &self.bends.lookup {
            Some(bend) => bend(r, codex_home),
            None => r,
        }
    }

    fn list(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&StateDbHandle>,
        codex_home: &Path,
        req: &ListRequest,
    ) -> Result<ListPage, LayerError> {
        let r = ReferenceLayer.list(ctx, handle, codex_home, req);
        match &self.bends.list {
            Some(bend) => bend(r),
            None => r,
        }
    }

    fn index_rollout(&self, handle: &StateDbHandle, path: &Path) -> Result<(), LayerError> {
        ReferenceLayer.index_rollout(handle, path)
    }

    fn run_entrypoint(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
        kind: &str,
        active: &[Uuid],
        archived: &[Uuid],
    ) -> Option<serde_json::Value> {
        let r = ReferenceLayer.run_entrypoint(ctx, cfg, kind, active, archived);
        match &self.bends.entrypoint {
            Some(bend) => bend(r),
            None => r,
        }
    }
}

// Proving a check fails: a base scenario the reference passes, bent by a broken layer.

pub fn run_with(text: &str, bends: Bends) -> ScenarioOutcome {
    let file = Path::new("check.toml");
    let sc = Scenario::parse(file, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(run_scenario(
        BrokenLayer::new(bends),
        &sc,
        file,
        &crate::common::scenario_options(7),
    ));
    rt.shutdown_timeout(Duration::from_secs(2));
    if let Some(b) = &out.bundle {
        let _ = std::fs::remove_dir_all(b);
    }
    out
}

/// The base passes unbent; bent, its failures contain `needle`.
pub fn proves(text: &str, bends: Bends, needle: &str) {
    let clean = run_with(text, Bends::default());
    assert!(
        clean.failures.is_empty(),
        "the reference fails the base: {:?}\n{text}",
        clean.failures
    );
    let bent = run_with(text, bends);
    assert!(
        bent.failures.iter().any(|f| f.contains(needle)),
        "expected a failure containing {needle:?}, got {:?}\n{text}",
        bent.failures
    );
}

pub fn sql(handle: &StateDbHandle, statement: &'static str) {
    handle
        .read("broken layer", |c| c.execute_batch(statement))
        .expect("broken layer sql");
}

pub type InitBend = fn(&StateDbHandle);

/// An init that runs the reference, then damages what it wrote with `damage`.
pub fn init_then(damage: InitBend) -> Bends {
    Bends {
        init: Some(Arc::new(move |ctx, cfg| {
            let (handle, summary) = ReferenceLayer.init(ctx, cfg)?;
            damage(&handle);
            Ok((handle, summary))
        })),
        ..Default::default()
    }
}
