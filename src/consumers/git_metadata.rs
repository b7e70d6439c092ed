//! Git metadata patch (an app-server request): set a thread's git sha, branch or origin
//! in its row. DB-only: without a handle it returns `state db unavailable for thread <id>`.

use rusqlite::params;
use uuid::Uuid;

use super::error::ConsumerError;
use crate::state::StateDbHandle;

/// Fields to set; `None` leaves a field as it is, unless `clear` names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitMetadataPatch {
    pub sha: Option<String>,
    pub branch: Option<String>,
    pub origin_url: Option<String>,
    /// Fields to set back to NULL (Codex's patch can clear a field, not only set it).
    pub clear: GitFields,
}

/// Which git fields a patch clears.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GitFields {
    pub sha: bool,
    pub branch: bool,
    pub origin_url: bool,
}

/// Applies `patch` to the thread's row; `Ok(false)` when there is no such row.
pub fn update_thread_git_metadata(
    state_db: Option<&StateDbHandle>,
    thread_id: Uuid,
    patch: &GitMetadataPatch,
) -> Result<bool, ConsumerError> {
    let rt = state_db.ok_or_else(|| ConsumerError::unavailable(format!("thread {thread_id}")))?;
    let changed = rt.write("git metadata patch", |tx| {
        tx.execute(
            "UPDATE threads SET
                git_sha = CASE WHEN ?5 THEN NULL ELSE COALESCE(?2, git_sha) END,
                git_branch = CASE WHEN ?6 THEN NULL ELSE COALESCE(?3, git_branch) END,
                git_origin_url = CASE WHEN ?7 THEN NULL ELSE COALESCE(?4, git_origin_url) END
             WHERE id = ?1",
            params![
                thread_id.to_string(),
                patch.sha,
                patch.branch,
                patch.origin_url,
                patch.clear.sha,
                patch.clear.branch,
                patch.clear.origin_url
            ],
        )
        .map_err(rt.err("git metadata patch"))
    })?;
    Ok(changed == 1)
}
