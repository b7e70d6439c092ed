//! The legacy name index `session_index.jsonl` at the home root: one JSON line per rename,
//! `{"id": …, "thread_name": …, "updated_at": …}`, appended over time so the newest entry
//! of an id is its current name.
//!
//! Owns reading it (newest first) for name lookup and for the thread store's names. It is
//! a file the consumers only read; nothing here writes.

use std::path::Path;

use uuid::Uuid;

use super::error::ConsumerError;
use crate::fixture::SESSION_INDEX_FILE;

/// One line of the index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SessionIndexEntry {
    pub id: Uuid,
    pub thread_name: String,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// The index entries, newest (last line) first. Lines that do not parse are skipped.
/// A missing index is `Ok(None)`.
pub fn read_session_index(
    codex_home: &Path,
) -> Result<Option<Vec<SessionIndexEntry>>, ConsumerError> {
    let path = codex_home.join(SESSION_INDEX_FILE);
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ConsumerError::Io { path, source }),
    };
    Ok(Some(
        text.lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<SessionIndexEntry>(line.trim()).ok())
            .collect(),
    ))
}

/// The current (newest) non-blank name of `id` in the index, if any. Unreadable indexes
/// give `None`: a name is decoration, never a reason to fail a read.
pub fn thread_name_for(codex_home: &Path, id: Uuid) -> Option<String> {
    let entries = match read_session_index(codex_home) {
        Ok(entries) => entries?,
        Err(err) => {
            tracing::warn!("{err}");
            return None;
        }
    };
    entries
        .into_iter()
        .find(|e| e.id == id)
        .map(|e| e.thread_name)
        .filter(|name| !name.trim().is_empty())
}
