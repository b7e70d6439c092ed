//! A deliberately wrong state layer for proving that the harness's checks fail: it wraps
//! the reference and bends one operation's answer (or panics in it), so a test can run a
//! scenario through the runner and show the check that must catch the bend does.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use statedb_harness::layer::{Capabilities, InitSummary, LayerError, ReferenceLayer, StateLayer};
use statedb_harness::lookup::{ListPage, ListRequest, LookupResult};
use statedb_harness::process::ProcessContext;
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
