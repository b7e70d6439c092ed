//! The home a Codex child process sees: `CODEX_HOME` and, when given, `CODEX_SQLITE_HOME`.
//! A child never inherits the user's own values of either, so nothing touches a real home.

use std::path::PathBuf;

/// Where a Codex child keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeSpec {
    pub codex_home: PathBuf,
    pub sqlite_home: Option<PathBuf>,
}

impl HomeSpec {
    pub fn new(codex_home: impl Into<PathBuf>) -> Self {
        HomeSpec {
            codex_home: codex_home.into(),
            sqlite_home: None,
        }
    }

    /// The directory holding `state_5.sqlite`.
    pub fn sqlite_dir(&self) -> &std::path::Path {
        self.sqlite_home.as_deref().unwrap_or(&self.codex_home)
    }

    /// The environment a child gets: the inherited values are removed first.
    pub(crate) fn apply_std(&self, cmd: &mut std::process::Command) {
        cmd.env_remove("CODEX_HOME").env_remove("CODEX_SQLITE_HOME");
        cmd.env("CODEX_HOME", &self.codex_home);
        if let Some(s) = &self.sqlite_home {
            cmd.env("CODEX_SQLITE_HOME", s);
        }
    }

    pub(crate) fn apply_tokio(&self, cmd: &mut tokio::process::Command) {
        cmd.env_remove("CODEX_HOME").env_remove("CODEX_SQLITE_HOME");
        cmd.env("CODEX_HOME", &self.codex_home);
        if let Some(s) = &self.sqlite_home {
            cmd.env("CODEX_SQLITE_HOME", s);
        }
    }
}
