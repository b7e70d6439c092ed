//! The `threads` table: upsert, insert-if-absent, point lookups, compare-and-swap of the
//! rollout path, delete, keyset pages and full dumps.
//!
//! Every function takes a connection or transaction so callers choose the transaction
//! boundary (a backfill batch, a repair); `StateRuntime` convenience wrappers open one.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use rusqlite::types::Value;

use super::error::StateError;
use super::runtime::StateRuntime;
use super::thread_columns::ThreadColumns;
use crate::thread::{ThreadMetadata, DEFAULT_MEMORY_MODE};

pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<ThreadMetadata> {
    let id_text: String = row.get(0)?;
    let id = Uuid::parse_str(&id_text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let archived: bool = row.get(14)?;
    let archived_at_s: Option<i64> = row.get(15)?;
    let updated_at_ms: i64 = row.get(3)?;
    Ok(ThreadMetadata {
        id,
        rollout_path: PathBuf::from(row.get::<_, String>(1)?),
        created_at_ms: row.get(2)?,
        updated_at_ms,
        source: row.get(4)?,
        model_provider: row.get(5)?,
        cwd: row.get(6)?,
        cli_version: row.get(7)?,
        title: row.get(8)?,
        first_user_message: row.get(9)?,
        sandbox_policy: row.get(10)?,
        approval_mode: row.get(11)?,
        tokens_used: row.get(12)?,
        has_user_event: row.get(13)?,
        archived_at_ms: if archived {
            Some(archived_at_s.map(|s| s * 1000).unwrap_or(updated_at_ms))
        } else {
            None
        },
        git_sha: row.get(16)?,
        git_branch: row.get(17)?,
        git_origin_url: row.get(18)?,
        agent_nickname: row.get(19)?,
        agent_role: row.get(20)?,
        model: row.get(21)?,
        reasoning_effort: row.get(22)?,
        memory_mode: row.get(23)?,
        originator: row.get(24)?,
        agent_path: row.get(25)?,
        thread_source: row.get(26)?,
    })
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Codex's upsert: overwrite every metadata column except `memory_mode` (creation value
/// only), keep existing non-null git fields, and keep an existing explicit title (one that
/// differs from the first user message) when the new title is empty or just the first
/// user message. Writes only the columns the table has (see [`ThreadColumns`]).
pub fn upsert(conn: &Connection, m: &ThreadMetadata) -> rusqlite::Result<()> {
    let cols = ThreadColumns::of(conn)?;
    let names: Vec<&str> = cols.writable().collect();
    let values: Vec<Value> = names.iter().map(|c| column_value(m, c)).collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = names
        .iter()
        .filter(|c| !matches!(**c, "id" | "memory_mode"))
        .map(|c| format!("{c} = {}", update_expr(c, cols)))
        .collect();
    let sql = format!(
        "INSERT INTO threads ({}) VALUES ({}) ON CONFLICT(id) DO UPDATE SET {}",
        names.join(", "),
        placeholders.join(", "),
        updates.join(", ")
    );
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// What the upsert does to an existing row's column.
fn update_expr(column: &str, cols: ThreadColumns) -> String {
    match column {
        "title" if cols.has("first_user_message") => "CASE
                WHEN threads.title <> '' AND threads.title <> threads.first_user_message
                     AND (excluded.title = '' OR excluded.title = excluded.first_user_message)
                THEN threads.title ELSE excluded.title END"
            .to_string(),
        "git_sha" | "git_branch" | "git_origin_url" => {
            format!("COALESCE(threads.{column}, excluded.{column})")
        }
        other => format!("excluded.{other}"),
    }
}

/// The stored value of one column, in the forms Codex writes (seconds columns derived from
/// the ms values, `archived` from `archived_at`, preview = first user message, recency =
/// update time).
fn column_value(m: &ThreadMetadata, column: &str) -> Value {
    fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }
    fn opt(s: &Option<String>) -> Value {
        s.as_deref().map_or(Value::Null, text)
    }
    match column {
        "id" => text(&m.id.to_string()),
        "rollout_path" => text(&path_text(&m.rollout_path)),
        "created_at" => Value::Integer(m.created_at_ms.div_euclid(1000)),
        "updated_at" | "recency_at" => Value::Integer(m.updated_at_ms.div_euclid(1000)),
        "created_at_ms" => Value::Integer(m.created_at_ms),
        "updated_at_ms" | "recency_at_ms" => Value::Integer(m.updated_at_ms),
        "source" => text(&m.source),
        "model_provider" => text(&m.model_provider),
        "cwd" => text(&m.cwd),
        "cli_version" => text(&m.cli_version),
        "title" => text(&m.title),
        "first_user_message" | "preview" => text(&m.first_user_message),
        "sandbox_policy" => text(&m.sandbox_policy),
        "approval_mode" => text(&m.approval_mode),
        "tokens_used" => Value::Integer(m.tokens_used),
        "has_user_event" => Value::Integer(m.has_user_event.into()),
        "archived" => Value::Integer(m.is_archived().into()),
        "archived_at" => m
            .archived_at_ms
            .map_or(Value::Null, |ms| Value::Integer(ms.div_euclid(1000))),
        "git_sha" => opt(&m.git_sha),
        "git_branch" => opt(&m.git_branch),
        "git_origin_url" => opt(&m.git_origin_url),
        "agent_nickname" => opt(&m.agent_nickname),
        "agent_role" => opt(&m.agent_role),
        "model" => opt(&m.model),
        "reasoning_effort" => opt(&m.reasoning_effort),
        "memory_mode" => text(m.memory_mode.as_deref().unwrap_or(DEFAULT_MEMORY_MODE)),
        "agent_path" => opt(&m.agent_path),
        "thread_source" => opt(&m.thread_source),
        "originator" => opt(&m.originator),
        other => unreachable!("threads column {other} has no value mapping"),
    }
}

/// Inserts the row only if no row with that id exists; returns whether it inserted.
pub fn insert_if_absent(conn: &Connection, m: &ThreadMetadata) -> rusqlite::Result<bool> {
    let exists: bool = conn
        .prepare_cached("SELECT 1 FROM threads WHERE id = ?1")?
        .query_row([m.id.to_string()], |_| Ok(true))
        .optional()?
        .unwrap_or(false);
    if exists {
        return Ok(false);
    }
    upsert(conn, m)?;
    Ok(true)
}

pub fn get(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<ThreadMetadata>> {
    let cols = ThreadColumns::of(conn)?.select_list();
    conn.prepare_cached(&format!("SELECT {cols} FROM threads WHERE id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()
}

/// Compare-and-swap of the rollout path (and the archived flag that follows the root the
/// file lives in): writes only if the row still holds `expected`. Returns whether it wrote.
pub fn cas_rollout_path(
    conn: &Connection,
    id: Uuid,
    expected: &Path,
    new_path: &Path,
    archived_at_ms: Option<i64>,
) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE threads SET rollout_path = ?3, archived = ?4,
                archived_at = CASE WHEN ?4 = 0 THEN NULL ELSE COALESCE(archived_at, ?5) END
             WHERE id = ?1 AND rollout_path = ?2",
        )?
        .execute(params![
            id.to_string(),
            path_text(expected),
            path_text(new_path),
            archived_at_ms.is_some(),
            archived_at_ms.map(|ms| ms.div_euclid(1000)),
        ])?;
    Ok(n == 1)
}

pub fn delete(conn: &Connection, id: Uuid) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM threads WHERE id = ?1")?
        .execute([id.to_string()])?
        == 1)
}

/// Sort key of a listing.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Created,
    #[default]
    Updated,
}

