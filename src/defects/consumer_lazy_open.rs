//! Seeded bug `consumer-lazy-open`: a consumer opens its own DB handle instead of using the
//! one passed in.

use std::path::Path;
use std::sync::Arc;

use super::{Decisions, Defect, ExpectedKill};
use crate::process::ProcessContext;
use crate::state::{OpenMode, RuntimeOptions, StateDbHandle, StateRuntime};

pub struct ConsumerLazyOpen;

impl Decisions for ConsumerLazyOpen {
    /// Opens its own handle on every use, the double open the plumbing was built to
    /// remove. The process registry refuses it while the process's handle lives, and the
    /// consumer then works from the files.
    fn consumer_handle(
        &self,
        ctx: &Arc<ProcessContext>,
        given: Option<&StateDbHandle>,
        codex_home: &Path,
        default_provider: &str,
    ) -> Option<StateDbHandle> {
        let opts = match given {
            Some(handle) => handle.options().clone(),
            None => {
                let mut opts = RuntimeOptions::new(codex_home);
                opts.default_provider = default_provider.to_string();
                opts
            }
        };
        match StateRuntime::open(ctx, opts, OpenMode::CreateAndMigrate) {
            Ok(handle) => Some(handle),
            Err(err) => {
                tracing::warn!("consumer could not open its own state db: {err}; reading the rollout files instead");
                None
            }
        }
    }
}

pub const DEFECT: Defect = Defect {
    description: "a consumer opens its own DB handle instead of using the one passed in",
    decisions: &ConsumerLazyOpen,
    killed_by: &[
        ExpectedKill {
            scenario: "entrypoints_one_open_each",
            failure: "step 1 (entrypoint cli): expected refused_opens = 0",
        },
        ExpectedKill {
            scenario: "archive_duplicate_never_overwrites",
            failure: "is missing from the Active listing",
        },
    ],
};
