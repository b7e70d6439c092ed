//! Name lookup: resolve a thread from the user-visible name recorded in
//! `session_index.jsonl` (`codex resume <name>`).
//!
//! Entries are taken newest first; an id's newest entry is its current name, so a thread
//! renamed away from the name no longer matches. The first matching id that lookup
//! resolves to a rollout whose head names that id wins. A blank name or a missing index
//! gives `None`. The handle only makes the per-candidate lookup DB-first (with repair).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;

use super::error::ConsumerError;
use super::session_index::read_session_index;
use crate::lookup::{find_thread_path_in, LookupResult};
use crate::process::ProcessContext;
use crate::rollout::head::read_session_meta_head;
use crate::state::StateDbHandle;
use crate::thread::Scope;

/// A thread found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedThread {
    pub thread_id: Uuid,
    pub name: String,
    pub path: PathBuf,
    /// The lookup that resolved it (source, fallback reason, repair).
    pub lookup: LookupResult,
}

/// Finds the newest thread currently named `name`.
pub fn find_thread_by_name(
    codex_home: &Path,
    name: &str,
    state_db: Option<&StateDbHandle>,
    ctx: &Arc<ProcessContext>,
) -> Result<Option<NamedThread>, ConsumerError> {
    let wanted = name.trim();
    if wanted.is_empty() {
        return Ok(None);
    }
    let Some(entries) = read_session_index(codex_home)? else {
        return Ok(None);
    };
    let mut seen = HashSet::new();
    for entry in entries {
        // Newest first: the first entry of an id is its current name.
        if !seen.insert(entry.id) || entry.thread_name.trim() != wanted {
            continue;
        }
        let lookup = find_thread_path_in(
            ctx,
            state_db,
            codex_home,
            &entry.id.to_string(),
            Scope::Active,
        );
        let Some(path) = lookup.path.clone() else {
            continue;
        };
        let verified = read_session_meta_head(&path)
            .ok()
            .and_then(|head| head.thread_id())
            == Some(entry.id);
        if verified {
            return Ok(Some(NamedThread {
                thread_id: entry.id,
                name: entry.thread_name,
                path,
                lookup,
            }));
        }
    }
    Ok(None)
}