impl SortKey {
    /// The sort expression on a table with `columns`.
    pub fn column(self, columns: ThreadColumns) -> String {
        match self {
            SortKey::Created => columns.created_ms_expr(),
            SortKey::Updated => columns.updated_ms_expr(),
        }
    }
    pub fn of(self, m: &ThreadMetadata) -> i64 {
        match self {
            SortKey::Created => m.created_at_ms,
            SortKey::Updated => m.updated_at_ms,
        }
    }
}

/// Keyset anchor: the last item of the previous page. `id = None` is a timestamp-only
/// anchor (Codex's weak form, which drops rows tying on the timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub ts_ms: i64,
    pub id: Option<Uuid>,
}

/// Up to `limit` rows after `anchor`, newest first, ordered by `(key, id)` descending,
/// read through Codex's indexes (see [`super::thread_pages`]).
pub fn page(
    conn: &Connection,
    archived: bool,
    key: SortKey,
    anchor: Option<Anchor>,
    limit: usize,
) -> rusqlite::Result<Vec<ThreadMetadata>> {
    super::thread_pages::page_where(conn, archived, key, anchor, limit, ("", Vec::new()))
}

/// Every row, by id (oracle and snapshots).
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<ThreadMetadata>> {
    let cols = ThreadColumns::of(conn)?.select_list();
    conn.prepare_cached(&format!("SELECT {cols} FROM threads ORDER BY id"))?
        .query_map([], from_row)?
        .collect()
}

pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM threads", [], |r| r.get(0))
}

/// Convenience wrappers that open their own transaction on the runtime.
impl StateRuntime {
    /// Codex's runtime upsert: `updated_at_ms` goes through the process's unique
    /// millisecond allocation first (see [`StateRuntime::allocate_updated_at_ms`]).
    pub fn upsert_thread(&self, m: &ThreadMetadata) -> Result<(), StateError> {
        let mut m = m.clone();
        m.updated_at_ms = self.allocate_updated_at_ms(m.updated_at_ms)?;
        self.write("upsert_thread", |tx| {
            upsert(tx, &m).map_err(self.err("upsert_thread"))
        })
    }

    pub fn get_thread(&self, id: Uuid) -> Result<Option<ThreadMetadata>, StateError> {
        self.read("get_thread", |c| get(c, id))
    }

    pub fn delete_thread(&self, id: Uuid) -> Result<bool, StateError> {
        self.write("delete_thread", |tx| {
            delete(tx, id).map_err(self.err("delete_thread"))
        })
    }

    pub fn all_threads(&self) -> Result<Vec<ThreadMetadata>, StateError> {
        self.read("all_threads", all)
    }

    pub fn thread_count(&self) -> Result<i64, StateError> {
        self.read("thread_count", count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A table without `first_user_message` (the title rule compares against it; an older
    /// Codex's) takes upserts, the later one's title winning. Catches the rule used where
    /// the column is missing ("no such column").
    #[test]
    fn a_table_without_first_user_message_takes_upserts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state_5.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        crate::state::schema::migrate(&mut conn, &path, crate::variant::Variant::default())
            .unwrap();
        conn.execute_batch("ALTER TABLE threads DROP COLUMN first_user_message")
            .unwrap();
        assert!(!ThreadColumns::of(&conn).unwrap().has("first_user_message"));
        let id = Uuid::from_u128(0x0193_f29c_8b7a_7000_8000_0000_0000_0001);
        let mut m = ThreadMetadata::new(id, PathBuf::from("/r/a.jsonl"), 1_700_000_000_000);
        m.title = "first".into();
        upsert(&conn, &m).unwrap();
        m.title = "renamed".into();
        upsert(&conn, &m).unwrap();
        let title: String = conn
            .query_row("SELECT title FROM threads", [], |r| r.get(0))
            .unwrap();
        assert_eq!(title, "renamed");
    }
}
