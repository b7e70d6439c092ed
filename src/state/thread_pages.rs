//! Keyset pages of `threads`, newest first by `(time in ms, id)`, read through the
//! indexes Codex itself creates, so a page costs the same at 1k rows as at 1M.
//!
//! The sort key is the `*_ms` column, or `seconds × 1000` where the row has no ms value (a
//! legacy row) or the table has no ms column (a DB from before Codex added it). The
//! expression `COALESCE(updated_at_ms, updated_at * 1000)` can use no index: every page
//! scanned and sorted the whole table. Here a page is read in two parts, each walking an
//! index in its order from a seek to the anchor, and the two are merged:
//!
//! - rows with an ms value, by `(x_at_ms DESC, id DESC)`: Codex's `idx_threads_x_at_ms`
//!   (0.169.0; a harness-own DB carries it too);
//! - rows without one, by `(x_at DESC, id DESC)` — the key's order, since seconds × 1000
//!   is monotone: Codex's `idx_threads_x_at` (every version) where the table has no ms
//!   column; where it has one, the rows are found by the ms index's NULL end (Codex's
//!   triggers fill the column, so these rows are few) and sorted.
//!
//! The anchor is the same `(key, id)` keyset as before: strictly older, or as old with a
//! smaller id; a timestamp-only anchor drops every row tying on it.

use rusqlite::types::Value;
use rusqlite::Connection;

use super::thread_columns::ThreadColumns;
use super::threads::{from_row, Anchor, SortKey};
use crate::thread::ThreadMetadata;

/// The two columns of a sort key: milliseconds (0.169.0) and seconds (every version).
fn columns(key: SortKey) -> (&'static str, &'static str) {
    match key {
        SortKey::Created => ("created_at_ms", "created_at"),
        SortKey::Updated => ("updated_at_ms", "updated_at"),
    }
}

/// The scope condition. Active threads are most of a home: `+archived` keeps the planner
/// off `idx_threads_archived` (which would fetch every active row and sort them all) and
/// on the sort index. The archived scope names `archived = 1` plainly, so Codex's partial
/// archive indexes (`… WHERE archived = 1`, 0.169.0) qualify.
fn scope(archived: bool) -> &'static str {
    if archived {
        "archived = 1"
    } else {
        "+archived = 0"
    }
}

/// One part of a page: the SQL for rows whose key is held by `part`, with the keyset
/// condition written so the index can seek to the anchor. Placeholders: ?1 limit, ?2
/// anchor ms, ?3 anchor id, the extra condition's from ?5 (?4 is never used: the
/// caller's numbering).
fn part_sql(
    columns: ThreadColumns,
    archived: bool,
    key: SortKey,
    anchor: Option<Anchor>,
    with_ms: bool,
    extra: &str,
) -> String {
    let (ms, secs) = self::columns(key);
    let has_ms = columns.has(ms);
    let (order, presence, after) = if with_ms {
        let after = match anchor {
            None => String::new(),
            Some(Anchor { id: Some(_), .. }) => {
                format!(" AND {ms} <= ?2 AND ({ms} < ?2 OR id < ?3)")
            }
            Some(Anchor { id: None, .. }) => format!(" AND {ms} < ?2"),
        };
        (ms, format!(" AND {ms} IS NOT NULL"), after)
    } else {
        // `secs <= ?2 / 1000` is the seek (integer division rounds toward zero, so for a
        // negative anchor the bound is looser, never tighter); the exact test follows.
        let after = match anchor {
            None => String::new(),
            Some(Anchor { id: Some(_), .. }) => format!(
                " AND {secs} <= ?2 / 1000 AND ({secs} * 1000 < ?2 OR ({secs} * 1000 = ?2 AND id < ?3))"
            ),
            Some(Anchor { id: None, .. }) => {
                format!(" AND {secs} <= ?2 / 1000 AND {secs} * 1000 < ?2")
            }
        };
        let presence = if has_ms {
            format!(" AND {ms} IS NULL")
        } else {
            String::new()
        };
        (secs, presence, after)
    };
    format!(
        "SELECT {} FROM threads WHERE {}{presence}{after}{extra} \
         ORDER BY {order} DESC, id DESC LIMIT ?1",
        columns.select_list(),
        scope(archived),
    )
}

/// The SQL statements of one page: the ms part (when the table has the column) and the
/// seconds part. Public for the query-plan test.
pub fn page_statements(
    columns: ThreadColumns,
    archived: bool,
    key: SortKey,
    anchor: Option<Anchor>,
    extra: &str,
) -> Vec<String> {
    let (ms, _) = self::columns(key);
    let mut parts = Vec::with_capacity(2);
    if columns.has(ms) {
        parts.push(part_sql(columns, archived, key, anchor, true, extra));
    }
    parts.push(part_sql(columns, archived, key, anchor, false, extra));
    parts
}

