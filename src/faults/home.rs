//! `HomeModel`: a scenario home as the injectors and checks see it — where the codex and
//! sqlite homes are, and which thread alias (`t0`, `a1`, ...) is which id and file now.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::rollout::layout::Root;
use crate::state::STATE_DB_FILENAME;

/// One thread of the home.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ThreadEntry {
    pub id: Uuid,
    /// Where its rollout is now (injectors that move files update it).
    pub path: PathBuf,
    pub root: Root,
}

/// A scenario home.
#[derive(Debug, Default)]
pub struct HomeModel {
    pub codex_home: PathBuf,
    pub sqlite_home: PathBuf,
    pub threads: BTreeMap<String, ThreadEntry>,
    /// Directories made immutable/read-only, restored at teardown.
    pub readonly_dirs: Vec<PathBuf>,
    /// Counter for unique names of files injectors create.
    pub counter: u32,
    /// The bytes a DB-damaging injector left in `state_5.sqlite` (a recovery must keep them).
    pub damaged_db: Option<Vec<u8>>,
}

impl HomeModel {
    pub fn new(codex_home: PathBuf, sqlite_home: PathBuf) -> Self {
        HomeModel {
            codex_home,
            sqlite_home,
            threads: BTreeMap::new(),
            readonly_dirs: Vec::new(),
            counter: 0,
            damaged_db: None,
        }
    }

    /// The ids of the scenario's threads, as strings.
    pub fn known_ids(&self) -> std::collections::BTreeSet<String> {
        self.threads.values().map(|t| t.id.to_string()).collect()
    }

    pub fn db_path(&self) -> PathBuf {
        self.sqlite_home.join(STATE_DB_FILENAME)
    }

    pub fn thread(&self, alias: &str) -> Result<&ThreadEntry, String> {
        self.threads.get(alias).ok_or_else(|| {
            let known: Vec<&str> = self.threads.keys().map(String::as_str).collect();
            format!(
                "unknown thread '{alias}' (this home has: {})",
                known.join(", ")
            )
        })
    }

    /// The alias of a thread id, if it is one of the home's.
    pub fn alias_of(&self, id: Uuid) -> Option<&str> {
        self.threads
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(a, _)| a.as_str())
    }

    /// The alias of the thread whose current file is `path`.
    pub fn alias_of_path(&self, path: &Path) -> Option<&str> {
        self.threads
            .iter()
            .find(|(_, t)| t.path == path)
            .map(|(a, _)| a.as_str())
    }

    /// Path relative to the codex home, for reports.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.codex_home)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.display().to_string())
    }

    /// Undoes permission changes so the home can be inspected and removed.
    pub fn teardown(&mut self) {
        for dir in self.readonly_dirs.drain(..) {
            super::files::undo_readonly(&dir);
        }
    }
}

impl Drop for HomeModel {
    fn drop(&mut self) {
        self.teardown();
    }
}
