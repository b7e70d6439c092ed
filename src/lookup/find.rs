//! `find_thread_path`: DB first, verified by the file's `session_meta.id`; then an exact
//! UUID search of the files; read-repair on a hit; the unverified DB path last.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::repair::{read_repair, RepairOutcome};
use crate::events::kinds;
use crate::failpoints::Failpoint;
use crate::process::ProcessContext;
use crate::rollout::head::read_session_meta_head;
use crate::rollout::layout::{root_of, Root};
use crate::rollout::search::find_rollout_by_id;
use crate::state::StateDbHandle;
use crate::thread::{Scope, ThreadMetadata};

/// Where a lookup's answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupSource {
    /// The DB row's path, verified against the file head.
    Db,
    /// The filesystem search (after which the row was repaired when possible).
    Filesystem,
    /// The DB row's path, whose file exists but whose head could not be read.
    UnverifiedDb,
}

/// Why the DB answer was not used (Codex's reason names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    DbUnavailable,
    MissingRow,
    DbError,
    StalePath,
    Mismatch,
    UnverifiedPath,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::DbUnavailable => "db_unavailable",
            FallbackReason::MissingRow => "missing_row",
            FallbackReason::DbError => "db_error",
            FallbackReason::StalePath => "stale_path",
            FallbackReason::Mismatch => "mismatch",
            FallbackReason::UnverifiedPath => "unverified_path",
        }
    }
}

/// The answer of one lookup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LookupResult {
    pub thread_id: String,
    pub path: Option<PathBuf>,
    pub source: Option<LookupSource>,
    pub fallback_reason: Option<FallbackReason>,
    pub repaired: bool,
    /// Why a repair that was needed did not happen (busy DB, row changed concurrently...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair_skipped: Option<String>,
}

impl LookupResult {
    fn not_found(id: &str, reason: Option<FallbackReason>) -> Self {
        LookupResult {
            thread_id: id.to_string(),
            path: None,
            source: None,
            fallback_reason: reason,
            repaired: false,
            repair_skipped: None,
        }
    }
}

/// Looks a thread up with the handle's own process context (reference behaviour when
/// there is no handle).
pub fn find_thread_path(
    handle: Option<&StateDbHandle>,
    codex_home: &Path,
    id: &str,
    scope: Scope,
) -> LookupResult {
    match handle {
        Some(h) => {
            let ctx = h.context().clone();
            find_thread_path_in(&ctx, handle, codex_home, id, scope)
        }
        None => {
            let ctx = ProcessContext::plain("lookup");
            find_thread_path_in(&ctx, None, codex_home, id, scope)
        }
    }
}

/// What the DB said about the thread (short-lived; size does not matter).
#[allow(clippy::large_enum_variant)]
enum DbAnswer {
    Verified(PathBuf),
    Fallback {
        reason: FallbackReason,
        unverified: Option<PathBuf>,
        row: Option<ThreadMetadata>,
    },
}

/// Looks a thread up on behalf of process `ctx` (whose variant and failpoints apply).
pub fn find_thread_path_in(
    ctx: &Arc<ProcessContext>,
    handle: Option<&StateDbHandle>,
    codex_home: &Path,
    id: &str,
    scope: Scope,
) -> LookupResult {
    let result = lookup(ctx, handle, codex_home, id, scope);
    // Building the event allocates; a process without a sink (the CLI) skips it.
    if ctx.events().is_recording() {
        ctx.emit(
            kinds::LOOKUP,
            json!({
                "thread_id": result.thread_id,
                "path": result.path,
                "source": result.source,
                "fallback_reason": result.fallback_reason,
                "repaired": result.repaired,
            }),
        );
    }
    result
}

fn lookup(
    ctx: &Arc<ProcessContext>,
    handle: Option<&StateDbHandle>,
    codex_home: &Path,
    id: &str,
    scope: Scope,
) -> LookupResult {
    let Ok(uuid) = Uuid::parse_str(id.trim()) else {
        return LookupResult::not_found(id, None);
    };
    // A handle for another home has no answer here (and repairs nothing through it).
    let handle = crate::sqlite_home::handle_for(handle, codex_home, "find_thread_path");
    let (reason, unverified, row_read) = match handle {
        None => (FallbackReason::DbUnavailable, None, None),
        Some(rt) => match ask_db(ctx, rt, uuid, scope) {
            DbAnswer::Verified(path) => {
                return LookupResult {
                    thread_id: id.to_string(),
                    path: Some(path),
                    source: Some(LookupSource::Db),
                    fallback_reason: None,
                    repaired: false,
                    repair_skipped: None,
                }
            }
            DbAnswer::Fallback {
                reason,
                unverified,
                row,
            } => (reason, unverified, row),
        },
    };

    if let Some((hit, root)) = search_files(ctx, codex_home, uuid, id, scope) {
        tracing::warn!(
            "state db discrepancy during find_thread_path: falling_back ({})",
            reason.as_str()
        );
        let mut result = LookupResult {
            thread_id: id.to_string(),
            path: Some(hit.clone()),
            source: Some(LookupSource::Filesystem),
            fallback_reason: Some(reason),
            repaired: false,
            repair_skipped: None,
        };
        if let Some(rt) = handle {
            match read_repair(rt, uuid, row_read.as_ref(), &hit, root) {
                RepairOutcome::Written => result.repaired = true,
                RepairOutcome::NotNeeded => {}
                RepairOutcome::Skipped(why) => result.repair_skipped = Some(why),
            }
        }
        return result;
    }
    match unverified {
        Some(path) => LookupResult {
            thread_id: id.to_string(),
            path: Some(path),
            source: Some(LookupSource::UnverifiedDb),
            fallback_reason: Some(reason),
            repaired: false,
            repair_skipped: None,
        },
        None => LookupResult::not_found(id, Some(reason)),
    }
}

