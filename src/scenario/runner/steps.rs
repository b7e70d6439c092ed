//! The reference runner's steps: what each scenario step does (start, wait for an event,
//! release, kill, join, inject, sleep, one-shot init/lookup/list/entrypoint, row and
//! backfill expectations, oracles), and the one-line label failures name a step by.

use crate::scenario::file_expect::check_files;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::Run;
use crate::clock::real_now_ms;
use crate::events::Event;
use crate::failpoints::FailpointSet;
use crate::layer::StateLayer;
use crate::rollout::layout::Root;
use crate::scenario::checks::{check_row, run_oracle};
use crate::scenario::model::{HandleMode, Role, Step};
use crate::scenario::run_dir::fault_index;
use crate::thread::Scope;
use crate::timing::format_duration;

impl<L: StateLayer> Run<'_, L> {
    pub(super) async fn step_inner(&mut self, step: &Step) -> Result<Vec<String>, String> {
        match step {
            Step::Start { worker } => {
                let spec = self.sc.worker(worker).ok_or("unknown worker")?.clone();
                let plan = self.plan(&spec.name, spec.role, Some(&spec))?;
                self.start(plan, spec.kind)?;
                Ok(vec![])
            }
            Step::WaitFor {
                worker,
                event,
                timeout,
            } => {
                let timeout = timeout.unwrap_or(Duration::from_secs(30));
                let (kind, fp) = match event.strip_prefix("failpoint:") {
                    Some(fp) => ("failpoint_fired".to_string(), Some(fp.to_string())),
                    None => (event.clone(), None),
                };
                let w = worker.clone();
                let matches = |e: &Event| {
                    e.worker == w
                        && e.kind == kind
                        && fp.as_deref().is_none_or(|name| {
                            e.data.get("name").and_then(|v| v.as_str()) == Some(name)
                        })
                };
                // Wait in short slices so a worker that ended without the event fails the
                // step at once instead of after the whole timeout.
                let deadline = Instant::now() + timeout;
                let mut seen = false;
                let mut ended = false;
                while !seen && !ended && Instant::now() < deadline {
                    let slice = deadline
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(50));
                    seen = self.log.wait_for(slice, matches).await;
                    ended = self.workers.get_mut(worker).is_some_and(|h| h.has_ended());
                }
                if !seen && ended {
                    // Its last events may still be on their way into the log.
                    seen = self.log.wait_for(Duration::from_millis(200), matches).await;
                    if !seen {
                        return Ok(vec![format!(
                            "worker {worker} ended without emitting '{event}'"
                        )]);
                    }
                }
                Ok(if seen {
                    vec![]
                } else {
                    vec![format!(
                        "worker {worker} did not emit '{event}' within {}",
                        format_duration(timeout)
                    )]
                })
            }
            Step::Release { worker, failpoint } => {
                let file = FailpointSet::release_file(&self.release_dir(), worker, failpoint);
                std::fs::write(&file, b"").map_err(|e| format!("{}: {e}", file.display()))?;
                Ok(vec![])
            }
            Step::Kill { worker } => {
                let h = self
                    .workers
                    .get_mut(worker)
                    .ok_or_else(|| format!("worker {worker} was not started"))?;
                h.kill().await?;
                Ok(vec![])
            }
            Step::Join {
                worker,
                timeout,
                expect,
            } => {
                if let Some(&since) = self.started_ms.get(worker) {
                    self.judged_since_ms = since;
                }
                let h = self
                    .workers
                    .get_mut(worker)
                    .ok_or_else(|| format!("worker {worker} was not started"))?;
                let out = h.join(timeout.unwrap_or(Duration::from_secs(60))).await?;
                Ok(self.expect(expect, &out))
            }
            Step::Inject { fault } => {
                let index = fault_index(self.sc, fault)?;
                Ok(self.inject(index).into_iter().collect())
            }
            Step::Sleep { duration } => {
                self.declared_wait.starting_at(real_now_ms(), *duration);
                tokio::time::sleep(*duration).await;
                Ok(vec![])
            }
            Step::Init { expect } => {
                let out = self.one_shot(Role::Init, |_| {}).await?;
                Ok(self.expect(expect, &out))
            }
            Step::Lookup {
                thread,
                scope,
                ask_other_home,
                handle,
                expect,
            } => {
                let id = self.home.thread(thread)?.id;
                let (alias, scope, handle) = (thread.clone(), *scope, *handle);
                let ask_home = self.other_home(*ask_other_home)?;
                let out = self
                    .one_shot(Role::Lookup, move |p| {
                        p.threads = vec![(alias, id)];
                        p.scope = scope;
                        p.handle = handle;
                        p.ask_home = ask_home;
                    })
                    .await?;
                Ok(self.expect(expect, &out))
            }
            Step::List {
                archived,
                page_size,
                prune,
                ask_other_home,
                cursor,
                sources,
                providers,
                handle,
                expect,
            } => {
                let (archived, page_size, prune, handle) = (*archived, *page_size, *prune, *handle);
                let cursor = cursor.clone();
                let filter = crate::lookup::ListFilter {
                    sources: sources.clone(),
                    providers: providers.clone(),
                };
                let ask_home = self.other_home(*ask_other_home)?;
                let out = self
                    .one_shot(Role::List, move |p| {
                        p.list_archived = archived;
                        p.page_size = page_size;
                        p.prune = prune;
                        p.cursor = cursor;
                        p.list_filter = filter;
                        p.ask_home = ask_home;
                        p.handle = handle;
                    })
                    .await?;
                Ok(self.expect(expect, &out))
            }
            Step::Archive {
                thread,
                unarchive,
                handle,
                expect,
            } => {
                let id = self.home.thread(thread)?.id;
                let (alias, unarchive, handle) = (thread.clone(), *unarchive, *handle);
                let out = self
                    .one_shot(Role::Archive, move |p| {
                        p.threads = vec![(alias, id)];
                        p.unarchive = unarchive;
                        p.handle = handle;
                    })
                    .await?;
                Ok(self.expect(expect, &out))
            }
            Step::Entrypoint { entrypoint, expect } => {
                let kind = *entrypoint;
                let ids: Vec<(String, Uuid)> = self
                    .home
                    .threads
                    .iter()
                    .map(|(a, t)| (a.clone(), t.id))
                    .collect();
                let archived: Vec<Uuid> = self
                    .home
                    .threads
                    .values()
                    .filter(|t| t.root == Root::Archived)
                    .map(|t| t.id)
                    .collect();
                let out = self
                    .one_shot(Role::Entrypoint, move |p| {
                        p.entrypoint = Some(kind.name().to_string());
                        p.threads = ids;
                        p.archived_ids = archived;
                    })
                    .await?;
                Ok(self.expect(expect, &out))
            }
            Step::ExpectRow { thread, expect } => {
                let id = self.home.thread(thread)?.id;
                let rows = self.read_rows()?;
                Ok(check_row(
                    expect,
                    rows.iter().find(|r| r.id == id),
                    &self.home,
                ))
            }
            Step::ExpectBackfill { status, rows } => {
                let mut f = Vec::new();
                let (got_status, got_rows) = self.read_status_and_count()?;
                if let Some(s) = status {
                    if s != &got_status {
                        f.push(format!("expected backfill status = {s}, got {got_status}"));
                    }
                }
                if let Some(n) = rows {
                    if *n != got_rows {
                        f.push(format!("expected {n} rows, got {got_rows}"));
                    }
                }
                Ok(f)
            }
            Step::ExpectFiles { present, absent } => {
                Ok(check_files(self.sc, &self.home, present, absent))
            }
            Step::Check { oracle } => {
                let status = self.read_status_and_count().ok().map(|(s, _)| s);
                Ok(run_oracle(
                    *oracle,
                    &self.home,
                    status.as_deref(),
                    &crate::observe::writes::read(&self.home),
                ))
            }
        }
    }
}

