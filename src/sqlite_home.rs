//! Where the state DB lives, and whether a handle answers for the home a consumer asks
//! about.
//!
//! The sqlite home is, in order: an explicit directory (`--sqlite-home`, else the
//! `CODEX_SQLITE_HOME` environment variable; the flag wins), else the desktop layout
//! `<codex_home>/sqlite/` when its `state_5.sqlite` exists and the codex home holds none,
//! else the codex home itself (Codex's default).
//!
//! A handle belongs to one codex home and one sqlite home. Asked about another codex home
//! it has no answer: consumers then behave as without a handle (the files of the home they
//! asked about), and nothing is repaired, pruned or deleted through it. Codex only logs a
//! warning and goes on with the other home's rows.

use std::path::{Path, PathBuf};

use crate::state::{StateDbHandle, STATE_DB_FILENAME};

/// The desktop app's sub-directory of the codex home holding its sqlite files.
pub const DESKTOP_SUBDIR: &str = "sqlite";

/// Why the sqlite home is where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SqliteHomeSource {
    /// `--sqlite-home` or `CODEX_SQLITE_HOME`.
    Explicit,
    /// `<codex_home>/sqlite/state_5.sqlite` exists (and `<codex_home>/state_5.sqlite` does not).
    Desktop,
    /// The codex home itself.
    CodexHome,
}

/// Resolves the sqlite home for `codex_home` given an explicit choice (flag or env).
pub fn resolve_sqlite_home(
    codex_home: &Path,
    explicit: Option<&Path>,
) -> (PathBuf, SqliteHomeSource) {
    if let Some(dir) = explicit {
        return (dir.to_path_buf(), SqliteHomeSource::Explicit);
    }
    let desktop = codex_home.join(DESKTOP_SUBDIR);
    if desktop.join(STATE_DB_FILENAME).is_file() && !codex_home.join(STATE_DB_FILENAME).exists() {
        return (desktop, SqliteHomeSource::Desktop);
    }
    (codex_home.to_path_buf(), SqliteHomeSource::CodexHome)
}

/// The handle if it answers for `codex_home`; `None` (with a warning) when it was opened
/// for another home.
pub fn handle_for<'a>(
    handle: Option<&'a StateDbHandle>,
    codex_home: &Path,
    during: &str,
) -> Option<&'a StateDbHandle> {
    let rt = handle?;
    if !rt.context().decisions().handle_home_checked() || same_dir(rt.codex_home(), codex_home) {
        return Some(rt);
    }
    tracing::warn!(
        "state db codex_home mismatch during {during}: the handle serves {} (sqlite home {}), asked about {}; going on without it",
        rt.codex_home().display(),
        rt.sqlite_home().display(),
        codex_home.display()
    );
    None
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wins_then_desktop_then_codex_home() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        assert_eq!(
            resolve_sqlite_home(home, None),
            (home.to_path_buf(), SqliteHomeSource::CodexHome)
        );
        std::fs::create_dir_all(home.join("sqlite")).unwrap();
        std::fs::write(home.join("sqlite").join(STATE_DB_FILENAME), b"").unwrap();
        assert_eq!(
            resolve_sqlite_home(home, None),
            (home.join("sqlite"), SqliteHomeSource::Desktop)
        );
        let other = dir.path().join("elsewhere");
        assert_eq!(
            resolve_sqlite_home(home, Some(&other)),
            (other.clone(), SqliteHomeSource::Explicit)
        );
        // A DB in the codex home itself keeps the default layout.
        std::fs::write(home.join(STATE_DB_FILENAME), b"").unwrap();
        assert_eq!(
            resolve_sqlite_home(home, None).1,
            SqliteHomeSource::CodexHome
        );
    }

    /// Codex's `sqlite_home` defaults to `codex_home` (item 8 of the issue).
    #[test]
    fn sqlite_home_defaults_to_codex_home() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve_sqlite_home(dir.path(), None).0, dir.path());
    }
}