/// Up to `limit` rows after `anchor`, newest first, ordered by `(key, id)` descending,
/// with an extra condition (`AND …`, placeholders from `?5`) and its values.
pub fn page_where(
    conn: &Connection,
    archived: bool,
    key: SortKey,
    anchor: Option<Anchor>,
    limit: usize,
    (extra, extra_values): (&str, Vec<Value>),
) -> rusqlite::Result<Vec<ThreadMetadata>> {
    let columns = ThreadColumns::of(conn)?;
    let (ts, id) = match anchor {
        Some(a) => (
            Value::Integer(a.ts_ms),
            a.id.map_or(Value::Null, |i| Value::Text(i.to_string())),
        ),
        None => (Value::Null, Value::Null),
    };
    let mut values = vec![Value::Integer(limit as i64), ts, id, Value::Null];
    values.extend(extra_values);
    let mut merged: Vec<ThreadMetadata> = Vec::new();
    for sql in page_statements(columns, archived, key, anchor, extra) {
        let mut stmt = conn.prepare_cached(&sql)?;
        // Bind by number: a statement uses only some of them (no anchor, no filter).
        let used = stmt.parameter_count();
        for (i, value) in values.iter().enumerate().take(used) {
            stmt.raw_bind_parameter(i + 1, value)?;
        }
        let mut rows = Vec::new();
        let mut cursor = stmt.raw_query();
        while let Some(row) = cursor.next()? {
            rows.push(from_row(row)?);
        }
        merged = merge(merged, rows, key, limit);
    }
    Ok(merged)
}

