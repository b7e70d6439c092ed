//! `list_threads`: a page of threads, newest first, with a `(timestamp, id)` keyset cursor.
//!
//! With a handle the page comes from the DB; rows whose rollout file is missing, lies
//! outside the scope's root or belongs to another thread (by its head) are left out,
//! reported as `stale`, and the page is refilled to its size. Deleting them is the
//! explicit `prune` option, never a side effect of listing. A row naming a file outside this
//! home (a home moved or copied with its DB) is never listed as it is: the thread's own
//! rollout here is found and the row repaired onto it, or the row is stale. Without a
//! handle the same page is built from the files.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use uuid::Uuid;

use super::filter::ListFilter;
use super::find::{find_thread_path, LookupSource};
use crate::backfill::reconcile::{reconcile_or_warn, ReconcileMode};
use crate::process::ProcessContext;
use crate::rollout::head::read_session_meta_head;
use crate::rollout::layout::{
    active_rollout_path, archived_rollout_path, parse_rollout_file_name, root_of, Root,
};
use crate::rollout::search::collect_rollout_files;
use crate::sqlite_home::handle_for;
use crate::state::thread_pages;
use crate::state::threads::{Anchor, SortKey};
use crate::state::{StateDbHandle, StateError};
use crate::thread::{Scope, ThreadMetadata};
use crate::variant::Variant;

/// One listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub archived: bool,
    pub page_size: usize,
    pub cursor: Option<String>,
    pub sort: SortKey,
    /// Delete rows whose rollout file is missing (off by default).
    pub prune: bool,
    /// Source kinds and model providers to keep (empty: all).
    pub filter: ListFilter,
}

