//! Removal of legacy state DB files, as Codex's `StateRuntime::init` does once the current
//! DB is open: `state.sqlite` and `state_N.sqlite` for every N below the current version
//! (5), with their `-wal`, `-shm` and `-journal` sidecars, in the sqlite home.
//!
//! Only those exact names are removed, only regular files (a directory or anything else
//! under such a name stays), and only in the sqlite home itself (no recursion). Every
//! other file stays: `state.sqlite_backup`, `state_4.sqlite.bak`, the current
//! `state_5.sqlite` and its sidecars, newer `state_6.sqlite`, recovery backups
//! (`state_5.sqlite.corrupt-…`), other DBs. Startup calls this only after the current DB
//! opened and migrated, so the old files are never removed while they may still be all
//! there is.
//!
//! Only in a harness-own home (`creation::is_harness_home`): Codex 0.169.0 keeps these
//! files, so in a user's home the reference keeps them too.

use std::path::{Path, PathBuf};

use super::runtime::STATE_DB_VERSION;

const SIDECARS: [&str; 4] = ["", "-wal", "-shm", "-journal"];

/// The exact file names this removes (in the sqlite home).
pub fn legacy_names() -> Vec<String> {
    let bases = std::iter::once("state.sqlite".to_string())
        .chain((1..STATE_DB_VERSION).map(|n| format!("state_{n}.sqlite")));
    bases
        .flat_map(|base| SIDECARS.iter().map(move |s| format!("{base}{s}")))
        .collect()
}

/// What a removal did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyRemoval {
    pub removed: Vec<PathBuf>,
    /// Files that matched but could not be removed, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

/// Removes the legacy state DB files of `sqlite_home`. Never fails: a file that cannot be
/// removed is reported and left.
pub fn remove_legacy_state_dbs(sqlite_home: &Path) -> LegacyRemoval {
    let mut out = LegacyRemoval::default();
    for name in legacy_names() {
        let path = sqlite_home.join(&name);
        // symlink_metadata: a symlink named like a legacy file is removed as a link, its
        // target is never touched; directories and other kinds are left alone.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !(meta.is_file() || meta.file_type().is_symlink()) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!("removed legacy state db file {}", path.display());
                out.removed.push(path);
            }
            Err(err) => {
                tracing::warn!(
                    "failed to remove legacy state db file {}: {err}",
                    path.display()
                );
                out.failed.push((path, err.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_every_older_version_and_sidecar_only() {
        let names = legacy_names();
        assert!(names.contains(&"state.sqlite".to_string()));
        assert!(names.contains(&"state_4.sqlite-journal".to_string()));
        assert!(names.contains(&"state_1.sqlite-wal".to_string()));
        assert!(!names.iter().any(|n| n.starts_with("state_5")));
        assert_eq!(names.len(), 5 * 4);
    }
}
