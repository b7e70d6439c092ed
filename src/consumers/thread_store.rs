//! `LocalThreadStore`: the thread store of one process. It reads a thread (from its SQLite
//! row when that row can be trusted, otherwise from the rollout that lookup finds), lists
//! threads, and archives or unarchives them by moving the rollout between roots.
//!
//! The store holds the handle its entrypoint gave it; `state_db()` hands out clones and
//! never opens anything. With `None` everything runs from the files.
//!
//! Rollout contents are never modified: archive and unarchive only `rename` the file.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::params;
use uuid::Uuid;

use super::session_index::thread_name_for;
use crate::lookup::{find_thread_path_in, list_threads_in, ListError, ListPage, ListRequest};
use crate::process::ProcessContext;
use crate::rollout::head::read_session_meta_head;
use crate::rollout::layout::{
    active_rollout_path, is_compressed_rollout, parse_rollout_file_name, root_of, Root,
};
use crate::rollout::line::{parse_line, RolloutLine};
use crate::rollout::metadata::extract_metadata;
use crate::state::{threads, StateDbHandle, StateError};
use crate::thread::{Scope, ThreadMetadata};

/// Errors of the thread store.
#[derive(Debug, thiserror::Error)]
pub enum ThreadStoreError {
    /// The request cannot be served: unknown thread, wrong archive state, bad cursor...
    #[error("{0}")]
    InvalidRequest(String),
    #[error("i/o error at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

fn invalid(message: impl Into<String>) -> ThreadStoreError {
    ThreadStoreError::InvalidRequest(message.into())
}

/// `read_thread`'s request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadThreadRequest {
    pub thread_id: Uuid,
    /// Allow an archived thread (and search `archived_sessions/` too).
    pub include_archived: bool,
    /// Load the rollout's items; the SQLite row is then used only if its file verifies.
    pub include_history: bool,
}

/// Where a read thread's summary came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadReadSource {
    /// The SQLite row (its rollout, when readable, still supplies preview and times).
    Sqlite,
    /// The rollout file that lookup resolved.
    Rollout,
}

/// A thread's loaded history: the parsed lines of its rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredHistory {
    /// The id of the rollout's first `session_meta` (canonical).
    pub thread_id: Uuid,
    pub items: Vec<RolloutLine>,
}

/// A thread as the store returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredThread {
    pub thread_id: Uuid,
    pub rollout_path: PathBuf,
    pub name: Option<String>,
    pub preview: String,
    pub model_provider: String,
    pub cwd: String,
    pub source: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub archived: bool,
    pub agent_nickname: Option<String>,
    pub agent_role: Option<String>,
    pub git_sha: Option<String>,
    pub git_branch: Option<String>,
    pub git_origin_url: Option<String>,
    pub read_from: ThreadReadSource,
    /// The summary came from SQLite but its rollout file does not exist, so the thread
    /// cannot be resumed (the modelled system shows such threads without saying so).
    pub rollout_missing: bool,
    pub history: Option<StoredHistory>,
}

/// What archive or unarchive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveOutcome {
    pub thread_id: Uuid,
    pub from: PathBuf,
    pub to: PathBuf,
    /// The row now points at `to` with the new archive state.
    pub row_updated: bool,
    /// Why the row could not be updated (the file was moved regardless; the next lookup
    /// read-repairs the row).
    pub row_error: Option<String>,
}

/// The local (file + SQLite) thread store.
#[derive(Debug)]
pub struct LocalThreadStore {
    codex_home: PathBuf,
    default_provider: String,
    state_db: Option<StateDbHandle>,
    ctx: Arc<ProcessContext>,
}

impl LocalThreadStore {
    /// A store over `codex_home` using the handle the entrypoint created (or `None`). It
    /// runs in the handle's process; use [`Self::with_process`] to name the process
    /// explicitly (needed when there is no handle).
    pub fn new(
        codex_home: impl Into<PathBuf>,
        default_provider: impl Into<String>,
        state_db: Option<StateDbHandle>,
    ) -> Self {
        let ctx = match &state_db {
            Some(handle) => handle.context().clone(),
            None => ProcessContext::plain("thread-store"),
        };
        LocalThreadStore {
            codex_home: codex_home.into(),
            default_provider: default_provider.into(),
            state_db,
            ctx,
        }
    }

    /// Sets the process this store belongs to (its variant, failpoints and events apply).
    pub fn with_process(mut self, ctx: Arc<ProcessContext>) -> Self {
        self.ctx = ctx;
        self
    }