/// Two lists each newest first by `(key, id)`, merged in that order and cut at `limit`.
fn merge(
    a: Vec<ThreadMetadata>,
    b: Vec<ThreadMetadata>,
    key: SortKey,
    limit: usize,
) -> Vec<ThreadMetadata> {
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(limit.min(a.len() + b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while out.len() < limit {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => (key.of(x), x.id) > (key.of(y), y.id),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::state::schema::migrate;
    use crate::state::threads::{page, upsert};
    use crate::variant::Variant;
    use uuid::Uuid;

    /// A harness-own DB (Codex's ms indexes) with `n` rows: times tie in threes, every
    /// fifth row archived, every seventh a legacy row (ms columns NULL, seconds only).
    fn db(n: usize) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state_5.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path, Variant::default()).unwrap();
        for i in 0..n {
            let id = Uuid::from_u128(
                0x0193_f29c_8b7a_7000_8000_0000_0000_0000 + (i as u128 * 7919) % 1000,
            );
            let mut m = ThreadMetadata::new(
                id,
                PathBuf::from(format!("/r/{i}.jsonl")),
                1_700_000_000_000 + (i as i64 / 3) * 1000 + 500 * (i as i64 % 2),
            );
            m.updated_at_ms = 1_800_000_000_000 - (i as i64 / 3) * 1500;
            if i % 5 == 0 {
                m.archived_at_ms = Some(m.updated_at_ms);
            }
            upsert(&conn, &m).unwrap();
        }
        conn.execute_batch(
            "UPDATE threads SET created_at_ms = NULL, updated_at_ms = NULL
             WHERE rowid % 7 = 0",
        )
        .unwrap();
        (dir, conn)
    }

    /// The listing's order, computed by hand from every row.
    fn oracle(conn: &Connection, archived: bool, key: SortKey) -> Vec<(i64, Uuid)> {
        let mut rows: Vec<(i64, Uuid)> = crate::state::threads::all(conn)
            .unwrap()
            .into_iter()
            .filter(|m| m.is_archived() == archived)
            .map(|m| (key.of(&m), m.id))
            .collect();
        rows.sort_by(|a, b| b.cmp(a));
        rows
    }

    /// Pages of `size` through the keyset anchor (strong or timestamp-only).
    fn walk(
        conn: &Connection,
        archived: bool,
        key: SortKey,
        size: usize,
        strong: bool,
    ) -> Vec<(i64, Uuid)> {
        let mut anchor = None;
        let mut out = Vec::new();
        for _ in 0..1000 {
            let rows = page(conn, archived, key, anchor, size).unwrap();
            let Some(last) = rows.last() else { return out };
            anchor = Some(Anchor {
                ts_ms: key.of(last),
                id: strong.then_some(last.id),
            });
            out.extend(rows.iter().map(|m| (key.of(m), m.id)));
        }
        panic!("no end");
    }

    #[test]
    fn pages_keep_the_key_order_with_legacy_rows_and_ties() {
        let (_dir, conn) = db(60);
        let legacy: i64 = conn
            .query_row(
                "SELECT count(*) FROM threads WHERE updated_at_ms IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(legacy > 0);
        for archived in [false, true] {
            for key in [SortKey::Updated, SortKey::Created] {
                let want = oracle(&conn, archived, key);
                for size in [1, 4, 25] {
                    assert_eq!(
                        walk(&conn, archived, key, size, true),
                        want,
                        "{archived} {key:?} {size}"
                    );
                }
                // The timestamp-only anchor drops exactly the rows tying with a page's
                // last row: the same walk over the hand-sorted rows.
                let mut weak_want = Vec::new();
                let mut rest = want.as_slice();
                while !rest.is_empty() {
                    let taken = &rest[..rest.len().min(2)];
                    weak_want.extend_from_slice(taken);
                    let last = taken[taken.len() - 1].0;
                    rest = &rest[rest.iter().take_while(|r| r.0 >= last).count()..];
                }
                assert!(
                    archived || weak_want.len() < want.len(),
                    "no tie was dropped"
                );
                assert_eq!(walk(&conn, archived, key, 2, false), weak_want);
            }
        }
    }

    /// The plan of every statement of a page: no sort of the table, no scan of it.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            out.push(row.get::<_, String>(3).unwrap());
        }
        out.join("; ")
    }

    /// Every step reads `threads` through an index (a `SCAN … USING INDEX` walks it in
    /// order and stops at the limit) and nothing is sorted afterwards.
    fn walks_an_index(plan: &str) -> bool {
        !plan.contains("TEMP B-TREE") && plan.split("; ").all(|step| step.contains("USING INDEX"))
    }

    #[test]
    fn a_page_walks_an_index_and_the_old_query_did_not() {
        let (_dir, conn) = db(0);
        let columns = ThreadColumns::of(&conn).unwrap();
        let anchor = Anchor {
            ts_ms: 1_800_000_000_000,
            id: Some(Uuid::nil()),
        };
        for key in [SortKey::Updated, SortKey::Created] {
            for anchor in [None, Some(anchor)] {
                // The ms part carries every row Codex writes; the legacy part reads the
                // ms index's NULL end.
                let parts = page_statements(columns, false, key, anchor, " AND +source IN (?5)");
                let main = plan(&conn, &parts[0]);
                assert!(walks_an_index(&main), "{key:?}: {main}");
                assert!(
                    plan(&conn, &parts[1]).contains("USING INDEX"),
                    "{}",
                    parts[1]
                );
            }
        }
        // The query this replaced: ordered by the COALESCE expression, it sorts the table.
        let col = SortKey::Updated.column(columns);
        let old = plan(
            &conn,
            &format!(
                "SELECT id FROM threads WHERE archived = 0 ORDER BY {col} DESC, id DESC LIMIT 26"
            ),
        );
        assert!(!walks_an_index(&old), "{old}");
    }

    #[test]
    fn a_table_without_ms_columns_walks_codexs_seconds_index() {
        // Codex 0.120.0's table and indexes (migration 0001).
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE threads (id TEXT PRIMARY KEY, rollout_path TEXT NOT NULL,
                created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, source TEXT NOT NULL,
                model_provider TEXT NOT NULL, cwd TEXT NOT NULL, title TEXT NOT NULL,
                sandbox_policy TEXT NOT NULL, approval_mode TEXT NOT NULL,
                tokens_used INTEGER NOT NULL DEFAULT 0, has_user_event INTEGER NOT NULL DEFAULT 0,
                archived INTEGER NOT NULL DEFAULT 0, archived_at INTEGER, git_sha TEXT,
                git_branch TEXT, git_origin_url TEXT);
             CREATE INDEX idx_threads_created_at ON threads(created_at DESC, id DESC);
             CREATE INDEX idx_threads_updated_at ON threads(updated_at DESC, id DESC);
             CREATE INDEX idx_threads_archived ON threads(archived);
             CREATE INDEX idx_threads_source ON threads(source);
             CREATE INDEX idx_threads_provider ON threads(model_provider);",
        )
        .unwrap();
        let columns = ThreadColumns::of(&conn).unwrap();
        let anchor = Some(Anchor {
            ts_ms: 1_800_000_000_500,
            id: None,
        });
        for key in [SortKey::Updated, SortKey::Created] {
            let parts =
                page_statements(columns, false, key, anchor, " AND +model_provider IN (?5)");
            assert_eq!(parts.len(), 1);
            let p = plan(&conn, &parts[0]);
            assert!(walks_an_index(&p), "{key:?}: {p}");
        }
    }
}
