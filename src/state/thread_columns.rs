//! Which `threads` columns the DB at hand has, and the SQL that reads and writes exactly
//! those.
//!
//! Codex adds `threads` columns migration by migration: a DB that Codex 0.120.0 made lacks
//! the millisecond, preview and recency columns that 0.169.0 has, and the harness must
//! never add them (a later Codex migration would fail on a duplicate column). So every
//! statement is built from the columns present, with Codex's defaults standing in for the
//! absent ones on read.

use rusqlite::Connection;

/// Columns of migration 0001, present in every Codex `threads` table.
const BASE: &[&str] = &[
    "id",
    "rollout_path",
    "created_at",
    "updated_at",
    "source",
    "model_provider",
    "cwd",
    "title",
    "sandbox_policy",
    "approval_mode",
    "tokens_used",
    "has_user_event",
    "archived",
    "archived_at",
    "git_sha",
    "git_branch",
    "git_origin_url",
];

/// Later columns the reference writes when the table has them, in a fixed order.
pub const OPTIONAL: &[&str] = &[
    "cli_version",
    "first_user_message",
    "agent_nickname",
    "agent_role",
    "memory_mode",
    "model",
    "reasoning_effort",
    "agent_path",
    "created_at_ms",
    "updated_at_ms",
    "thread_source",
    "preview",
    "recency_at",
    "recency_at_ms",
    "originator",
];

/// The optional columns a `threads` table has (a bit per entry of [`OPTIONAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadColumns(u32);

impl ThreadColumns {
    /// Every optional column (a harness-own DB, and what tests build by hand).
    pub const ALL: ThreadColumns = ThreadColumns((1 << OPTIONAL.len()) - 1);

    /// Reads the columns from the table's declared result shape. The statement is cached,
    /// so this is a hash lookup per call, not a `PRAGMA`.
    pub fn of(conn: &Connection) -> rusqlite::Result<ThreadColumns> {
        let stmt = conn.prepare_cached("SELECT * FROM threads LIMIT 0")?;
        let mut bits = 0;
        for name in stmt.column_names() {
            if let Some(i) = OPTIONAL.iter().position(|c| *c == name) {
                bits |= 1 << i;
            }
        }
        Ok(ThreadColumns(bits))
    }

    pub fn has(self, column: &str) -> bool {
        OPTIONAL
            .iter()
            .position(|c| *c == column)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// The optional columns that are present, in [`OPTIONAL`] order.
    pub fn present(self) -> impl Iterator<Item = &'static str> {
        OPTIONAL
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, c)| *c)
    }

    /// Every column the upsert writes, base first.
    pub fn writable(self) -> impl Iterator<Item = &'static str> {
        BASE.iter().copied().chain(self.present())
    }

    fn or(self, column: &str, fallback: &str) -> String {
        if self.has(column) {
            column.to_string()
        } else {
            fallback.to_string()
        }
    }

    fn ms_or_seconds(self, ms: &str, seconds: &str) -> String {
        if self.has(ms) {
            format!("COALESCE({ms}, {seconds} * 1000)")
        } else {
            format!("{seconds} * 1000")
        }
    }

    /// Creation time in ms (the `*_ms` column where it exists, else seconds × 1000).
    pub fn created_ms_expr(self) -> String {
        self.ms_or_seconds("created_at_ms", "created_at")
    }

    /// Update time in ms.
    pub fn updated_ms_expr(self) -> String {
        self.ms_or_seconds("updated_at_ms", "updated_at")
    }

    /// The select list `state::threads` decodes, with Codex's defaults for absent columns.
    pub fn select_list(self) -> String {
        [
            "id".to_string(),
            "rollout_path".to_string(),
            self.created_ms_expr(),
            self.updated_ms_expr(),
            "source".to_string(),
            "model_provider".to_string(),
            "cwd".to_string(),
            self.or("cli_version", "''"),
            "title".to_string(),
            self.or("first_user_message", "''"),
            "sandbox_policy".to_string(),
            "approval_mode".to_string(),
            "tokens_used".to_string(),
            "has_user_event".to_string(),
            "archived".to_string(),
            "archived_at".to_string(),
            "git_sha".to_string(),
            "git_branch".to_string(),
            "git_origin_url".to_string(),
            self.or("agent_nickname", "NULL"),
            self.or("agent_role", "NULL"),
            self.or("model", "NULL"),
            self.or("reasoning_effort", "NULL"),
            self.or("memory_mode", "'enabled'"),
            self.or("originator", "NULL"),
            self.or("agent_path", "NULL"),
            self.or("thread_source", "NULL"),
        ]
        .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_codex_table_reads_with_defaults_for_later_columns() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE threads (id TEXT, rollout_path TEXT, created_at INTEGER,
                updated_at INTEGER, cli_version TEXT, first_user_message TEXT)",
        )
        .unwrap();
        let cols = ThreadColumns::of(&conn).unwrap();
        assert!(cols.has("cli_version") && cols.has("first_user_message"));
        assert!(!cols.has("preview") && !cols.has("created_at_ms"));
        assert_eq!(cols.created_ms_expr(), "created_at * 1000");
        assert!(cols.select_list().contains("'enabled'"));
        assert!(!cols.writable().any(|c| c == "preview"));
    }

    #[test]
    fn all_has_every_optional_column() {
        assert_eq!(ThreadColumns::ALL.present().count(), OPTIONAL.len());
    }
}
