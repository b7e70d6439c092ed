//! The thread record: what the state DB knows about one conversation thread.
//!
//! Produced by rollout extraction (`rollout::metadata`) and stored in the `threads` table
//! (`state::threads`). It lives at the bottom of the crate so both layers can share it
//! without either importing the other.

use std::path::PathBuf;

use uuid::Uuid;

/// Codex's stored sandbox policy when no turn context names one (a read-only profile).
pub const DEFAULT_SANDBOX_POLICY: &str = r#"{"type":"managed","file_system":{"type":"restricted","entries":[{"path":{"type":"special","value":{"kind":"root"}},"access":"read"}]},"network":"restricted"}"#;

/// The model provider recorded for rollouts that name none (Codex's default provider).
pub const DEFAULT_PROVIDER: &str = "openai";

/// Codex's default creation memory mode (`threads.memory_mode` default).
pub const DEFAULT_MEMORY_MODE: &str = "enabled";

/// One row of Codex's `threads` table, in the columns this crate reads and writes.
///
/// Timestamps are epoch milliseconds; the seconds columns Codex also has are derived from
/// them on write.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThreadMetadata {
    pub id: Uuid,
    pub rollout_path: PathBuf,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Serde value of the session source: a bare string (`cli`, `vscode`, `exec`, `mcp`) or JSON text.
    pub source: String,
    pub model_provider: String,
    pub cwd: String,
    pub cli_version: String,
    pub title: String,
    pub first_user_message: String,
    pub sandbox_policy: String,
    pub approval_mode: String,
    pub tokens_used: i64,
    pub has_user_event: bool,
    /// Set iff the thread is archived.
    pub archived_at_ms: Option<i64>,
    pub git_sha: Option<String>,
    pub git_branch: Option<String>,
    pub git_origin_url: Option<String>,
    pub agent_nickname: Option<String>,
    pub agent_role: Option<String>,
    pub model: Option<String>,
    pub reasoning_effort: Option<String>,
    /// Memory mode found in the rollout (the last `session_meta` carrying one); the DB
    /// column defaults to [`DEFAULT_MEMORY_MODE`].
    pub memory_mode: Option<String>,
    /// `session_meta.originator` (e.g. `codex_cli_rs`); stored where the table has the column.
    #[serde(default)]
    pub originator: Option<String>,
    #[serde(default)]
    pub agent_path: Option<String>,
    #[serde(default)]
    pub thread_source: Option<String>,
}

impl ThreadMetadata {
    /// A record with Codex's defaults for everything but the identity and times.
    pub fn new(id: Uuid, rollout_path: PathBuf, created_at_ms: i64) -> Self {
        ThreadMetadata {
            id,
            rollout_path,
            created_at_ms,
            updated_at_ms: created_at_ms,
            source: "vscode".to_string(),
            model_provider: String::new(),
            cwd: String::new(),
            cli_version: String::new(),
            title: String::new(),
            first_user_message: String::new(),
            sandbox_policy: DEFAULT_SANDBOX_POLICY.to_string(),
            approval_mode: "on-request".to_string(),
            tokens_used: 0,
            has_user_event: false,
            archived_at_ms: None,
            git_sha: None,
            git_branch: None,
            git_origin_url: None,
            agent_nickname: None,
            agent_role: None,
            model: None,
            reasoning_effort: None,
            memory_mode: None,
            originator: None,
            agent_path: None,
            thread_source: None,
        }
    }

    pub fn is_archived(&self) -> bool {
        self.archived_at_ms.is_some()
    }
}

/// Which roots a lookup or listing covers.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `sessions/` and rows with `archived = 0`.
    #[default]
    Active,
    /// `archived_sessions/` and rows with `archived = 1`.
    Archived,
    /// Both.
    Any,
}

impl Scope {
    /// The `archived` column value this scope requires, if any.
    pub fn archived_filter(self) -> Option<bool> {
        match self {
            Scope::Active => Some(false),
            Scope::Archived => Some(true),
            Scope::Any => None,
        }
    }
}
