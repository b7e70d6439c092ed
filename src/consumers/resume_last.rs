//! Resume-last (`codex resume --last`): the rollout of the most recently updated active
//! thread, optionally only among threads whose working directory matches.
//!
//! With a handle the DB is paged newest first; rows whose rollout file is missing or whose
//! head names another thread are skipped (never trusted, never deleted). When the DB has
//! no answer, or there is no handle, the same search runs over the files and the reason
//! is reported with Codex's names: `db_unavailable`, `missing_row`, `db_error`.

use std::path::{Path, PathBuf};

use crate::lookup::{list_threads, FallbackReason, ListRequest};
use crate::rollout::head::read_session_meta_head;
use crate::rollout::metadata::extract_metadata;
use crate::state::threads::{self, Anchor, SortKey};
use crate::state::{StateDbHandle, StateError};
use crate::thread::ThreadMetadata;

/// Rows or files examined per page.
const PAGE_SIZE: usize = 50;

/// The newest resumable thread's rollout, and why the DB did not answer (if it did not).
pub fn find_latest_thread(
    codex_home: &Path,
    state_db: Option<&StateDbHandle>,
    cwd_filter: Option<&str>,
) -> (Option<PathBuf>, Option<FallbackReason>) {
    let reason = match state_db {
        None => FallbackReason::DbUnavailable,
        Some(rt) => match latest_from_db(rt, cwd_filter) {
            Ok(Some(path)) => return (Some(path), None),
            Ok(None) => FallbackReason::MissingRow,
            Err(err) => {
                tracing::warn!("state db find_latest_thread_path failed: {err}");
                FallbackReason::DbError
            }
        },
    };
    tracing::warn!(
        "state db discrepancy during find_latest_thread_path: falling_back ({})",
        reason.as_str()
    );
    (latest_from_files(codex_home, cwd_filter), Some(reason))
}

fn latest_from_db(
    rt: &StateDbHandle,
    cwd_filter: Option<&str>,
) -> Result<Option<PathBuf>, StateError> {
    let mut anchor = None;
    loop {
        let rows = rt.read("find_latest_thread_path", |c| {
            threads::page(c, false, SortKey::Updated, anchor, PAGE_SIZE)
        })?;
        let exhausted = rows.len() < PAGE_SIZE;
        for row in rows {
            anchor = Some(Anchor {
                ts_ms: row.updated_at_ms,
                id: Some(row.id),
            });
            if usable_row(&row) && cwd_filter.is_none_or(|f| cwd_matches(&row_cwd(&row), f)) {
                return Ok(Some(row.rollout_path));
            }
        }
        if exhausted {
            return Ok(None);
        }
    }
}

/// The row's file exists and its head names the row's thread.
fn usable_row(row: &ThreadMetadata) -> bool {
    if !row.rollout_path.is_file() {
        tracing::warn!(
            "state db returned stale rollout path for thread {}: {}",
            row.id,
            row.rollout_path.display()
        );
        return false;
    }
    let head_id = read_session_meta_head(&row.rollout_path)
        .ok()
        .and_then(|h| h.thread_id());
    if head_id != Some(row.id) {
        tracing::warn!("state db discrepancy during find_latest_thread_path: mismatched_db_path");
        return false;
    }
    true
}

/// The row's cached cwd, else the one recorded in its rollout.
fn row_cwd(row: &ThreadMetadata) -> String {
    if !row.cwd.is_empty() {
        return row.cwd.clone();
    }
    file_cwd(&row.rollout_path)
}

fn file_cwd(path: &Path) -> String {
    if let Some(cwd) = read_session_meta_head(path).ok().and_then(|h| h.cwd) {
        if !cwd.is_empty() {
            return cwd;
        }
    }
    extract_metadata(path, "")
        .map(|e| e.metadata.cwd)
        .unwrap_or_default()
}

fn cwd_matches(cwd: &str, filter: &str) -> bool {
    let trim = |s: &str| -> String {
        let t = s.trim().trim_end_matches(['/', '\\']);
        if t.is_empty() {
            s.trim().to_string()
        } else {
            t.to_string()
        }
    };
    trim(cwd) == trim(filter)
}

fn latest_from_files(codex_home: &Path, cwd_filter: Option<&str>) -> Option<PathBuf> {
    let mut req = ListRequest {
        page_size: PAGE_SIZE,
        sort: SortKey::Updated,
        ..ListRequest::default()
    };
    loop {
        let page = list_threads(None, codex_home, &req).ok()?;
        for item in page.items {
            if cwd_filter.is_none_or(|f| cwd_matches(&file_cwd(&item.path), f)) {
                return Some(item.path);
            }
        }
        req.cursor = Some(page.next_cursor?);
    }
}