impl Default for ListRequest {
    fn default() -> Self {
        ListRequest {
            archived: false,
            page_size: 25,
            cursor: None,
            sort: SortKey::Updated,
            prune: false,
            filter: ListFilter::default(),
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
    #[error("invalid cursor: {0} (expected the next_cursor of a previous page: `<RFC 3339 timestamp>|<uuid>` like 2026-01-27T12:34:56.000Z|<uuid>, a bare RFC 3339 timestamp, or Codex's file-name form 2026-01-27T12-34-56)")]
    InvalidCursor(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A decoded cursor: `RFC3339-with-ms|uuid` (the keyset form Codex's newer versions hand
/// out too), or a bare timestamp — RFC 3339 or Codex's file-name form
/// `YYYY-MM-DDThh-mm-ss` (UTC) — the weak timestamp-only form older clients hold.
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
        let ts_ms = match DateTime::parse_from_rfc3339(ts) {
            Ok(t) => t.timestamp_millis(),
            Err(_) => NaiveDateTime::parse_from_str(ts, FILE_NAME_TIME)
                .map_err(|_| bad())?
                .and_utc()
                .timestamp_millis(),
        };
        Ok(Cursor(Anchor { ts_ms, id }))
    }
}

/// The timestamp form of rollout file names, which Codex also accepts as a cursor (UTC).
const FILE_NAME_TIME: &str = "%Y-%m-%dT%H-%M-%S";

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
    let variant = handle.map_or(Variant::default(), |h| h.context().variant());
    list_threads_as(variant, handle, codex_home, req)
}

/// [`list_threads`] in a process running `variant` (which matters even without a handle).
pub fn list_threads_in(
    ctx: &ProcessContext,
    handle: Option<&StateDbHandle>,
    codex_home: &Path,
    req: &ListRequest,
) -> Result<ListPage, ListError> {
    list_threads_as(ctx.variant(), handle, codex_home, req)
}

fn list_threads_as(
    variant: Variant,
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
    match handle_for(handle, codex_home, "list_threads") {
        Some(rt) => {
            // The first page first indexes rollouts that appeared behind the DB's back,
            // so the listing shows every rollout of its scope (later pages keep the set).
            if req.cursor.is_none() {
                reconcile_or_warn(rt, ReconcileMode::Listing, "list_threads");
            }
            list_db(rt, req, anchor)
        }
        None => Ok(list_files(codex_home, req, anchor, variant)),
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
    let (filter_sql, filter_values) = req.filter.sql(5);
    // Refill: keep fetching until the page is full or the rows run out.
    'fetch: loop {
        let want = page_size - page.items.len() + 1;
        let rows = rt.read("list_threads", |c| {
            thread_pages::page_where(
                c,
                req.archived,
                req.sort,
                anchor,
                want,
                (&filter_sql, filter_values.clone()),
            )
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
            let inside = root_of(rt.codex_home(), &row.rollout_path).is_some();
            let accepted = if inside {
                serves_row(&row.rollout_path, row.id, req.archived, rt.codex_home())
            } else {
                decisions.accepts_outside_home_file(&row.rollout_path, row.id)
            };
            if accepted {
                page.items.push(item(
                    row.id,
                    row.rollout_path,
                    row.created_at_ms,
                    row.updated_at_ms,
                ));
            } else if let Some(path) = (!inside)
                .then(|| relocate_into_home(rt, &row, req.archived))
                .flatten()
            {
                page.items
                    .push(item(row.id, path, row.created_at_ms, row.updated_at_ms));
            } else {
                tracing::warn!(
                    "state db list_threads returned a stale rollout path (missing, outside the scope's root, or another thread's file) for thread {}: {}",
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

/// A row naming a file outside this home (a home moved or copied with its DB): the
/// thread's own rollout in this home, found by the exact search and verified, with the row
/// repaired onto it. `None` when this home has no such rollout (the row is then stale).
fn relocate_into_home(rt: &StateDbHandle, row: &ThreadMetadata, archived: bool) -> Option<PathBuf> {
    tracing::warn!(
        "state db discrepancy during list_threads: outside_home_db_path for thread {}: {}",
        row.id,
        row.rollout_path.display()
    );
    let scope = if archived {
        Scope::Archived
    } else {
        Scope::Active
    };
    let found = find_thread_path(Some(rt), rt.codex_home(), &row.id.to_string(), scope);
    found.path.filter(|p| {
        found.source == Some(LookupSource::Filesystem) && root_of(rt.codex_home(), p).is_some()
    })
}

fn list_files(
    codex_home: &Path,
    req: &ListRequest,
    anchor: Option<Anchor>,
    variant: Variant,
) -> ListPage {
    let root = if req.archived {
        Root::Archived
    } else {
        Root::Active
    };
    let (files, _warnings) = collect_rollout_files(&root.dir(codex_home));
    let files: Vec<(PathBuf, Uuid)> = files
        .into_iter()
        .filter_map(|path| {
            let id = read_session_meta_head(&path).ok()?.thread_id()?;
            Some((path, id))
        })
        .collect();
    let files = if variant.decisions().list_files_one_per_thread() {
        one_file_per_thread(codex_home, root, files)
    } else {
        files
    };
    let mut rows: Vec<(i64, Uuid, ListItem)> = files
        .into_iter()
        .filter_map(|(path, id)| {
            let head = read_session_meta_head(&path).ok()?;
            if !req.filter.keeps_head(&head) {
                return None;
            }
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

/// Whether a row's path serves its thread in a listing of `archived`: the file exists,
/// lies under the scope's root, and its head does not name another thread (an
/// unreadable head is not another thread's; lookups flag it).
fn serves_row(path: &Path, id: Uuid, archived: bool, codex_home: &Path) -> bool {
    let root = if archived {
        Root::Archived
    } else {
        Root::Active
    };
    path.is_file()
        && path.starts_with(root.dir(codex_home))
        && !matches!(read_session_meta_head(path), Ok(head) if head.thread_id().is_some_and(|h| h != id))
}

/// Several files can claim one thread (a copy restored next to the original): the file
/// listing shows the thread once, from the file at its canonical place (dated directory
/// matching its name, or flat in the archive), else the greatest path — the same file an
/// exact-UUID lookup prefers.
fn one_file_per_thread(
    codex_home: &Path,
    root: Root,
    files: Vec<(PathBuf, Uuid)>,
) -> Vec<(PathBuf, Uuid)> {
    let mut best: std::collections::BTreeMap<Uuid, PathBuf> = std::collections::BTreeMap::new();
    for (path, id) in files {
        let rank = |p: &Path| (is_canonical(codex_home, root, p), p.to_path_buf());
        match best.get(&id) {
            Some(kept) if rank(kept) >= rank(&path) => {}
            _ => {
                best.insert(id, path);
            }
        }
    }
    best.into_iter().map(|(id, path)| (path, id)).collect()
}

fn is_canonical(codex_home: &Path, root: Root, path: &Path) -> bool {
    let Some(parsed) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_rollout_file_name)
    else {
        return false;
    };
    let expected = match root {
        Root::Active => active_rollout_path(codex_home, parsed.timestamp, parsed.id),
        Root::Archived => archived_rollout_path(codex_home, parsed.timestamp, parsed.id),
    };
    expected == path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two files claim one thread: the file at its canonical place is listed, though the
    /// copy's path sorts after it. Catches a ranking that prefers the copy (or the path alone).
    #[test]
    fn the_canonical_file_wins_over_a_copy_with_a_greater_path() {
        let home = Path::new("/home-under-test");
        let id = Uuid::parse_str("019bffa1-3c5e-7d20-9a4b-2f6c1e8d0b17").unwrap();
        let name = format!("rollout-2026-01-27T12-34-56-{id}.jsonl");
        let parsed = parse_rollout_file_name(&name).unwrap();
        let canonical = active_rollout_path(home, parsed.timestamp, id);
        let copy = home.join("sessions/2099/12/31").join(&name);
        assert!(copy > canonical);
        for files in [
            vec![(canonical.clone(), id), (copy.clone(), id)],
            vec![(copy.clone(), id), (canonical.clone(), id)],
        ] {
            assert_eq!(
                one_file_per_thread(home, Root::Active, files),
                vec![(canonical.clone(), id)]
            );
        }
    }

    #[test]
    fn cursor_accepts_codexs_keyset_form_and_reencodes_it() {
        let id = Uuid::parse_str("019bffa1-3c5e-7d20-9a4b-2f6c1e8d0b17").unwrap();
        let text = format!("2026-01-27T12:34:56.801Z|{id}");
        let c = Cursor::parse(&text).unwrap();
        assert_eq!(c.0.id, Some(id));
        assert_eq!(Cursor::encode(c.0.ts_ms, c.0.id), text);
    }

    #[test]
    fn cursor_accepts_the_file_name_form_as_utc_seconds() {
        let c = Cursor::parse("2026-01-27T12-34-56").unwrap();
        let want = DateTime::parse_from_rfc3339("2026-01-27T12:34:56Z").unwrap();
        assert_eq!(
            c.0,
            Anchor {
                ts_ms: want.timestamp_millis(),
                id: None
            }
        );
        let keyed =
            Cursor::parse("2026-01-27T12-34-56|019bffa1-3c5e-7d20-9a4b-2f6c1e8d0b17").unwrap();
        assert_eq!(keyed.0.ts_ms, want.timestamp_millis());
        assert!(keyed.0.id.is_some());
    }

    #[test]
    fn a_malformed_cursor_names_the_accepted_forms() {
        for bad in [
            "yesterday",
            "2026-01-27T12-34",
            "2026-01-27T12:34:56Z|not-a-uuid",
        ] {
            let err = Cursor::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains(bad) && err.contains("2026-01-27T12-34-56"),
                "{err}"
            );
        }
    }
}
