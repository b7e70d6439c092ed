//! Salvage of DB-only values from a damaged state DB, and writing them back after the
//! index was rebuilt from the rollouts.
//!
//! The damaged file is never opened in place: it (and its `-wal`) are copied into a
//! scratch directory and the copy is read. Rows are read in rowid order forwards until a
//! damaged page stops the scan, then backwards from the end, so rows on either side of
//! the damage survive. Only values the rollouts cannot give back are kept.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use crate::state::StateDbHandle;

/// The DB-only values of one thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SalvagedThread {
    /// An explicit name (a title that is not just the first user message).
    pub title: Option<String>,
    pub memory_mode: Option<String>,
    pub git_sha: Option<String>,
    pub git_branch: Option<String>,
    pub git_origin_url: Option<String>,
    /// Codex's `threads.name` (0.169.0 and later), when set.
    pub name: Option<String>,
    /// Codex's `threads.is_pinned`, kept only when the thread is pinned.
    pub pinned: bool,
    /// Codex's section membership (`thread_section_id`, `section_position`,
    /// `section_entered_at_ms`): how the desktop app and `thread/list` show a pin.
    pub section: Option<SectionPlace>,
}

/// Where a thread sits in a section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SectionPlace {
    pub section_id: String,
    pub position: Option<i64>,
    pub entered_at_ms: Option<i64>,
}

/// A row of Codex's `thread_sections` (sections a user made, and the seeded `Pinned`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SalvagedSection {
    pub id: String,
    pub name: String,
    pub appearance: Option<String>,
}

/// Everything read from a damaged DB.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Salvaged {
    pub threads: BTreeMap<Uuid, SalvagedThread>,
    pub sections: Vec<SalvagedSection>,
    /// Rows that could be read at all.
    pub rows_read: usize,
}

/// Columns read when the damaged table has them (older DBs lack the later ones).
const WANTED: [&str; 13] = [
    "id",
    "title",
    "first_user_message",
    "memory_mode",
    "git_sha",
    "git_branch",
    "git_origin_url",
    "name",
    "is_pinned",
    "thread_section_id",
    "section_position",
    "section_entered_at_ms",
    "rowid",
];

/// The columns of `table` in `conn` (from the schema only; no data page is read).
fn columns_of(conn: &Connection, table: &str) -> Vec<String> {
    conn.prepare(&format!("SELECT * FROM {table} LIMIT 0"))
        .map(|stmt| stmt.column_names().iter().map(|c| c.to_string()).collect())
        .unwrap_or_default()
}

/// Reads what it can from a copy of the damaged DB at `backup`; never fails.
pub fn salvage(backup: &Path) -> Salvaged {
    let mut out = Salvaged::default();
    let Ok(scratch) = tempfile::tempdir() else {
        return out;
    };
    let copy = scratch.path().join("damaged.sqlite");
    if std::fs::copy(backup, &copy).is_err() {
        return out;
    }
    let wal = format!("{}-wal", backup.display());
    if Path::new(&wal).exists() {
        let _ = std::fs::copy(&wal, format!("{}-wal", copy.display()));
    }
    let Ok(conn) = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE) else {
        return out;
    };
    out.sections = salvage_sections(&conn);
    let present = columns_of(&conn, "threads");
    // Every wanted column, as itself when the table has it, else NULL: the row decoder
    // reads fixed positions.
    let select: Vec<String> = WANTED
        .iter()
        .map(|c| {
            if *c == "rowid" || present.iter().any(|p| p == c) {
                c.to_string()
            } else {
                format!("NULL AS {c}")
            }
        })
        .collect();
    let select = select.join(", ");
    let mut seen = std::collections::BTreeSet::new();
    for order in ["ASC", "DESC"] {
        let sql = format!("SELECT {select} FROM threads ORDER BY rowid {order}");
        let Ok(mut stmt) = conn.prepare(&sql) else {
            return out;
        };
        let Ok(mut rows) = stmt.query([]) else {
            continue;
        };
        // A damaged page ends the scan in this direction; what was read stays.
        while let Ok(Some(row)) = rows.next() {
            let Ok(rowid) = row.get::<_, i64>(12) else {
                break;
            };
            if !seen.insert(rowid) {
                break;
            }
            out.rows_read += 1;
            if let Some((id, thread)) = decode(row) {
                out.threads.insert(id, thread);
            }
        }
    }
    out
}

/// The DB-only values of one row in `WANTED` order; `None` when it holds none.
fn decode(row: &rusqlite::Row<'_>) -> Option<(Uuid, SalvagedThread)> {
    let text = |i: usize| row.get::<_, Option<String>>(i).ok().flatten();
    let int = |i: usize| row.get::<_, Option<i64>>(i).ok().flatten();
    let id = text(0).and_then(|t| Uuid::parse_str(&t).ok())?;
    let title = text(1).filter(|t| !t.is_empty() && Some(t) != text(2).as_ref());
    let thread = SalvagedThread {
        title,
        memory_mode: text(3).filter(|m| m != crate::thread::DEFAULT_MEMORY_MODE),
        git_sha: text(4),
        git_branch: text(5),
        git_origin_url: text(6),
        name: text(7).filter(|n| !n.is_empty()),
        pinned: int(8) == Some(1),
        section: text(9).map(|section_id| SectionPlace {
            section_id,
            position: int(10),
            entered_at_ms: int(11),
        }),
    };
    (thread != SalvagedThread::default()).then_some((id, thread))
}

