//! `[home]` and `[[fault]]`: the generated codex home a scenario starts from, its DB,
//! extra files, and the faults applied to it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::is_default;
use crate::faults::Fault;
use crate::state::JournalMode;

/// What the DB looks like before the first step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DbSetup {
    /// A completed backfill indexed every rollout.
    #[default]
    Indexed,
    /// The DB exists and is migrated; the backfill is still pending.
    Fresh,
    /// No DB file.
    None,
}

/// `[home]`: the generated codex home.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeSpec {
    /// Active threads, aliased `t0`, `t1`, ...
    #[serde(default = "d_threads")]
    pub threads: usize,
    /// Archived threads, aliased `a0`, `a1`, ...
    #[serde(default)]
    pub archived: usize,
    #[serde(default, skip_serializing_if = "is_default")]
    pub db: DbSetup,
    #[serde(default, skip_serializing_if = "is_default")]
    pub journal_mode: JournalMode,
    /// Put the DB in its own directory instead of the codex home.
    #[serde(default, skip_serializing_if = "is_default")]
    pub separate_sqlite_home: bool,
    /// Extra files (odd names, notes, gitignores) relative to the codex home.
    #[serde(default, rename = "file", skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ExtraFile>,
}

fn d_threads() -> usize {
    3
}

impl Default for HomeSpec {
    fn default() -> Self {
        HomeSpec {
            threads: d_threads(),
            archived: 0,
            db: DbSetup::Indexed,
            journal_mode: JournalMode::Wal,
            separate_sqlite_home: false,
            files: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraFile {
    pub path: PathBuf,
    #[serde(default)]
    pub content: String,
}

/// `[[fault]]`: an injector, applied at setup or by an `inject` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultDecl {
    /// Name used by `inject` steps (default `<kind>` or `<kind>#<n>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `setup` (after the DB is prepared, before the first step) or `step`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub at: FaultTime,
    #[serde(flatten)]
    pub fault: Fault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTime {
    #[default]
    Setup,
    Step,
}
