//! How each entrypoint obtains its handle, once.
//!
//! The app-server calls `try_init` and cannot start without the DB (the modelled system
//! made that fatal because installation ids were being re-minted). The CLI, `exec` and the
//! MCP server call `init` and run from the files when it fails.

use std::sync::Arc;

use super::kind::EntrypointKind;
use crate::process::ProcessContext;
use crate::state::StateDbHandle;
use crate::state_db::{init, try_init, StateDbConfig};

/// The result of an entrypoint's DB startup.
#[derive(Debug, Clone)]
pub struct Startup {
    pub handle: Option<StateDbHandle>,
    /// Set when the entrypoint cannot run (app-server without a DB).
    pub fatal: Option<String>,
}

/// Initialises the state DB the way `kind` does. Call once per process.
pub fn start_state_db(
    ctx: &Arc<ProcessContext>,
    cfg: &StateDbConfig,
    kind: EntrypointKind,
) -> Startup {
    if kind.requires_state_db() {
        match try_init(ctx, cfg) {
            Ok(report) => Startup {
                handle: Some(report.handle),
                fatal: None,
            },
            Err(err) => {
                let message = format!(
                    "failed to initialize sqlite state runtime under {}: {err}",
                    cfg.runtime.sqlite_home.display()
                );
                tracing::error!("{message}");
                Startup {
                    handle: None,
                    fatal: Some(message),
                }
            }
        }
    } else {
        Startup {
            handle: init(ctx, cfg),
            fatal: None,
        }
    }
}
