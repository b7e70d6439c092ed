//! Running the scenario catalog against your own state layer.
//!
//! `AuditedLayer` stands in for another crate's implementation: it wraps the reference and
//! counts lookups, and (to show how capabilities work) declares that it does not honour
//! failpoints, so scenarios that need them are reported as skipped, never as passed. The
//! same binary doubles as its own worker process: the runner re-invokes it as
//! `custom_layer worker --plan FILE`.
//!
//!     cargo run --example custom_layer -- scenarios/
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use statedb_harness::layer::{Capabilities, InitSummary, LayerError, ReferenceLayer, StateLayer};
use statedb_harness::lookup::{ListPage, ListRequest, LookupResult};
use statedb_harness::process::ProcessContext;
use statedb_harness::scenario::catalog;
use statedb_harness::scenario::roles::worker_main;
use statedb_harness::scenario::runner::{RunOptions, Status};
use statedb_harness::state::StateDbHandle;
use statedb_harness::state_db::StateDbConfig;
use statedb_harness::thread::Scope;

#[derive(Default)]
struct AuditedLayer {
    inner: ReferenceLayer,
    lookups: AtomicU64,
}

impl StateLayer for AuditedLayer {
    type Handle = StateDbHandle;

    fn name(&self) -> String {
        "audited-reference".into()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            failpoints: false,
            ..self.inner.capabilities()
        }
    }

    fn init(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<(StateDbHandle, InitSummary), LayerError> {
        self.inner.init(ctx, cfg)
    }

    fn open_existing(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<Option<StateDbHandle>, LayerError> {
        self.inner.open_existing(ctx, cfg)
    }

    fn backfill(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<InitSummary, LayerError> {
        self.inner.backfill(ctx, cfg)
    }

    fn lookup(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&StateDbHandle>,
        codex_home: &Path,
        id: &str,
        scope: Scope,
    ) -> LookupResult {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        self.inner.lookup(ctx, handle, codex_home, id, scope)
    }

    fn list(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&StateDbHandle>,
        codex_home: &Path,
        req: &ListRequest,
    ) -> Result<ListPage, LayerError> {
        self.inner.list(ctx, handle, codex_home, req)
    }

    fn index_rollout(&self, handle: &StateDbHandle, path: &Path) -> Result<(), LayerError> {
        self.inner.index_rollout(handle, path)
    }

    fn run_entrypoint(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
        kind: &str,
        active: &[uuid::Uuid],
        archived: &[uuid::Uuid],
    ) -> Option<serde_json::Value> {
        self.inner.run_entrypoint(ctx, cfg, kind, active, archived)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker")
        && args.get(2).map(String::as_str) == Some("--plan")
    {
        return worker_main(AuditedLayer::default(), Path::new(&args[3]));
    }
    let paths: Vec<PathBuf> = if args.len() > 1 {
        args[1..].iter().map(PathBuf::from).collect()
    } else {
        vec!["scenarios".into()]
    };
    let entries = match catalog::load(&paths) {
        Ok(e) => e,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let layer = Arc::new(AuditedLayer::default());
    let opts = RunOptions {
        seed: 7,
        worker_binary: std::env::current_exe().ok(),
        ..RunOptions::default()
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let outcomes = rt.block_on(catalog::run_all(layer.clone(), &entries, &opts, 2, |_| {}));
    for o in &outcomes {
        let why = o
            .skipped_reason
            .clone()
            .unwrap_or_else(|| o.failures.join("; "));
        println!("{:?}\t{}\t{}", o.status, o.name, why);
    }
    let failed = outcomes.iter().filter(|o| o.status == Status::Fail).count();
    println!(
        "lookups served by this process: {}",
        layer.lookups.load(Ordering::Relaxed)
    );
    println!(
        "{} passed, {} failed, {} skipped",
        outcomes.iter().filter(|o| o.status == Status::Pass).count(),
        failed,
        outcomes.iter().filter(|o| o.status == Status::Skip).count()
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