fn ask_db(ctx: &Arc<ProcessContext>, rt: &StateDbHandle, uuid: Uuid, scope: Scope) -> DbAnswer {
    let row = match rt.get_thread(uuid) {
        Ok(row) => row,
        Err(err) => {
            tracing::warn!("state db find_rollout_path_by_id failed during find_path_query: {err}");
            return DbAnswer::Fallback {
                reason: FallbackReason::DbError,
                unverified: None,
                row: None,
            };
        }
    };
    if ctx.failpoint(Failpoint::LookupAfterDbRead).is_err() {
        return DbAnswer::Fallback {
            reason: FallbackReason::DbError,
            unverified: None,
            row,
        };
    }
    let in_scope = row
        .as_ref()
        .filter(|r| scope.archived_filter().is_none_or(|a| a == r.is_archived()));
    let Some(in_scope) = in_scope else {
        return DbAnswer::Fallback {
            reason: FallbackReason::MissingRow,
            unverified: None,
            row,
        };
    };
    let db_path = in_scope.rollout_path.clone();
    if root_of(rt.codex_home(), &db_path).is_none()
        && !ctx.decisions().accepts_outside_home_file(&db_path, uuid)
    {
        // A home moved or copied with its DB: the row names a file of another home (or
        // no rollout root at all). Never an answer, however well its head verifies.
        tracing::warn!(
            "state db returned rollout path for thread {uuid} outside {}: {}",
            rt.codex_home().display(),
            db_path.display()
        );
        discrepancy(ctx, "outside_home_db_path", uuid);
        return DbAnswer::Fallback {
            reason: FallbackReason::StalePath,
            unverified: None,
            row,
        };
    }
    if !db_path.is_file() {
        tracing::error!(
            "state db returned stale rollout path for thread {uuid}: {}",
            db_path.display()
        );
        discrepancy(ctx, "stale_db_path", uuid);
        return DbAnswer::Fallback {
            reason: FallbackReason::StalePath,
            unverified: None,
            row,
        };
    }
    if !ctx.decisions().verify_db_path() {
        return DbAnswer::Verified(db_path);
    }
    match read_session_meta_head(&db_path) {
        Ok(head) if head.thread_id() == Some(uuid) => {
            // The right file, but under the other root (moved without the DB being told):
            // it does not answer for this scope.
            let root = root_of(rt.codex_home(), &db_path);
            match (scope.archived_filter(), root) {
                (Some(want_archived), Some(root)) if root.is_archived() != want_archived => {
                    tracing::warn!(
                        "state db returned rollout path for thread {uuid} outside the {} root: {}",
                        if want_archived { "archived" } else { "active" },
                        db_path.display()
                    );
                    discrepancy(ctx, "out_of_scope_db_path", uuid);
                    DbAnswer::Fallback {
                        reason: FallbackReason::StalePath,
                        unverified: None,
                        row,
                    }
                }
                _ => DbAnswer::Verified(db_path),
            }
        }
        Ok(head) => {
            tracing::error!(
                "state db returned rollout path for thread {uuid} but file belongs to thread {}: {}",
                head.id,
                db_path.display()
            );
            discrepancy(ctx, "mismatched_db_path", uuid);
            DbAnswer::Fallback {
                reason: FallbackReason::Mismatch,
                unverified: None,
                row,
            }
        }
        Err(err) => {
            tracing::debug!("state db rollout path for thread {uuid} could not be verified: {err}");
            DbAnswer::Fallback {
                reason: FallbackReason::UnverifiedPath,
                unverified: Some(db_path),
                row,
            }
        }
    }
}

fn discrepancy(ctx: &Arc<ProcessContext>, reason: &str, id: Uuid) {
    tracing::warn!("state db discrepancy during find_thread_path: {reason}");
    ctx.emit(
        kinds::DISCREPANCY,
        json!({"during": "find_thread_path", "reason": reason, "thread_id": id}),
    );
}

/// Roots a scope searches, active first.
fn roots(scope: Scope) -> &'static [Root] {
    match scope {
        Scope::Active => &[Root::Active],
        Scope::Archived => &[Root::Archived],
        Scope::Any => &[Root::Active, Root::Archived],
    }
}

fn search_files(
    ctx: &Arc<ProcessContext>,
    codex_home: &Path,
    uuid: Uuid,
    id_text: &str,
    scope: Scope,
) -> Option<(PathBuf, Root)> {
    for &root in roots(scope) {
        let dir = root.dir(codex_home);
        if let Some(replaced) = ctx.decisions().replace_fallback_search(&dir, id_text) {
            match replaced {
                Some(hit) => return Some((hit, root)),
                None => continue,
            }
        }
        let outcome = find_rollout_by_id(&dir, uuid, root.is_archived());
        for (path, why) in &outcome.rejected {
            tracing::warn!(
                "rejected rollout candidate for thread {uuid} at {}: {why}",
                path.display()
            );
        }
        if let Some(hit) = outcome.found {
            return Some((hit, root));
        }
    }
    None
}
