//! Whether a command may create `state_5.sqlite` in a home that has none.
//!
//! A DB the harness creates must be one Codex accepts, or the harness must not create it:
//! Codex owns its schema through sqlx migrations, and a `threads` table it did not make
//! stops it from starting. So, when the DB is missing:
//! - a harness-own home (it carries `state::creation::HOME_MARKER`) or `--harness-db`:
//!   the harness creates its own DB, marked as such;
//! - otherwise the installed Codex creates it (`--codex-bin`, `CODEX_BIN`, or the pinned
//!   install): `codex app-server` is started on the home and stopped once it answered;
//! - otherwise the command refuses, naming both flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::codex::{AppServer, CodexBin, HomeSpec};
use crate::state::creation::{is_harness_home, HOME_MARKER};
use crate::state::RuntimeOptions;

/// How long Codex may take to create and migrate a DB.
const CODEX_CREATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Flags of the commands that may create the DB.
#[derive(Debug, Clone, Default, Args)]
pub struct CreationArgs {
    /// The Codex binary that creates a missing state DB in a home that is not the harness's
    /// own (default: CODEX_BIN, then the pinned install under tools/codex).
    #[arg(long, value_name = "PATH")]
    pub codex_bin: Option<PathBuf>,
    /// Create a missing state DB as the harness's own even in a home without the harness
    /// marker. Codex cannot open such a DB: use it only for homes Codex never sees.
    #[arg(long)]
    pub harness_db: bool,
}

/// What was done about the DB file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// The file exists; nothing was done.
    Exists,
    /// The harness may create its own DB (harness home or `--harness-db`).
    HarnessOwn,
    /// Codex created it.
    CreatedByCodex { codex: PathBuf },
}

/// Makes sure that opening the DB of `runtime` will not create one Codex cannot use.
pub fn prepare(runtime: &RuntimeOptions, args: &CreationArgs) -> Result<Prepared, String> {
    let db = runtime.db_path();
    if db.exists() {
        return Ok(Prepared::Exists);
    }
    if args.harness_db || is_harness_home(&runtime.codex_home) {
        return Ok(Prepared::HarnessOwn);
    }
    let bin = CodexBin::locate(args.codex_bin.as_deref()).map_err(|err| {
        format!(
            "no state db at {} and {} is not a statedb-harness home (no {HOME_MARKER}); \
             the harness does not create Codex's DB itself, and no Codex binary to create it \
             was found ({err}). Pass --codex-bin PATH (or set CODEX_BIN) to let Codex create \
             it, or --harness-db to create a harness-own DB that Codex cannot open",
            db.display(),
            runtime.codex_home.display()
        )
    })?;
    create_with_codex(&bin, runtime)?;
    if !db.exists() {
        return Err(format!(
            "{} ran on {} but left no state db at {}; check its version (`{} --version`)",
            bin.path().display(),
            runtime.codex_home.display(),
            db.display(),
            bin.path().display()
        ));
    }
    Ok(Prepared::CreatedByCodex {
        codex: bin.path().to_path_buf(),
    })
}

/// Starts `codex app-server` on the home (which creates and migrates the DB) and stops it.
fn create_with_codex(bin: &CodexBin, runtime: &RuntimeOptions) -> Result<(), String> {
    let home = HomeSpec {
        codex_home: runtime.codex_home.clone(),
        sqlite_home: (runtime.sqlite_home != runtime.codex_home)
            .then(|| runtime.sqlite_home.clone()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime to run Codex: {e}"))?;
    rt.block_on(async {
        let server = AppServer::start(bin, &home, CODEX_CREATE_TIMEOUT).await?;
        server.shutdown().await
    })
    .map(|_| ())
    .map_err(|err| {
        format!(
            "{} could not create the state db in {}: {err}",
            bin.path().display(),
            runtime.codex_home.display()
        )
    })
}
