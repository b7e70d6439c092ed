//! Commands on one codex home: `init`, `fixture`, `lookup`, `list`, `status`.
//! Each is an entrypoint: it builds one `ProcessContext` and opens the DB at most once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::args::{HomeArgs, TimingArgs};
use super::db_creation::{prepare, CreationArgs};
use super::usage_error;
use crate::fixture::{generate_home, FixtureOptions};
use crate::lookup::{find_thread_path_in, list_threads, ListError, ListFilter, ListRequest};
use crate::process::ProcessContext;
use crate::state::threads::SortKey;
use crate::state::{RuntimeOptions, StateDbHandle, StateError};
use crate::state_db::{open_existing, try_init_with, StateDbConfig};
use crate::thread::Scope;

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub homes: HomeArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub creation: CreationArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn init(args: InitArgs) -> ExitCode {
    if let Err(e) = args.homes.checked_codex_home() {
        return usage_error(e);
    }
    let ctx = ProcessContext::builder()
        .name("init")
        .variant(args.timing.variant)
        .build();
    let cfg = args.timing.config(&args.homes);
    if let Err(e) = prepare(&cfg.runtime, &args.creation) {
        return usage_error(e);
    }
    let recreate = |runtime: &RuntimeOptions| prepare(runtime, &args.creation).map(|_| ());
    match try_init_with(&ctx, &cfg, Some(&recreate)) {
        Ok(report) => {
            let b = &report.backfill;
            if args.json {
                println!(
                    "{}",
                    json!({
                        "ready": true,
                        "status": report.status.as_str(),
                        "waited_ms": report.waited.as_millis() as u64,
                        "backfill": {"ran": b.ran, "scanned": b.scanned, "upserted": b.upserted, "failed": b.failed},
                    })
                );
            } else {
                println!(
                    "ready: {} (status {}, waited {} ms; backfill {}: scanned {}, upserted {}, failed {})",
                    report.handle.db_path().display(),
                    report.status,
                    report.waited.as_millis(),
                    if b.ran { "ran here" } else { "not run here" },
                    b.scanned,
                    b.upserted,
                    b.failed
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            if args.json {
                println!("{}", json!({"ready": false, "error": err.to_string()}));
            }
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Args)]
pub struct FixtureArgs {
    /// Directory to write the home into (created if missing; must hold no rollouts yet).
    #[arg(long, env = "CODEX_HOME", value_name = "DIR")]
    pub codex_home: PathBuf,
    /// Number of active threads.
    #[arg(long)]
    pub threads: usize,
    /// Number of archived threads.
    #[arg(long, default_value_t = 0)]
    pub archived: usize,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn fixture(args: FixtureArgs) -> ExitCode {
    let home = &args.codex_home;
    for root in ["sessions", "archived_sessions"] {
        let dir = home.join(root);
        if dir.exists()
            && std::fs::read_dir(&dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return usage_error(format!(
                "{} already holds rollouts; fixture never overwrites a home, pick an empty directory",
                dir.display()
            ));
        }
    }
    let opts = FixtureOptions::sized(args.threads, args.archived, args.seed);
    match generate_home(home, &opts) {
        Ok(threads) => {
            println!(
                "wrote {} rollouts ({} active, {} archived) under {}",
                threads.len(),
                args.threads,
                args.archived,
                home.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => usage_error(format!(
            "cannot write fixture home {}: {err}",
            home.display()
        )),
    }
}

/// How a lookup or list command obtains its handle.
#[derive(Debug, Clone, Args)]
pub struct HandleChoice {
    /// Use an existing, complete DB only: create nothing, migrate nothing, backfill nothing.
    #[arg(long, conflicts_with = "no_db")]
    pub open_only: bool,
    /// Do not use the DB at all (filesystem only).
    #[arg(long)]
    pub no_db: bool,
    #[command(flatten)]
    pub creation: CreationArgs,
}

/// Gets the handle as the choice says. Startup failures do not abort: the command goes on
/// without a handle and says why on stderr (reason `db_unavailable`).
fn obtain_handle(
    ctx: &Arc<ProcessContext>,
    cfg: &StateDbConfig,
    choice: &HandleChoice,
) -> Option<StateDbHandle> {
    if choice.no_db {
        return None;
    }
    if choice.open_only {
        return match open_existing(ctx, cfg) {
            Ok(Some(h)) => Some(h),
            Ok(None) => {
                eprintln!(
                    "note: no complete state db at {}; continuing without it",
                    cfg.runtime.db_path().display()
                );
                None
            }
            Err(err) => {
                eprintln!("note: state db unavailable ({err}); continuing without it");
                None
            }
        };
    }
    if let Err(why) = prepare(&cfg.runtime, &choice.creation) {
        eprintln!("note: state db unavailable ({why}); continuing without it");
        return None;
    }
    // A damaged DB is rebuilt only into a DB its home may have: Codex's in a user's home.
    let recreate = |runtime: &RuntimeOptions| prepare(runtime, &choice.creation).map(|_| ());
    match try_init_with(ctx, cfg, Some(&recreate)) {
        Ok(report) => Some(report.handle),
        Err(err) => {
            eprintln!("note: state db unavailable ({err}); continuing without it");
            None
        }
    }
}

#[derive(Debug, Args)]
pub struct LookupArgs {
    #[command(flatten)]
    pub homes: HomeArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub handle: HandleChoice,
    /// Search archived threads only.
    #[arg(long, conflicts_with = "any")]
    pub archived: bool,
    /// Search active and archived threads.
    #[arg(long)]
    pub any: bool,
    /// The thread id (a UUID).
    pub thread_id: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn lookup(args: LookupArgs) -> ExitCode {
    let home = match args.homes.checked_codex_home() {
        Ok(h) => h,
        Err(e) => return usage_error(e),
    };
    if uuid::Uuid::parse_str(args.thread_id.trim()).is_err() {
        return usage_error(format!(
            "'{}' is not a thread id; thread ids are UUIDs like 019bffa1-3c5e-7d20-9a4b-2f6c1e8d0b17",
            args.thread_id
        ));
    }
    let scope = if args.any {
        Scope::Any
    } else if args.archived {
        Scope::Archived
    } else {
        Scope::Active
    };
    let ctx = ProcessContext::builder()
        .name("lookup")
        .variant(args.timing.variant)
        .build();
    let cfg = args.timing.config(&args.homes);
    let handle = obtain_handle(&ctx, &cfg, &args.handle);
    let result = find_thread_path_in(&ctx, handle.as_ref(), &home, &args.thread_id, scope);
    if args.json {
        println!(
            "{}",
            json!({
                "thread_id": result.thread_id,
                "path": result.path,
                "source": result.source,
                "fallback_reason": result.fallback_reason,
                "repaired": result.repaired,
            })
        );
    } else {
        match (&result.path, result.source) {
            (Some(path), Some(source)) => {
                println!("{}", path.display());
                let reason = result
                    .fallback_reason
                    .map(|r| format!(", fallback reason {}", r.as_str()))
                    .unwrap_or_default();
                eprintln!(
                    "source: {}{reason}{}",
                    serde_json::to_value(source)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    if result.repaired {
                        ", row repaired"
                    } else {
                        ""
                    }
                );
            }
            _ => eprintln!(
                "thread {} not found under {}",
                result.thread_id,
                home.display()
            ),
        }
    }
    if result.path.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub homes: HomeArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub handle: HandleChoice,
    /// List archived threads.
    #[arg(long)]
    pub archived: bool,
    /// Items per page.
    #[arg(long, default_value_t = 25)]
    pub page_size: usize,
    /// The next_cursor of a previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Sort key.
    #[arg(long, value_enum, default_value = "updated")]
    pub sort: SortKey,
    /// Delete rows whose rollout file is missing (reported as stale otherwise).
    #[arg(long)]
    pub prune: bool,
    /// Keep only threads of this source kind (`cli`, `vscode`, `exec`, ...; repeatable).
    #[arg(long = "source", value_name = "KIND")]
    pub sources: Vec<String>,
    /// Keep only threads of this model provider (repeatable).
    #[arg(long = "provider", value_name = "ID")]
    pub providers: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn list(args: ListArgs) -> ExitCode {
    let home = match args.homes.checked_codex_home() {
        Ok(h) => h,
        Err(e) => return usage_error(e),
    };
    let ctx = ProcessContext::builder()
        .name("list")
        .variant(args.timing.variant)
        .build();
    let cfg = args.timing.config(&args.homes);
    let handle = obtain_handle(&ctx, &cfg, &args.handle);
    let req = ListRequest {
        archived: args.archived,
        page_size: args.page_size,
        cursor: args.cursor.clone(),
        sort: args.sort,
        prune: args.prune,
        filter: ListFilter {
            sources: args.sources.clone(),
            providers: args.providers.clone(),
        },
    };
    match list_threads(handle.as_ref(), &home, &req) {
        Ok(page) => {
            if args.json {
                println!(
                    "{}",
                    json!({"items": page.items, "next_cursor": page.next_cursor, "stale": page.stale, "pruned": page.pruned})
                );
            } else {
                for item in &page.items {
                    println!(
                        "{}  {}  {}",
                        item.updated_at,
                        item.thread_id,
                        item.path.display()
                    );
                }
                for id in &page.stale {
                    eprintln!("stale row (rollout file missing): {id}");
                }
                if let Some(c) = &page.next_cursor {
                    eprintln!("next cursor: {c}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(ListError::InvalidCursor(c)) => usage_error(ListError::InvalidCursor(c)),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub homes: HomeArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn status(args: StatusArgs) -> ExitCode {
    if let Err(e) = args.homes.checked_codex_home() {
        return usage_error(e);
    }
    let ctx = ProcessContext::plain("status");
    let runtime = args.homes.runtime_options();
    let db_path = runtime.db_path();
    if !db_path.is_file() {
        return usage_error(format!("no state db at {}", db_path.display()));
    }
    let rt =
        match crate::state::StateRuntime::open(&ctx, runtime, crate::state::OpenMode::ExistingOnly)
        {
            Ok(rt) => rt,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        };
    let gather = || -> Result<_, StateError> {
        let state = rt.backfill_state()?;
        let rows = rt.thread_count()?;
        let failures = rt.read("failures", crate::state::backfill_state::failures)?;
        Ok((state, rows, failures))
    };
    match gather() {
        Ok((state, rows, failures)) => {
            if args.json {
                println!(
                    "{}",
                    json!({"db": db_path, "backfill": state, "threads": rows, "failed_rollouts": failures})
                );
            } else {
                println!("db: {}", db_path.display());
                println!(
                    "backfill status: {} (watermark {:?})",
                    state.status, state.last_watermark
                );
                if let Some(o) = &state.owner {
                    let pid = o.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
                    let host = o.host.as_deref().unwrap_or("?");
                    match o.lease_expires_at_ms {
                        Some(ms) => println!(
                            "lease owner: {} (pid {pid}, host {host}), lease expires at {ms} ms since the epoch",
                            o.owner_id
                        ),
                        None => println!("last lease owner: {} (pid {pid}, host {host})", o.owner_id),
                    }
                }
                println!("threads: {rows}");
                for (path, error) in failures {
                    println!("failed: {path}: {error}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