fn salvage_sections(conn: &Connection) -> Vec<SalvagedSection> {
    let present = columns_of(conn, "thread_sections");
    if !present.iter().any(|c| c == "id") {
        return Vec::new();
    }
    let appearance = if present.iter().any(|c| c == "appearance") {
        "appearance"
    } else {
        "NULL"
    };
    let Ok(mut stmt) = conn.prepare(&format!(
        "SELECT id, name, {appearance} FROM thread_sections ORDER BY rowid"
    )) else {
        return Vec::new();
    };
    let Ok(mut rows) = stmt.query([]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Ok(Some(row)) = rows.next() {
        if let (Ok(id), Ok(name)) = (row.get::<_, String>(0), row.get::<_, String>(1)) {
            out.push(SalvagedSection {
                id,
                name,
                appearance: row.get::<_, Option<String>>(2).ok().flatten(),
            });
        }
    }
    out
}

/// Writes salvaged values onto the rebuilt rows: explicit names, Codex's `name`, pins and
/// section places, and memory modes replace what the rollouts gave; git fields fill only
/// what is still empty. A value goes only where the rebuilt table has its column (a fresh
/// Codex-made DB has them all; a harness-own test DB has no `name` or pin columns), and
/// the sections a thread sits in are carried first. Returns the number of rows updated;
/// errors are logged (the rebuilt index stands either way).
pub fn carry_over(rt: &StateDbHandle, salvaged: &Salvaged) -> usize {
    if !rt.context().decisions().recovery_carries_over() || salvaged.threads.is_empty() {
        return 0;
    }
    let result = rt.write("carry over salvaged values", |tx| {
        let err = rt.err("carry over salvaged values");
        let has = {
            let cols = columns_of(tx, "threads");
            move |c: &str| cols.iter().any(|p| p == c)
        };
        if has("thread_section_id") && !salvaged.sections.is_empty() {
            carry_sections(tx, &salvaged.sections).map_err(&err)?;
        }
        let mut n = 0;
        for (id, t) in &salvaged.threads {
            let mut sets = vec![
                "title = COALESCE(?, title)",
                "memory_mode = COALESCE(?, memory_mode)",
                "git_sha = COALESCE(git_sha, ?)",
                "git_branch = COALESCE(git_branch, ?)",
                "git_origin_url = COALESCE(git_origin_url, ?)",
            ];
            let mut values: Vec<Value> = vec![
                opt_text(&t.title),
                opt_text(&t.memory_mode),
                opt_text(&t.git_sha),
                opt_text(&t.git_branch),
                opt_text(&t.git_origin_url),
            ];
            if has("name") {
                sets.push("name = COALESCE(?, name)");
                values.push(opt_text(&t.name));
            }
            if has("is_pinned") && t.pinned {
                sets.push("is_pinned = 1");
            }
            if let Some(place) = t.section.as_ref().filter(|_| has("thread_section_id")) {
                sets.push("thread_section_id = ?");
                values.push(Value::Text(place.section_id.clone()));
                for (column, v) in [
                    ("section_position", place.position),
                    ("section_entered_at_ms", place.entered_at_ms),
                ] {
                    if has(column) {
                        sets.push(if column == "section_position" {
                            "section_position = ?"
                        } else {
                            "section_entered_at_ms = ?"
                        });
                        values.push(v.map_or(Value::Null, Value::Integer));
                    }
                }
            }
            values.push(Value::Text(id.to_string()));
            let sql = format!("UPDATE threads SET {} WHERE id = ?", sets.join(", "));
            n += tx
                .execute(&sql, rusqlite::params_from_iter(values))
                .map_err(&err)?;
        }
        Ok(n)
    });
    match result {
        Ok(n) => n,
        Err(err) => {
            tracing::warn!("could not carry salvaged values into the rebuilt state db: {err}");
            0
        }
    }
}

fn opt_text(v: &Option<String>) -> Value {
    v.clone().map_or(Value::Null, Value::Text)
}

/// Recreates the salvaged sections the rebuilt DB lacks (the seeded `Pinned` one is
/// already there and is left as Codex made it).
fn carry_sections(tx: &Connection, sections: &[SalvagedSection]) -> rusqlite::Result<()> {
    let with_appearance = columns_of(tx, "thread_sections")
        .iter()
        .any(|c| c == "appearance");
    for s in sections {
        if with_appearance {
            tx.execute(
                "INSERT OR IGNORE INTO thread_sections (id, name, appearance) VALUES (?1, ?2, ?3)",
                rusqlite::params![s.id, s.name, s.appearance],
            )?;
        } else {
            tx.execute(
                "INSERT OR IGNORE INTO thread_sections (id, name) VALUES (?1, ?2)",
                rusqlite::params![s.id, s.name],
            )?;
        }
    }
    Ok(())
}
