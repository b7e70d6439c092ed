//! `run_entrypoint`: start one entrypoint in a process — initialise the handle once, wire
//! the consumers, drive them over a workload — and report how many handles the process
//! opened and how many second opens its registry refused.

use std::sync::Arc;

use super::kind::EntrypointKind;
use super::report::{ConsumerResult, EntrypointReport, Workload};
use super::startup::start_state_db;
use super::wiring::{ConsumerSet, CONSUMERS};
use crate::process::ProcessContext;
use crate::state_db::StateDbConfig;

/// Runs entrypoint `kind` in process `ctx` over `workload`. Blocking.
///
/// If the app-server cannot initialise the DB it does not start: the report has
/// `handle_available = false` and every consumer marked not run, with the startup error.
pub fn run_entrypoint(
    ctx: &Arc<ProcessContext>,
    cfg: &StateDbConfig,
    kind: EntrypointKind,
    workload: &Workload,
) -> EntrypointReport {
    let startup = start_state_db(ctx, cfg, kind);
    let handle_available = startup.handle.is_some();
    let consumers = match startup.fatal {
        Some(fatal) => CONSUMERS
            .iter()
            .map(|name| ConsumerResult {
                consumer: name.to_string(),
                ok: false,
                detail: format!("not run: {kind} did not start: {fatal}"),
            })
            .collect(),
        None => {
            let set = ConsumerSet::new(ctx, cfg, startup.handle);
            set.drive(workload)
            // The set, and with it the process's handle, is dropped here.
        }
    };
    let db_path = cfg.runtime.db_path();
    EntrypointReport {
        kind,
        handle_available,
        db_opens: ctx.open_count(&db_path),
        refused_opens: ctx.refused_opens(),
        consumers,
    }
}