    /// A clone of the handle the store was given. Never opens anything.
    pub fn state_db(&self) -> Option<StateDbHandle> {
        self.state_db.clone()
    }

    pub fn codex_home(&self) -> &Path {
        &self.codex_home
    }

    pub fn default_provider(&self) -> &str {
        &self.default_provider
    }

    pub fn process(&self) -> &Arc<ProcessContext> {
        &self.ctx
    }

    /// The handle operations use: the one given (a seeded bug may open its own instead).
    fn handle(&self) -> Option<StateDbHandle> {
        self.ctx.decisions().consumer_handle(
            &self.ctx,
            self.state_db.as_ref(),
            &self.codex_home,
            &self.default_provider,
        )
    }

    /// Reads one thread: the SQLite row when it can be trusted for this request, else the
    /// rollout found by lookup (active, then archived if allowed).
    pub fn read_thread(&self, req: ReadThreadRequest) -> Result<StoredThread, ThreadStoreError> {
        let handle = self.handle();
        if let Some(rt) = &handle {
            if let Some(thread) = self.read_from_sqlite(rt, req)? {
                return Ok(thread);
            }
        }
        let id_text = req.thread_id.to_string();
        let mut found = find_thread_path_in(
            &self.ctx,
            handle.as_ref(),
            &self.codex_home,
            &id_text,
            Scope::Active,
        )
        .path;
        if found.is_none() && req.include_archived {
            found = find_thread_path_in(
                &self.ctx,
                handle.as_ref(),
                &self.codex_home,
                &id_text,
                Scope::Archived,
            )
            .path;
        }
        let path =
            found.ok_or_else(|| invalid(format!("no rollout found for thread id {id_text}")))?;
        self.read_from_rollout(req, &path)
    }

    /// The SQLite-first branch; `None` when the row is absent or cannot be used.
    fn read_from_sqlite(
        &self,
        rt: &StateDbHandle,
        req: ReadThreadRequest,
    ) -> Result<Option<StoredThread>, ThreadStoreError> {
        let id = req.thread_id;
        let row = match rt.get_thread(id) {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(None),
            Err(err) => {
                tracing::warn!("state db get_thread failed during read_thread: {err}");
                return Ok(None);
            }
        };
        let in_archive_dir = root_of(&self.codex_home, &row.rollout_path) == Some(Root::Archived);
        if !req.include_archived && (row.is_archived() || in_archive_dir) {
            return Ok(None);
        }
        let exists = row.rollout_path.is_file();
        let verified = exists
            && read_session_meta_head(&row.rollout_path)
                .ok()
                .and_then(|head| head.thread_id())
                == Some(id);
        if req.include_history && !verified {
            if exists {
                tracing::warn!("state db discrepancy during read_thread: sqlite_path_not_verified");
            }
            return Ok(None);
        }
        let mut thread = self.thread_from_row(&row);
        thread.rollout_missing = !exists;
        if verified {
            // The rollout is the truth for what it records; SQLite keeps the name, git
            // info and agent identity.
            if let Ok(extraction) = extract_metadata(&row.rollout_path, &self.default_provider) {
                let m = extraction.metadata;
                if m.id == id && !m.first_user_message.is_empty() {
                    thread.preview = m.first_user_message;
                    thread.model_provider = m.model_provider;
                    thread.cwd = m.cwd;
                    thread.source = m.source;
                    thread.created_at_ms = m.created_at_ms;
                    thread.updated_at_ms = m.updated_at_ms;
                }
            }
        }
        if req.include_history {
            thread.history = Some(load_history(&row.rollout_path)?);
        }
        Ok(Some(thread))
    }

    fn thread_from_row(&self, row: &ThreadMetadata) -> StoredThread {
        let title = row.title.trim();
        let name = if !title.is_empty() && row.title != row.first_user_message {
            Some(row.title.clone())
        } else {
            thread_name_for(&self.codex_home, row.id)
        };
        let model_provider = if row.model_provider.is_empty() {
            self.default_provider.clone()
        } else {
            row.model_provider.clone()
        };
        StoredThread {
            thread_id: row.id,
            rollout_path: row.rollout_path.clone(),
            name,
            preview: row.first_user_message.clone(),
            model_provider,
            cwd: row.cwd.clone(),
            source: row.source.clone(),
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
            archived: row.is_archived(),
            agent_nickname: row.agent_nickname.clone(),
            agent_role: row.agent_role.clone(),
            git_sha: row.git_sha.clone(),
            git_branch: row.git_branch.clone(),
            git_origin_url: row.git_origin_url.clone(),
            read_from: ThreadReadSource::Sqlite,
            rollout_missing: false,
            history: None,
        }
    }

