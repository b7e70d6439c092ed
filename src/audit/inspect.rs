//! Gathering the facts (rows, verified files by id, unreadable heads, hidden rows, backfill
//! state) and turning them into findings. Reads only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use uuid::Uuid;

use super::{AuditError, AuditReport, Finding};
use crate::rollout::head::read_session_meta_head;
use crate::rollout::layout::{root_of, Root};
use crate::rollout::search::collect_rollout_files;
use crate::state::backfill_state::{self, BackfillStatus};
use crate::state::thread_columns::ThreadColumns;
use crate::state::threads;
use crate::thread::ThreadMetadata;

/// What the DB and the files hold.
pub(crate) struct Facts {
    pub rows: Vec<ThreadMetadata>,
    /// Files whose head verifies, by the id in the head.
    pub files: BTreeMap<Uuid, Vec<(PathBuf, Root)>>,
    pub unverifiable: Vec<(PathBuf, String)>,
    /// Rows with an empty preview but a first user message.
    pub hidden: Vec<Uuid>,
    pub rollouts: usize,
}

impl Facts {
    /// The one verified file of `id` in this home, if exactly one.
    pub fn only_file(&self, id: Uuid) -> Option<&(PathBuf, Root)> {
        match self.files.get(&id).map(Vec::as_slice) {
            Some([one]) => Some(one),
            _ => None,
        }
    }
}

pub(crate) fn gather(conn: &Connection, codex_home: &Path) -> rusqlite::Result<Facts> {
    let rows = threads::all(conn)?;
    let hidden = if ThreadColumns::of(conn)?.has("preview") {
        conn.prepare("SELECT id FROM threads WHERE preview = '' AND first_user_message <> ''")?
            .query_map([], |r| r.get::<_, String>(0))?
            .filter_map(|id| id.ok().and_then(|id| Uuid::parse_str(&id).ok()))
            .collect()
    } else {
        Vec::new()
    };
    let mut files: BTreeMap<Uuid, Vec<(PathBuf, Root)>> = BTreeMap::new();
    let mut unverifiable = Vec::new();
    let mut rollouts = 0;
    for root in [Root::Active, Root::Archived] {
        let (paths, _warnings) = collect_rollout_files(&root.dir(codex_home));
        for path in paths {
            rollouts += 1;
            match read_session_meta_head(&path) {
                Ok(head) => match head.thread_id() {
                    Some(id) => files.entry(id).or_default().push((path, root)),
                    None => {
                        unverifiable.push((path, format!("head id {:?} is not a UUID", head.id)))
                    }
                },
                Err(err) => unverifiable.push((path, err.reason().to_string())),
            }
        }
    }
    Ok(Facts {
        rows,
        files,
        unverifiable,
        hidden,
        rollouts,
    })
}

fn row_findings(facts: &Facts, codex_home: &Path, row: &ThreadMetadata, out: &mut Vec<Finding>) {
    let path = &row.rollout_path;
    let Some(root) = root_of(codex_home, path) else {
        out.push(Finding::RowPointsOutsideHome {
            thread: row.id,
            path: path.clone(),
        });
        return;
    };
    if !path.is_file() {
        out.push(Finding::RowPointsAtMissingFile {
            thread: row.id,
            path: path.clone(),
        });
        return;
    }
    let owner = facts
        .files
        .iter()
        .find(|(_, paths)| paths.iter().any(|(p, _)| p == path))
        .map(|(id, _)| *id);
    match owner {
        Some(id) if id != row.id => out.push(Finding::RowPointsAtOtherThread {
            thread: row.id,
            path: path.clone(),
            file_thread: id.to_string(),
        }),
        Some(_) if root.is_archived() != row.is_archived() => {
            out.push(Finding::WrongArchivedFlag {
                thread: row.id,
                path: path.clone(),
                row_archived: row.is_archived(),
            })
        }
        Some(_) => {}
        None => match facts.unverifiable.iter().find(|(p, _)| p == path) {
            Some((_, reason)) => out.push(Finding::UnverifiableHead {
                path: path.clone(),
                reason: reason.clone(),
                row_thread: Some(row.id),
            }),
            // Not a rollout name the scan collects: judge it by its head directly.
            None => match read_session_meta_head(path) {
                Ok(head) if head.thread_id() == Some(row.id) => {}
                Ok(head) => out.push(Finding::RowPointsAtOtherThread {
                    thread: row.id,
                    path: path.clone(),
                    file_thread: head.id,
                }),
                Err(err) => out.push(Finding::UnverifiableHead {
                    path: path.clone(),
                    reason: err.reason().to_string(),
                    row_thread: Some(row.id),
                }),
            },
        },
    }
}

fn backfill_finding(
    conn: &Connection,
    lease_ms: i64,
    now_ms: i64,
) -> rusqlite::Result<(String, Option<Finding>)> {
    let state = backfill_state::read(conn)?;
    let status = state.status.as_str().to_string();
    let finding = match &state.status {
        BackfillStatus::Unknown(s) => Some(Finding::Backfill {
            status: s.clone(),
            detail: "not a status Codex writes; Codex fails to read it".into(),
        }),
        BackfillStatus::Running if !state.lease_is_live(now_ms, lease_ms) => {
            Some(Finding::Backfill {
                status: status.clone(),
                detail: format!(
                    "lease expired (last update {} s ago); the next start takes it over",
                    (now_ms / 1000 - state.updated_at).max(0)
                ),
            })
        }
        _ => None,
    };
    Ok((status, finding))
}

/// The findings of a gathered home.
pub fn inspect(
    conn: &Connection,
    codex_home: &Path,
    db: &Path,
    lease_ms: i64,
    now_ms: i64,
) -> Result<AuditReport, AuditError> {
    let err = |e: rusqlite::Error| AuditError::Db {
        path: db.to_path_buf(),
        detail: e.to_string(),
    };
    let facts = gather(conn, codex_home).map_err(err)?;
    let mut findings = Vec::new();
    for row in &facts.rows {
        row_findings(&facts, codex_home, row, &mut findings);
    }
    let indexed: std::collections::HashSet<Uuid> = facts.rows.iter().map(|r| r.id).collect();
    for (id, paths) in &facts.files {
        if !indexed.contains(id) {
            for (path, _) in paths {
                findings.push(Finding::RolloutWithoutRow {
                    thread: *id,
                    path: path.clone(),
                });
            }
        }
        if paths.len() > 1 {
            findings.push(Finding::DuplicateFiles {
                thread: *id,
                paths: paths.iter().map(|(p, _)| p.clone()).collect(),
            });
        }
    }
    for (path, reason) in &facts.unverifiable {
        let claimed = facts.rows.iter().any(|r| &r.rollout_path == path);
        if !claimed {
            findings.push(Finding::UnverifiableHead {
                path: path.clone(),
                reason: reason.clone(),
                row_thread: None,
            });
        }
    }
    findings.extend(
        facts
            .hidden
            .iter()
            .map(|id| Finding::HiddenFromCodexLists { thread: *id }),
    );
    let (backfill_status, backfill) = backfill_finding(conn, lease_ms, now_ms).map_err(err)?;
    findings.extend(backfill);
    Ok(AuditReport {
        db: db.to_path_buf(),
        rows: facts.rows.len(),
        rollouts: facts.rollouts,
        backfill_status,
        findings,
    })
}
