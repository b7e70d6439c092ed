//! Oracles: end-of-scenario (or `check` step) judgements of the DB against the files and
//! against its own write log, each computed here from what is on disk, never from the
//! reference's own readers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::expect::show_opt;
use crate::faults::HomeModel;
use crate::observe::lease;
use crate::observe::writes::WriteLog;
use crate::observe::{Census, ObservedScope};
use crate::scenario::model::Oracle;

/// Runs an oracle. `status` is the DB's backfill status (None: unreadable), `writes` the
/// DB's write log (`observe::writes`).
pub fn run_oracle(
    oracle: Oracle,
    home: &HomeModel,
    status: Option<&str>,
    writes: &Result<WriteLog, String>,
) -> Vec<String> {
    match oracle {
        Oracle::DamagedDbKept => damaged_db_kept(home),
        Oracle::OneBackfillRun => one_backfill_run(writes),
        Oracle::NoDbFile => {
            if home.db_path().exists() {
                vec![format!(
                    "expected no db file, but {} exists",
                    home.db_path().display()
                )]
            } else {
                vec![]
            }
        }
        Oracle::BackfillComplete => match status {
            Some("complete") => vec![],
            other => vec![format!(
                "expected backfill status complete, got {}",
                show_opt(&other)
            )],
        },
        Oracle::IndexMatchesFiles => index_matches_files(home),
    }
}

/// Exactly one write of the code under test marked the backfill complete.
fn one_backfill_run(writes: &Result<WriteLog, String>) -> Vec<String> {
    let log = match writes {
        Ok(log) => log,
        Err(why) => {
            return vec![format!(
                "one_backfill_run: the backfill writes could not be observed: {why}"
            )]
        }
    };
    let done = lease::completions(log);
    if done.len() == 1 {
        return vec![];
    }
    let which: Vec<String> = done.iter().map(|e| lease::label(log, e)).collect();
    vec![format!(
        "expected exactly one completed backfill, got {} ({})",
        done.len(),
        which.join(", ")
    )]
}

/// A file the oracle counts as a rollout: `rollout-*.jsonl`, plain or zstd-compressed
/// (Codex's naming; restated here so the oracle does not share the reference's walker).
fn is_rollout(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".zst").unwrap_or(name);
    name.starts_with("rollout-") && name.ends_with(".jsonl")
}

/// One `threads` row as the oracle reads it, with its own SQL.
struct IndexRow {
    id: String,
    path: PathBuf,
    archived: bool,
}

fn read_index(db: &Path) -> Result<Vec<IndexRow>, String> {
    if !db.is_file() {
        return Ok(Vec::new());
    }
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", db.display()))?;
    c.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let mut stmt = c
        .prepare("SELECT id, rollout_path, archived FROM threads ORDER BY id")
        .map_err(|e| format!("cannot read threads of {}: {e}", db.display()))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(IndexRow {
                id: r.get(0)?,
                path: PathBuf::from(r.get::<_, String>(1)?),
                archived: r.get::<_, i64>(2)? != 0,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read threads of {}: {e}", db.display()))?;
    Ok(rows)
}

/// An id in one spelling (a UUID's canonical form; anything else as written).
fn key(id: &str) -> String {
    uuid::Uuid::parse_str(id).map_or_else(|_| id.to_string(), |u| u.to_string())
}

fn scope_of(home: &Path, path: &Path) -> Option<ObservedScope> {
    [ObservedScope::Active, ObservedScope::Archived]
        .into_iter()
        .find(|s| path.starts_with(home.join(s.dir_name())))
}

/// The DB's rows against an index rebuilt from the files by the harness's own walker
/// (`Census`) and head reader: every rollout has a row pointing at it (or at another file
/// claiming the same id), with the archived flag of its root; no row points at a missing
/// file or at one whose head claims another id.
fn index_matches_files(home: &HomeModel) -> Vec<String> {
    let rows = match read_index(&home.db_path()) {
        Ok(rows) => rows,
        Err(e) => return vec![format!("oracle: {e}")],
    };
    let census = Census::take(&home.codex_home);
    let mut expected: BTreeMap<String, Vec<(&Path, ObservedScope)>> = BTreeMap::new();
    for e in census.entries.iter().filter(|e| is_rollout(&e.path)) {
        if let Some(id) = &e.claimed_id {
            expected
                .entry(key(id))
                .or_default()
                .push((&e.path, e.scope));
        }
    }
    let name = |id: &str| {
        uuid::Uuid::parse_str(id)
            .ok()
            .and_then(|u| home.alias_of(u))
            .map_or_else(|| id.to_string(), String::from)
    };
    let by_id: BTreeMap<String, &IndexRow> = rows.iter().map(|r| (key(&r.id), r)).collect();
    let mut f = Vec::new();
    for (id, files) in &expected {
        match by_id.get(id) {
            None => f.push(format!("oracle: {} has a rollout but no row", name(id))),
            Some(row) => match files.iter().find(|(p, _)| *p == row.path) {
                None => f.push(format!(
                    "oracle: row {} points at {}, but its rollout is {}",
                    name(id),
                    home.relative(&row.path),
                    home.relative(files[0].0)
                )),
                Some((_, scope)) => {
                    if row.archived != (*scope == ObservedScope::Archived) {
                        f.push(format!(
                            "oracle: row {} says archived = {}, but its rollout is under {}",
                            name(id),
                            row.archived,
                            scope.dir_name()
                        ));
                    }
                }
            },
        }
    }
    for row in &rows {
        if expected.contains_key(&key(&row.id)) {
            continue;
        }
        let why = if row.path.is_file() {
            "a file that does not verify as that thread"
        } else {
            "a missing file"
        };
        let under = scope_of(&home.codex_home, &row.path)
            .map_or("outside the home", ObservedScope::dir_name);
        f.push(format!(
            "oracle: row {} points at {} ({why}, {under})",
            name(&row.id),
            home.relative(&row.path)
        ));
    }
    f
}

/// A `state_5.sqlite.corrupt-*` file beside the DB holds exactly the damaged bytes.
fn damaged_db_kept(home: &HomeModel) -> Vec<String> {
    let Some(damaged) = &home.damaged_db else {
        return vec!["damaged_db_kept: no fault damaged the DB".into()];
    };
    let prefix = format!("{}.corrupt-", crate::state::STATE_DB_FILENAME);
    let kept = std::fs::read_dir(&home.sqlite_home)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| !e.file_name().to_string_lossy().ends_with("-wal"))
        .filter(|e| !e.file_name().to_string_lossy().ends_with("-shm"))
        .any(|e| std::fs::read(e.path()).is_ok_and(|b| &b == damaged));
    if kept {
        vec![]
    } else {
        vec![format!(
            "the damaged DB was not kept: no {prefix}* file in {} holds its bytes",
            home.sqlite_home.display()
        )]
    }
}

#[cfg(test)]
mod tests {
    /// The oracles judge with the harness's own readers: nothing here may come from the
    /// reference's rollout layer or its row decoding (a bug there would hide from them).
    #[test]
    fn the_oracles_use_no_reader_of_the_code_under_test() {
        let src = include_str!("oracles.rs");
        let code = &src[..src.find("#[cfg(test)]").unwrap()];
        for forbidden in [
            "crate::rollout",
            "crate::state::threads",
            "crate::state::backfill_state",
            "ThreadMetadata",
            "crate::lookup",
        ] {
            assert!(!code.contains(forbidden), "oracles.rs uses {forbidden}");
        }
    }
}
