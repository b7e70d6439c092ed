//! `ConsumerSet`: the consumers one entrypoint builds from its single handle — thread
//! store, thread manager (and its sessions), name lookup, resume-last and memory reset —
//! and driving each of them over a workload.
//!
//! Every consumer gets a clone of the same `Option<StateDbHandle>` (and the process's
//! context); none of them opens the DB.

use std::path::PathBuf;
use std::sync::Arc;

use super::report::{ConsumerResult, Workload};
use crate::consumers::{
    find_latest_thread, find_thread_by_name, reset_memory, LocalThreadStore, ReadThreadRequest,
    ThreadManager, ThreadReadSource,
};
use crate::lookup::ListRequest;
use crate::process::ProcessContext;
use crate::state::StateDbHandle;
use crate::state_db::StateDbConfig;

pub const READ_THREAD: &str = "thread_store.read_thread";
pub const LIST_THREADS: &str = "thread_store.list_threads";
pub const SESSIONS: &str = "thread_manager.sessions";
pub const NAME_LOOKUP: &str = "name_lookup";
pub const RESUME_LAST: &str = "resume_last";
pub const MEMORY_RESET: &str = "memory_reset";

/// Every consumer an entrypoint drives, in driving order.
pub const CONSUMERS: [&str; 6] = [
    READ_THREAD,
    LIST_THREADS,
    SESSIONS,
    NAME_LOOKUP,
    RESUME_LAST,
    MEMORY_RESET,
];

/// Listing page size used when driving the store.
const LIST_PAGE_SIZE: usize = 10;

/// The consumers of one process, sharing one handle.
#[derive(Debug)]
pub struct ConsumerSet {
    ctx: Arc<ProcessContext>,
    codex_home: PathBuf,
    state_db: Option<StateDbHandle>,
    store: Arc<LocalThreadStore>,
    manager: ThreadManager,
}

impl ConsumerSet {
    /// Wires thread store → thread manager around `state_db`.
    pub fn new(
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
        state_db: Option<StateDbHandle>,
    ) -> Self {
        let codex_home = cfg.runtime.codex_home.clone();
        let store = Arc::new(
            LocalThreadStore::new(
                codex_home.clone(),
                cfg.runtime.default_provider.clone(),
                state_db.clone(),
            )
            .with_process(ctx.clone()),
        );
        let manager = ThreadManager::new(store.clone(), state_db.clone());
        ConsumerSet {
            ctx: ctx.clone(),
            codex_home,
            state_db,
            store,
            manager,
        }
    }

    pub fn state_db(&self) -> Option<&StateDbHandle> {
        self.state_db.as_ref()
    }

    pub fn store(&self) -> &Arc<LocalThreadStore> {
        &self.store
    }

    pub fn manager(&self) -> &ThreadManager {
        &self.manager
    }

    /// Drives every consumer over `workload`, one result each (in [`CONSUMERS`] order).
    pub fn drive(&self, workload: &Workload) -> Vec<ConsumerResult> {
        vec![
            self.read_threads(workload),
            self.list_threads(),
            self.sessions(workload),
            self.name_lookups(workload),
            self.resume_last(),
            self.memory_reset(),
        ]
    }

    fn read_threads(&self, workload: &Workload) -> ConsumerResult {
        let (mut from_db, mut from_files) = (0, 0);
        let mut errors = Vec::new();
        for &id in &workload.thread_ids {
            let read = self.store.read_thread(ReadThreadRequest {
                thread_id: id,
                include_archived: true,
                include_history: true,
            });
            match read {
                Ok(t)
                    if t.thread_id == id && t.history.as_ref().map(|h| h.thread_id) == Some(id) =>
                {
                    match t.read_from {
                        ThreadReadSource::Sqlite => from_db += 1,
                        ThreadReadSource::Rollout => from_files += 1,
                    }
                }
                Ok(t) => errors.push(format!(
                    "{id}: got thread {} from {}",
                    t.thread_id,
                    t.rollout_path.display()
                )),
                Err(err) => errors.push(format!("{id}: {err}")),
            }
        }
        result(
            READ_THREAD,
            errors,
            format!(
                "read {} of {} threads with history ({from_db} from sqlite, {from_files} from rollouts)",
                from_db + from_files,
                workload.thread_ids.len()
            ),
        )
    }

