//! One Codex "worker": a real `codex app-server` process on the scenario's home doing one
//! role. `init` = the process starting up (ready = `initialize` answered); `lookup` =
//! `thread/read` per thread; `list` = every page of `thread/list` in one scope. Its outcome
//! has the shape of a reference worker's, with only what Codex shows filled in; the paths
//! it returned are kept for the outside checks. Aborting the task kills the process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::codex::{AppServer, CodexBin, CodexError, HomeSpec};
use crate::layer::InitSummary;
use crate::lookup::LookupResult;
use crate::observe::answers::Listed;
use crate::observe::FdSampler;
use crate::scenario::roles::{ListSummary, WorkerOutcome};
use crate::thread::Scope;

use super::db::read_status;

/// What a Codex worker does.
#[derive(Debug, Clone)]
pub enum Job {
    Init,
    Lookup {
        ids: Vec<Uuid>,
        scope: Scope,
        repeat: u32,
    },
    List {
        archived: bool,
        /// Page size of each `thread/list` request (default: the client's).
        page_size: Option<usize>,
        /// `sourceKinds` / `modelProviders` (empty: every kind, every provider).
        filter: crate::lookup::ListFilter,
    },
}

/// A finished Codex worker.
#[derive(Debug, Clone, Default)]
pub struct CodexOutcome {
    pub outcome: WorkerOutcome,
    /// The complete listing with paths (list jobs).
    pub listed: Vec<Listed>,
    pub stderr: String,
    pub pid: Option<u32>,
}

/// Runs `job` in a fresh app-server process; every request is bounded by `timeout`. The
/// process is registered with `fds` (as `name`) so its DB descriptors are observed.
pub async fn run_job(
    bin: CodexBin,
    home: HomeSpec,
    job: Job,
    timeout: Duration,
    fds: Option<(std::sync::Arc<FdSampler>, String)>,
) -> CodexOutcome {
    let started = Instant::now();
    let mut done = CodexOutcome::default();
    let mut server = match AppServer::start(&bin, &home, timeout).await {
        Ok(s) => s,
        Err(e) => {
            done.outcome.timed_out = matches!(e, CodexError::Timeout { .. });
            done.outcome.error = Some(e.to_string());
            done.outcome.elapsed_ms = started.elapsed().as_millis() as u64;
            return done;
        }
    };
    done.pid = server.pid();
    if let (Some((sampler, name)), Some(pid)) = (&fds, done.pid) {
        sampler.watch(name, pid);
    }
    // The startup's result is read from the DB itself, not from anything Codex says.
    done.outcome.init = Some(InitSummary {
        status: read_status(home.sqlite_dir()).unwrap_or_else(|e| format!("unreadable ({e})")),
        ..InitSummary::default()
    });
    let result = match &job {
        Job::Init => {
            done.outcome.elapsed_ms = started.elapsed().as_millis() as u64;
            Ok(())
        }
        Job::Lookup { ids, scope, repeat } => {
            let mut r = Ok(());
            'all: for _ in 0..(*repeat).max(1) {
                for id in ids {
                    match lookup(&mut server, &home, id, *scope).await {
                        Ok((l, refusal)) => {
                            if refusal.is_some() {
                                done.outcome.error = refusal;
                            }
                            done.outcome.lookups.push(l)
                        }
                        Err(e) => {
                            r = Err(e);
                            break 'all;
                        }
                    }
                }
            }
            if r.is_ok() && done.outcome.lookups.iter().any(|l| l.path.is_none()) {
                r = Err(done
                    .outcome
                    .error
                    .take()
                    .unwrap_or_else(|| "some lookups found nothing".into()));
            }
            r
        }
        Job::List {
            archived,
            page_size,
            filter,
        } => match server
            .list_all_filtered(*archived, page_size.map(|n| n as u64), filter)
            .await
        {
            Ok(items) => {
                let listed: Vec<Listed> = items
                    .iter()
                    .map(|v| Listed {
                        id: v
                            .get("id")
                            .and_then(|x| x.as_str())
                            .unwrap_or_default()
                            .to_string(),
                        path: v.get("path").and_then(|x| x.as_str()).map(PathBuf::from),
                    })
                    .collect();
                done.outcome.list = Some(ListSummary {
                    archived: *archived,
                    items: listed.iter().filter_map(|l| l.id.parse().ok()).collect(),
                    paths: listed.iter().filter_map(|l| l.path.clone()).collect(),
                    stale: Vec::new(),
                    pages: 0,
                });
                done.listed = listed;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
    };
    if !matches!(job, Job::Init) {
        done.outcome.elapsed_ms = started.elapsed().as_millis() as u64;
    }
    match result {
        Ok(()) => done.outcome.ok = true,
        Err(e) => {
            done.outcome.error.get_or_insert(e);
        }
    }
    match server.shutdown().await {
        Ok(exit) => done.stderr = exit.stderr,
        Err(e) => done.stderr = format!("shutdown failed: {e}"),
    }
    done
}

/// `thread/read` of one id, the answer restricted to `scope` by the root its path lies in
/// (Codex's read has no scope: the harness applies the scenario's).
async fn lookup(
    server: &mut AppServer,
    home: &HomeSpec,
    id: &Uuid,
    scope: Scope,
) -> Result<(LookupResult, Option<String>), String> {
    let mut r = LookupResult {
        thread_id: id.to_string(),
        path: None,
        source: None,
        fallback_reason: None,
        repaired: false,
        repair_skipped: None,
    };
    match server.read(&id.to_string(), false).await {
        Ok(v) => {
            let path = v
                .get("thread")
                .and_then(|t| t.get("path"))
                .and_then(|p| p.as_str())
                .map(PathBuf::from);
            let archived_root = home.codex_home.join("archived_sessions");
            r.path = path.filter(|p| match scope {
                Scope::Any => true,
                Scope::Active => !p.starts_with(&archived_root),
                Scope::Archived => p.starts_with(&archived_root),
            });
            Ok((r, None))
        }
        // Codex refusing (not found) is an answer; a transport failure is not.
        Err(e) if e.is_rpc() => Ok((r, Some(e.to_string()))),
        Err(e) => Err(e.to_string()),
    }
}
