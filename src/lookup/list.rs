//! `list_threads`: a page of threads, newest first, with a `(timestamp, id)` keyset cursor.
//!
//! With a handle the page comes from the DB; rows whose rollout file is missing are left
//! out, reported as `stale`, and the page is refilled to its size. Deleting them is the
//! explicit `prune` option, never a side effect of listing. Without a handle the same page
//! is built from the files.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::rollout::head::read_session_meta_head;
use crate::rollout::layout::Root;
use crate::rollout::search::collect_rollout_files;
use crate::state::threads::{self, Anchor, SortKey};
use crate::state::{StateDbHandle, StateError};

/// One listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub archived: bool,
    pub page_size: usize,
    pub cursor: Option<String>,
    pub sort: SortKey,
    /// Delete rows whose rollout file is missing (off by default).
    pub prune: bool,
}

impl Default for ListRequest {
    fn default() -> Self {
        ListRequest {
            archived: false,
            page_size: 25,
            cursor: None,
            sort: SortKey::Updated,
            prune: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListItem {
    pub thread_id: Uuid,
    pub path: PathBuf,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListPage {
    pub items: Vec<ListItem>,
    pub next_cursor: Option<String>,
    /// Rows left out because their rollout file is missing.
    pub stale: Vec<Uuid>,
    /// Stale rows deleted because `prune` was asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<Uuid>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("invalid cursor: {0} (expected the next_cursor of a previous page, like 2026-01-27T12:34:56.000Z|<uuid>)")]
    InvalidCursor(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A decoded cursor: `RFC3339-with-ms|uuid`, or a bare timestamp (the weak legacy form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub Anchor);

impl Cursor {
    pub fn encode(ts_ms: i64, id: Option<Uuid>) -> String {
        let ts = format_ms(ts_ms);
        match id {
            Some(id) => format!("{ts}|{id}"),
            None => ts,
        }
    }

    pub fn parse(text: &str) -> Result<Self, ListError> {
        let bad = || ListError::InvalidCursor(text.to_string());
        let (ts, id) = match text.split_once('|') {
            Some((ts, id)) => (ts, Some(Uuid::parse_str(id).map_err(|_| bad())?)),
            None => (text, None),
        };
        let ts_ms = DateTime::parse_from_rfc3339(ts)
            .map_err(|_| bad())?
            .timestamp_millis();
        Ok(Cursor(Anchor { ts_ms, id }))
    }
}

fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn item(thread_id: Uuid, path: PathBuf, created_ms: i64, updated_ms: i64) -> ListItem {
    ListItem {
        thread_id,
        path,
        created_at: format_ms(created_ms),
        updated_at: format_ms(updated_ms),
    }
}

/// Lists one page. `handle = None` lists from the files.
pub fn list_threads(
    handle: Option<&StateDbHandle>,
    codex_home: &Path,
    req: &ListRequest,
) -> Result<ListPage, ListError> {
    let anchor = req
        .cursor
        .as_deref()
        .map(Cursor::parse)
        .transpose()?
        .map(|c| c.0);
    match handle {
        Some(rt) => list_db(rt, req, anchor),
        None => Ok(list_files(codex_home, req, anchor)),
    }
}

fn list_db(
    rt: &StateDbHandle,
    req: &ListRequest,
    mut anchor: Option<Anchor>,
) -> Result<ListPage, ListError> {
    let decisions = rt.context().decisions();
    let weak_cursor = !decisions.list_cursor_breaks_ties();
    let delete_stale = req.prune || decisions.list_always_prunes();
    let page_size = req.page_size.max(1);
    let mut page = ListPage::default();
    let mut more = false;
    // Refill: keep fetching until the page is full or the rows run out.
    'fetch: loop {
        let want = page_size - page.items.len() + 1;
        let rows = rt.read("list_threads", |c| {
            threads::page(c, req.archived, req.sort, anchor, want)
        })?;
        let exhausted = rows.len() < want;
        for row in rows {
            let key = req.sort.of(&row);
            anchor = Some(Anchor {
                ts_ms: key,
                id: if weak_cursor { None } else { Some(row.id) },
            });
            if page.items.len() == page_size {
                more = true;
                break 'fetch;
            }
            if row.rollout_path.is_file() {
                page.items.push(item(
                    row.id,
                    row.rollout_path,
                    row.created_at_ms,
                    row.updated_at_ms,
                ));
            } else {
                tracing::warn!(
                    "state db list_threads returned stale rollout path for thread {}: {}",
                    row.id,
                    row.rollout_path.display()
                );
                page.stale.push(row.id);
            }
        }
        if exhausted {
            break;
        }
    }
    if more {
        if let Some(last) = page.items.last() {
            let ts = match req.sort {
                SortKey::Created => DateTime::parse_from_rfc3339(&last.created_at),
                SortKey::Updated => DateTime::parse_from_rfc3339(&last.updated_at),
            }
            .map(|t| t.timestamp_millis())
            .unwrap_or(0);
            page.next_cursor = Some(Cursor::encode(
                ts,
                if weak_cursor {
                    None
                } else {
                    Some(last.thread_id)
                },
            ));
        }
    }
    if delete_stale {
        for id in &page.stale {
            tracing::warn!("state db discrepancy during list_threads: stale_db_path_dropped");
            if rt.delete_thread(*id)? {
                page.pruned.push(*id);
            }
        }
    }
    Ok(page)
}

fn list_files(codex_home: &Path, req: &ListRequest, anchor: Option<Anchor>) -> ListPage {
    let root = if req.archived {
        Root::Archived
    } else {
        Root::Active
    };
    let (files, _warnings) = collect_rollout_files(&root.dir(codex_home));
    let mut rows: Vec<(i64, Uuid, ListItem)> = files
        .into_iter()
        .filter_map(|path| {
            let head = read_session_meta_head(&path).ok()?;
            let id = head.thread_id()?;
            let created = head
                .timestamp
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis())?;
            let updated = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .unwrap_or(created);
            let key = match req.sort {
                SortKey::Created => created,
                SortKey::Updated => updated,
            };
            Some((key, id, item(id, path, created, updated)))
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse((r.0, r.1)));
    let after_anchor = rows.into_iter().filter(|(key, id, _)| match anchor {
        None => true,
        Some(Anchor {
            ts_ms,
            id: Some(aid),
        }) => (*key, *id) < (ts_ms, aid),
        Some(Anchor { ts_ms, id: None }) => *key < ts_ms,
    });
    let page_size = req.page_size.max(1);
    let mut taken: Vec<(i64, Uuid, ListItem)> = after_anchor.take(page_size + 1).collect();
    let more = taken.len() > page_size;
    taken.truncate(page_size);
    ListPage {
        next_cursor: if more {
            taken.last().map(|(k, id, _)| Cursor::encode(*k, Some(*id)))
        } else {
            None
        },
        items: taken.into_iter().map(|(_, _, item)| item).collect(),
        stale: Vec::new(),
        pruned: Vec::new(),
    }
}