    fn list_threads(&self) -> ConsumerResult {
        let mut counts = [0usize; 2];
        let mut stale = 0;
        let mut errors = Vec::new();
        for (slot, archived) in [(0, false), (1, true)] {
            let mut req = ListRequest {
                archived,
                page_size: LIST_PAGE_SIZE,
                ..ListRequest::default()
            };
            loop {
                match self.store.list_threads(&req) {
                    Ok(page) => {
                        counts[slot] += page.items.len();
                        stale += page.stale.len();
                        match page.next_cursor {
                            Some(cursor) => req.cursor = Some(cursor),
                            None => break,
                        }
                    }
                    Err(err) => {
                        errors.push(err.to_string());
                        break;
                    }
                }
            }
        }
        result(
            LIST_THREADS,
            errors,
            format!(
                "listed {} active and {} archived threads ({stale} stale rows left out)",
                counts[0], counts[1]
            ),
        )
    }

    fn sessions(&self, workload: &Workload) -> ConsumerResult {
        let mut resumed = 0;
        let mut with_identity = 0;
        let mut errors = Vec::new();
        for &id in &workload.thread_ids {
            let session = self.manager.start_session(id);
            match session.resume() {
                Ok(_) => resumed += 1,
                Err(err) => errors.push(format!("{id}: {err}")),
            }
            let identity = session.agent_identity();
            if identity.nickname.is_some() || identity.role.is_some() {
                with_identity += 1;
            }
        }
        let identity_source = if self.state_db.is_some() {
            "state db"
        } else {
            "none (no state db)"
        };
        result(
            SESSIONS,
            errors,
            format!(
                "resumed {resumed} of {} sessions; agent identity from {identity_source} ({with_identity} with one)",
                workload.thread_ids.len()
            ),
        )
    }

    fn name_lookups(&self, workload: &Workload) -> ConsumerResult {
        let mut resolved = 0;
        let mut errors = Vec::new();
        for name in &workload.names {
            match find_thread_by_name(&self.codex_home, name, self.state_db.as_ref(), &self.ctx) {
                Ok(Some(_)) => resolved += 1,
                Ok(None) => errors.push(format!("no thread named '{name}'")),
                Err(err) => errors.push(format!("'{name}': {err}")),
            }
        }
        result(
            NAME_LOOKUP,
            errors,
            format!("resolved {resolved} of {} names", workload.names.len()),
        )
    }

    fn resume_last(&self) -> ConsumerResult {
        let (path, reason) = find_latest_thread(&self.codex_home, self.state_db.as_ref(), None);
        let via = match reason {
            None => "state db".to_string(),
            Some(reason) => format!("files ({})", reason.as_str()),
        };
        match path {
            Some(path) => ConsumerResult {
                consumer: RESUME_LAST.to_string(),
                ok: true,
                detail: format!("latest thread {} via {via}", path.display()),
            },
            None => ConsumerResult {
                consumer: RESUME_LAST.to_string(),
                ok: false,
                detail: format!("no thread to resume via {via}"),
            },
        }
    }

    fn memory_reset(&self) -> ConsumerResult {
        match reset_memory(self.state_db.as_ref()) {
            Ok(n) => ConsumerResult {
                consumer: MEMORY_RESET.to_string(),
                ok: true,
                detail: format!("memory mode reset on {n} threads"),
            },
            Err(err) => ConsumerResult {
                consumer: MEMORY_RESET.to_string(),
                ok: false,
                detail: err.to_string(),
            },
        }
    }
}

fn result(consumer: &str, errors: Vec<String>, summary: String) -> ConsumerResult {
    let ok = errors.is_empty();
    let detail = if ok {
        summary
    } else {
        format!("{summary}; {} failed: {}", errors.len(), errors.join("; "))
    };
    ConsumerResult {
        consumer: consumer.to_string(),
        ok,
        detail,
    }
}