/// A short label of a step for failure messages.
pub fn step_label(step: &Step) -> String {
    match step {
        Step::Start { worker } => format!("start {worker}"),
        Step::WaitFor { worker, event, .. } => format!("wait_for {worker} {event}"),
        Step::Release { worker, failpoint } => format!("release {worker} {failpoint}"),
        Step::Kill { worker } => format!("kill {worker}"),
        Step::Join { worker, .. } => format!("join {worker}"),
        Step::Inject { fault } => format!("inject {fault}"),
        Step::Sleep { duration } => format!("sleep {}", format_duration(*duration)),
        Step::Init { .. } => "init".into(),
        Step::Lookup {
            thread,
            scope,
            handle,
            ..
        } => {
            let scope = match scope {
                Scope::Active => "",
                Scope::Archived => " archived",
                Scope::Any => " any",
            };
            let handle = match handle {
                HandleMode::Init => "",
                HandleMode::OpenOnly => " open-only",
                HandleMode::None => " no-db",
            };
            format!("lookup {thread}{scope}{handle}")
        }
        Step::List { .. } => "list".into(),
        Step::Archive {
            thread, unarchive, ..
        } => format!(
            "{} {thread}",
            if *unarchive { "unarchive" } else { "archive" }
        ),
        Step::Entrypoint { entrypoint, .. } => format!("entrypoint {entrypoint}"),
        Step::ExpectRow { thread, .. } => format!("expect_row {thread}"),
        Step::ExpectBackfill { .. } => "expect_backfill".into(),
        Step::Check { oracle } => format!("check {oracle:?}"),
        Step::ExpectFiles { .. } => "expect_files".into(),
    }
}
