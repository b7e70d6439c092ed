//! A census of the rollout roots: every regular file under `sessions/` and
//! `archived_sessions/` (whatever its name), its scope, the id its head claims and a
//! digest of its bytes. Walked here, not through `crate::rollout`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::head::claimed_id;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservedScope {
    Active,
    Archived,
}

impl ObservedScope {
    pub fn dir_name(self) -> &'static str {
        match self {
            ObservedScope::Active => "sessions",
            ObservedScope::Archived => "archived_sessions",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CensusEntry {
    pub path: PathBuf,
    pub scope: ObservedScope,
    pub claimed_id: Option<String>,
    pub digest: String,
    /// The bytes, kept so a lost or overwritten file can be written into a failure bundle.
    pub bytes: Vec<u8>,
}

/// Every file under the two roots of one home, sorted by path.
#[derive(Debug, Clone, Default)]
pub struct Census {
    pub entries: Vec<CensusEntry>,
}

impl Census {
    /// Walks both roots of `codex_home` (unreadable entries are skipped: a file nobody can
    /// read is not one anybody can serve either).
    pub fn take(codex_home: &Path) -> Census {
        let mut entries = Vec::new();
        for scope in [ObservedScope::Active, ObservedScope::Archived] {
            let mut files = Vec::new();
            walk(&codex_home.join(scope.dir_name()), &mut files);
            for path in files {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                entries.push(CensusEntry {
                    claimed_id: claimed_id(&path),
                    digest: digest(&bytes),
                    scope,
                    path,
                    bytes,
                });
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Census { entries }
    }

    /// The files of `scope` whose head claims `id`.
    pub fn claiming<'a>(
        &'a self,
        id: &'a str,
        scope: Option<ObservedScope>,
    ) -> impl Iterator<Item = &'a CensusEntry> + 'a {
        self.entries.iter().filter(move |e| {
            e.claimed_id.as_deref() == Some(id) && scope.is_none_or(|s| e.scope == s)
        })
    }

    /// The distinct ids claimed by files of `scope`.
    pub fn ids(&self, scope: ObservedScope) -> BTreeMap<String, Vec<PathBuf>> {
        let mut ids: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for e in self.entries.iter().filter(|e| e.scope == scope) {
            if let Some(id) = &e.claimed_id {
                ids.entry(id.clone()).or_default().push(e.path.clone());
            }
        }
        ids
    }
}

pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&e.path(), out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_both_roots_and_reads_heads() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("sessions/2026/01/02/rollout-x.jsonl");
        let b = dir.path().join("archived_sessions/odd-name.txt");
        std::fs::create_dir_all(a.parent().unwrap()).unwrap();
        std::fs::create_dir_all(b.parent().unwrap()).unwrap();
        std::fs::write(
            &a,
            "{\"type\":\"session_meta\",\"payload\":{\"id\":\"t\"}}\n",
        )
        .unwrap();
        std::fs::write(&b, "junk").unwrap();
        std::fs::write(dir.path().join("outside.jsonl"), "x").unwrap();
        let c = Census::take(dir.path());
        assert_eq!(c.entries.len(), 2);
        assert_eq!(c.claiming("t", Some(ObservedScope::Active)).count(), 1);
        assert_eq!(c.claiming("t", Some(ObservedScope::Archived)).count(), 0);
        assert_eq!(c.entries[0].scope, ObservedScope::Archived);
        assert_ne!(c.entries[0].digest, c.entries[1].digest);
    }
}
