//! `ThreadManager` and the `Session`s it starts: the manager receives the thread store
//! and the process's handle from its entrypoint and passes both to every session, so a
//! session never obtains a handle of its own.
//!
//! A session resumes its thread through the store (which requires the rollout's
//! `session_meta.id` to be the thread's) and, with a handle, reads the agent's nickname
//! and role from the thread's row. Without one, those are `None`.

use std::sync::Arc;

use uuid::Uuid;

use super::thread_store::{LocalThreadStore, ReadThreadRequest, StoredThread, ThreadStoreError};
use crate::state::StateDbHandle;

/// Starts sessions over one store and one handle.
#[derive(Debug, Clone)]
pub struct ThreadManager {
    store: Arc<LocalThreadStore>,
    state_db: Option<StateDbHandle>,
}

impl ThreadManager {
    pub fn new(store: Arc<LocalThreadStore>, state_db: Option<StateDbHandle>) -> Self {
        ThreadManager { store, state_db }
    }

    pub fn store(&self) -> &Arc<LocalThreadStore> {
        &self.store
    }

    /// A clone of the handle the manager was given.
    pub fn state_db(&self) -> Option<StateDbHandle> {
        self.state_db.clone()
    }

    /// A session on `thread_id`, sharing the manager's store and handle.
    pub fn start_session(&self, thread_id: Uuid) -> Session {
        Session {
            thread_id,
            store: self.store.clone(),
            state_db: self.state_db.clone(),
        }
    }
}

/// The sub-agent identity recorded for a thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentIdentity {
    pub nickname: Option<String>,
    pub role: Option<String>,
}

/// One running session of a thread.
#[derive(Debug, Clone)]
pub struct Session {
    thread_id: Uuid,
    store: Arc<LocalThreadStore>,
    state_db: Option<StateDbHandle>,
}

impl Session {
    pub fn thread_id(&self) -> Uuid {
        self.thread_id
    }

    pub fn state_db(&self) -> Option<StateDbHandle> {
        self.state_db.clone()
    }

    /// Loads the thread with its history (archived threads included). Refuses a rollout
    /// whose first `session_meta` names another thread.
    pub fn resume(&self) -> Result<StoredThread, ThreadStoreError> {
        let thread = self.store.read_thread(ReadThreadRequest {
            thread_id: self.thread_id,
            include_archived: true,
            include_history: true,
        })?;
        match &thread.history {
            Some(history) if history.thread_id != self.thread_id => {
                Err(ThreadStoreError::InvalidRequest(format!(
                    "cannot resume thread {}: its rollout {} belongs to thread {}",
                    self.thread_id,
                    thread.rollout_path.display(),
                    history.thread_id
                )))
            }
            _ => Ok(thread),
        }
    }

    /// Nickname and role from the thread's row; both `None` without a handle, without a
    /// row, or when the read fails (logged).
    pub fn agent_identity(&self) -> AgentIdentity {
        let Some(rt) = &self.state_db else {
            return AgentIdentity::default();
        };
        match rt.get_thread(self.thread_id) {
            Ok(Some(row)) => AgentIdentity {
                nickname: row.agent_nickname,
                role: row.agent_role,
            },
            Ok(None) => AgentIdentity::default(),
            Err(err) => {
                tracing::warn!(
                    "state db get_thread failed for agent identity of {}: {err}",
                    self.thread_id
                );
                AgentIdentity::default()
            }
        }
    }
}