    fn read_from_rollout(
        &self,
        req: ReadThreadRequest,
        path: &Path,
    ) -> Result<StoredThread, ThreadStoreError> {
        let id = req.thread_id;
        let m = extract_metadata(path, &self.default_provider)
            .map_err(|err| invalid(format!("failed to read thread {id}: {err}")))?
            .metadata;
        if m.id != id {
            return Err(invalid(format!(
                "rollout at {} belongs to thread {}, not {id}",
                path.display(),
                m.id
            )));
        }
        let archived = root_of(&self.codex_home, path) == Some(Root::Archived);
        if archived && !req.include_archived {
            return Err(invalid(format!("thread {id} is archived")));
        }
        let history = if req.include_history {
            Some(load_history(path)?)
        } else {
            None
        };
        Ok(StoredThread {
            thread_id: id,
            rollout_path: path.to_path_buf(),
            name: thread_name_for(&self.codex_home, id),
            preview: m.first_user_message,
            model_provider: m.model_provider,
            cwd: m.cwd,
            source: m.source,
            created_at_ms: m.created_at_ms,
            updated_at_ms: m.updated_at_ms,
            archived,
            agent_nickname: m.agent_nickname,
            agent_role: m.agent_role,
            git_sha: m.git_sha,
            git_branch: m.git_branch,
            git_origin_url: m.git_origin_url,
            read_from: ThreadReadSource::Rollout,
            rollout_missing: false,
            history,
        })
    }

    /// One page of threads: the DB page with a handle (falling back to the files if the
    /// DB query fails), the files' page without one.
    pub fn list_threads(&self, req: &ListRequest) -> Result<ListPage, ThreadStoreError> {
        let handle = self.handle();
        match list_threads_in(&self.ctx, handle.as_ref(), &self.codex_home, req) {
            Ok(page) => Ok(page),
            Err(ListError::InvalidCursor(cursor)) => {
                Err(invalid(format!("invalid cursor: {cursor}")))
            }
            Err(ListError::State(err)) => {
                tracing::warn!(
                    "state db list_threads failed: {err}; falling back on the rollout files"
                );
                list_threads_in(&self.ctx, None, &self.codex_home, req)
                    .map_err(|err| invalid(err.to_string()))
            }
        }
    }

    /// Moves an active thread's rollout into `archived_sessions/` and, with a handle,
    /// points its row there and marks it archived (one IMMEDIATE write).
    pub fn archive_thread(&self, thread_id: Uuid) -> Result<ArchiveOutcome, ThreadStoreError> {
        let handle = self.handle();
        let from = self.locate(handle.as_ref(), thread_id, Root::Active)?;
        let name = file_name_of(&from)?;
        let to = Root::Archived.dir(&self.codex_home).join(name);
        let overwrite = self.ctx.decisions().archive_may_overwrite();
        move_rollout(thread_id, &from, &to, overwrite)?;
        let now_ms = self.ctx.clock().now_ms();
        Ok(self.record_move(handle.as_ref(), thread_id, from, to, Some(now_ms)))
    }

    /// Moves an archived thread's rollout back to `sessions/YYYY/MM/DD/` (dated from its
    /// file name) and, with a handle, updates its row (one IMMEDIATE write).
    pub fn unarchive_thread(&self, thread_id: Uuid) -> Result<ArchiveOutcome, ThreadStoreError> {
        let handle = self.handle();
        let from = self.locate(handle.as_ref(), thread_id, Root::Archived)?;
        let name = file_name_of(&from)?;
        let parsed = parse_rollout_file_name(name)
            .ok_or_else(|| invalid(format!("rollout file name {name} is not canonical")))?;
        let mut to = active_rollout_path(&self.codex_home, parsed.timestamp, thread_id);
        if is_compressed_rollout(&from) {
            // Moved as it is: a compressed rollout keeps its bytes and its `.zst` name.
            to.as_mut_os_string().push(".zst");
        }
        move_rollout(thread_id, &from, &to, false)?;
        Ok(self.record_move(handle.as_ref(), thread_id, from, to, None))
    }

