//! Injectors that make rollouts appear behind the DB's back: a thread restored from a
//! backup or copied from another machine after the backfill completed. The new file gets
//! an mtime in the past (what `cp -p` or `rsync -a` keep) so only the directory shows the
//! change. The new thread is registered as alias `new<N>`, so listing checks that expect
//! every thread of a scope include it.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::home::{HomeModel, ThreadEntry};
use crate::rollout::layout::Root;
use crate::rollout::writer::{write_rollout, RolloutSpec};

/// Where a new rollout lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Landing {
    /// The day directory of an existing thread (`beside`), under `sessions/`.
    #[default]
    ExistingDay,
    /// A day directory no rollout was in before (a year earlier).
    NewDay,
    /// `archived_sessions/` (flat).
    Archived,
}

/// Writes a new thread's rollout that no row points at; returns what it did.
pub fn new_rollout(home: &mut HomeModel, beside: &str, into: Landing) -> Result<String, String> {
    let anchor = home.thread(beside)?.clone();
    let created = created_of(&anchor)?;
    let created = match into {
        Landing::NewDay => created - TimeDelta::days(400),
        _ => created + TimeDelta::seconds(1),
    };
    home.counter += 1;
    let n = home.threads.keys().filter(|a| a.starts_with("new")).count();
    let alias = format!("new{n}");
    let mut tail = [0u8; 10];
    tail[..4].copy_from_slice(&home.counter.to_be_bytes());
    tail[4..8].copy_from_slice(b"late");
    let id = uuid::Builder::from_unix_timestamp_millis(created.timestamp_millis() as u64, &tail)
        .into_uuid();
    let mut spec = RolloutSpec::new(id, created);
    spec.root = if into == Landing::Archived {
        Root::Archived
    } else {
        Root::Active
    };
    spec.user_messages = vec![format!("restored from a backup ({alias})")];
    let path = write_rollout(&home.codex_home, &spec).map_err(|e| e.to_string())?;
    // A restore keeps the old mtime: only the directory's own times change.
    let old = SystemTime::UNIX_EPOCH + Duration::from_millis(created.timestamp_millis() as u64);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(old))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let relative = home.relative(&path);
    home.threads.insert(
        alias.clone(),
        ThreadEntry {
            id,
            path,
            root: spec.root,
        },
    );
    Ok(format!("{alias} ({id}) appeared at {relative} with no row"))
}

fn created_of(entry: &ThreadEntry) -> Result<DateTime<Utc>, String> {
    let head = crate::rollout::head::read_session_meta_head(&entry.path)
        .map_err(|e| format!("{}: {e}", entry.path.display()))?;
    head.timestamp
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{} has no session timestamp", entry.path.display()))
}