    /// Finds the thread's rollout in `root` and checks that it lies there and that its
    /// file name carries the thread's id.
    fn locate(
        &self,
        handle: Option<&StateDbHandle>,
        id: Uuid,
        root: Root,
    ) -> Result<PathBuf, ThreadStoreError> {
        let scope = if root.is_archived() {
            Scope::Archived
        } else {
            Scope::Active
        };
        let found =
            find_thread_path_in(&self.ctx, handle, &self.codex_home, &id.to_string(), scope)
                .path
                .ok_or_else(|| {
                    let which = if root.is_archived() { "archived " } else { "" };
                    invalid(format!("no {which}rollout found for thread id {id}"))
                })?;
        if root_of(&self.codex_home, &found) != Some(root) {
            return Err(invalid(format!(
                "rollout for thread {id} at {} is not under {}/",
                found.display(),
                root.subdir()
            )));
        }
        let name = file_name_of(&found)?;
        if parse_rollout_file_name(name).map(|p| p.id) != Some(id) {
            return Err(invalid(format!(
                "rollout file name {name} does not match thread id {id}"
            )));
        }
        Ok(found)
    }

    fn record_move(
        &self,
        handle: Option<&StateDbHandle>,
        id: Uuid,
        from: PathBuf,
        to: PathBuf,
        archived_at_ms: Option<i64>,
    ) -> ArchiveOutcome {
        let mut outcome = ArchiveOutcome {
            thread_id: id,
            from,
            to,
            row_updated: false,
            row_error: None,
        };
        if let Some(rt) = handle {
            match set_row_location(rt, id, &outcome.to, archived_at_ms) {
                Ok(()) => outcome.row_updated = true,
                Err(err) => {
                    tracing::warn!(
                        "state db update after moving {} failed: {err}",
                        outcome.to.display()
                    );
                    outcome.row_error = Some(err.to_string());
                }
            }
        }
        outcome
    }
}

/// Points the row at `path` with the given archive state in one write transaction; a row
/// that does not exist is indexed from the file.
fn set_row_location(
    rt: &StateDbHandle,
    id: Uuid,
    path: &Path,
    archived_at_ms: Option<i64>,
) -> Result<(), StateError> {
    rt.write("mark archived", |tx| {
        let updated = tx
            .execute(
                "UPDATE threads SET rollout_path = ?2, archived = ?3, archived_at = ?4
                 WHERE id = ?1",
                params![
                    id.to_string(),
                    path.to_string_lossy(),
                    archived_at_ms.is_some(),
                    archived_at_ms.map(|ms| ms.div_euclid(1000)),
                ],
            )
            .map_err(rt.err("mark archived"))?;
        if updated == 0 {
            if let Ok(extraction) = extract_metadata(path, rt.default_provider()) {
                let mut meta = extraction.metadata;
                if meta.id == id {
                    meta.archived_at_ms = archived_at_ms;
                    threads::insert_if_absent(tx, &meta).map_err(rt.err("mark archived"))?;
                }
            }
        }
        Ok(())
    })
}

fn file_name_of(path: &Path) -> Result<&str, ThreadStoreError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| invalid(format!("rollout path {} has no file name", path.display())))
}

/// Renames `from` to `to`, creating `to`'s directory and never replacing an existing file
/// (two files can claim one id: archiving the second must not destroy the first).
/// `overwrite` is only the `archive-overwrites` seeded bug.
fn move_rollout(id: Uuid, from: &Path, to: &Path, overwrite: bool) -> Result<(), ThreadStoreError> {
    if to.exists() && !overwrite {
        return Err(invalid(format!(
            "cannot move thread {id}: {} already exists (another file claims this thread; \
             both are kept — move or remove one of them by hand)",
            to.display()
        )));
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|source| ThreadStoreError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    fs::rename(from, to).map_err(|source| ThreadStoreError::Io {
        path: from.to_path_buf(),
        source,
    })
}

/// The parsed lines of a rollout. The first `session_meta`'s id is the thread's.
fn load_history(path: &Path) -> Result<StoredHistory, ThreadStoreError> {
    let bytes = fs::read(path).map_err(|source| ThreadStoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let items: Vec<RolloutLine> = bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(parse_line)
        .collect();
    if items.is_empty() {
        return Err(invalid(format!("empty session file: {}", path.display())));
    }
    let thread_id = items
        .iter()
        .find(|line| line.is_session_meta())
        .and_then(|line| line.payload.get("id"))
        .and_then(|id| id.as_str())
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| {
            invalid(format!(
                "rollout at {} has no session metadata",
                path.display()
            ))
        })?;
    Ok(StoredHistory { thread_id, items })
}
