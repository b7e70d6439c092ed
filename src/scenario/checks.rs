//! Checks: per-step expectations, the invariants every scenario is held to, and the oracle
//! that rebuilds the expected index from the files and diffs it with the DB.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use uuid::Uuid;

use super::model::{parse_bound, Expect, Oracle, RowExpect, TimingSpec, PATH_OF_ROW};
use super::roles::WorkerOutcome;
use crate::events::{kinds, Event};
use crate::faults::HomeModel;
use crate::lookup::LookupResult;
use crate::rollout::head::read_session_meta_head;
use crate::rollout::layout::{root_of, Root};
use crate::rollout::search::collect_rollout_files;
use crate::thread::ThreadMetadata;

fn mismatch(
    failures: &mut Vec<String>,
    what: &str,
    expected: impl std::fmt::Display,
    got: impl std::fmt::Display,
) {
    failures.push(format!("expected {what} = {expected}, got {got}"));
}

fn show_opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into())
}

fn show_path(home: &HomeModel, p: &Option<PathBuf>) -> String {
    match p {
        Some(p) => match home.alias_of_path(p) {
            Some(alias) => format!("{} ({alias})", home.relative(p)),
            None => home.relative(p),
        },
        None => "none".into(),
    }
}

/// Compares an outcome with its expectations; returns one message per unmet expectation.
/// `rows` are the DB's rows, read only when an expectation needs them (`path = "row"`).
pub fn check_expect(
    e: &Expect,
    out: &WorkerOutcome,
    home: &HomeModel,
    timing: &TimingSpec,
    rows: Option<&Result<Vec<ThreadMetadata>, String>>,
) -> Vec<String> {
    let mut f = Vec::new();
    if let Some(ok) = e.ok {
        if out.ok != ok {
            mismatch(
                &mut f,
                "ok",
                ok,
                format!(
                    "{} ({})",
                    out.ok,
                    out.error.as_deref().unwrap_or("no error")
                ),
            );
        }
    }
    if let Some(text) = &e.error_contains {
        let got = out.error.clone().unwrap_or_default();
        if !got.contains(text.as_str()) {
            f.push(format!(
                "expected an error containing '{text}', got '{got}'"
            ));
        }
    }
    if let Some(t) = e.timed_out {
        if out.timed_out != t {
            mismatch(&mut f, "timed_out", t, out.timed_out);
        }
    }
    if let Some(k) = e.killed {
        if out.killed != k {
            mismatch(
                &mut f,
                "killed",
                k,
                format!("{} (exit code {:?})", out.killed, out.exit_code),
            );
        }
    }
    if let Some(code) = e.exit_code {
        if out.exit_code != Some(code) {
            mismatch(&mut f, "exit_code", code, show_opt(&out.exit_code));
        }
    }
    let elapsed = Duration::from_millis(out.elapsed_ms);
    if let Some(b) = &e.elapsed_min {
        if let Ok(min) = parse_bound(b, timing) {
            if elapsed < min {
                f.push(format!(
                    "expected elapsed >= {b} ({min:?}), got {elapsed:?}"
                ));
            }
        }
    }
    if let Some(b) = &e.elapsed_max {
        if let Ok(max) = parse_bound(b, timing) {
            if elapsed > max {
                f.push(format!(
                    "expected elapsed <= {b} ({max:?}), got {elapsed:?}"
                ));
            }
        }
    }
    if e.status.is_some() || e.backfill_ran.is_some() || e.upserted.is_some() || e.failed.is_some()
    {
        match &out.init {
            None => f.push(format!(
                "expected a startup report, got none ({})",
                out.error.as_deref().unwrap_or("no error")
            )),
            Some(init) => {
                if let Some(s) = &e.status {
                    if init.status != s.as_str() {
                        mismatch(&mut f, "status", s, &init.status);
                    }
                }
                if let Some(r) = e.backfill_ran {
                    if init.backfill_ran != r {
                        mismatch(&mut f, "backfill_ran", r, init.backfill_ran);
                    }
                }
                if let Some(n) = e.upserted {
                    if init.upserted != n {
                        mismatch(&mut f, "upserted", n, init.upserted);
                    }
                }
                if let Some(n) = e.failed {
                    if init.failed != n {
                        mismatch(&mut f, "failed", n, init.failed);
                    }
                }
            }
        }
    }
    if e.source.is_some() || e.fallback_reason.is_some() || e.repaired.is_some() || e.path.is_some()
    {
        match out.lookups.last() {
            None => f.push("expected a lookup result, got none".into()),
            Some(r) => check_lookup(e, r, home, rows, &mut f),
        }
    }
    if e.items.is_some() || e.all_threads.is_some() || e.stale.is_some() {
        match &out.list {
            None => f.push(format!(
                "expected a listing, got none ({})",
                out.error.as_deref().unwrap_or("no error")
            )),
            Some(list) => {
                if let Some(n) = e.items {
                    if list.items.len() != n {
                        mismatch(&mut f, "items", n, list.items.len());
                    }
                }
                let mut seen = BTreeSet::new();
                for id in &list.items {
                    if !seen.insert(*id) {
                        f.push(format!(
                            "listing returned {} twice",
                            home.alias_of(*id).unwrap_or("a thread")
                        ));
                    }
                }
                if let Some(stale) = &e.stale {
                    let want: BTreeSet<Uuid> = stale
                        .iter()
                        .filter_map(|a| home.thread(a).ok().map(|t| t.id))
                        .collect();
                    let got: BTreeSet<Uuid> = list.stale.iter().copied().collect();
                    if want != got {
                        mismatch(&mut f, "stale", aliases(home, &want), aliases(home, &got));
                    }
                }
                if e.all_threads == Some(true) {
                    let archived = list.archived;
                    let want: BTreeSet<Uuid> = home
                        .threads
                        .values()
                        .filter(|t| t.root.is_archived() == archived && t.path.is_file())
                        .map(|t| t.id)
                        .collect();
                    let missing: BTreeSet<Uuid> = want.difference(&seen).copied().collect();
                    if !missing.is_empty() {
                        f.push(format!("listing skipped {}", aliases(home, &missing)));
                    }
                }
            }
        }
    }
    if e.db_opens.is_some() || e.refused_opens.is_some() || e.consumers_ok.is_some() {
        match &out.entrypoint {
            None => f.push(format!(
                "expected an entrypoint report, got none ({})",
                out.error.as_deref().unwrap_or("no error")
            )),
            Some(rep) => {
                let num = |k: &str| rep.get(k).and_then(|v| v.as_u64()).unwrap_or(u64::MAX);
                if let Some(n) = e.db_opens {
                    if num("db_opens") != u64::from(n) {
                        mismatch(&mut f, "db_opens", n, num("db_opens"));
                    }
                }
                if let Some(n) = e.refused_opens {
                    if num("refused_opens") != u64::from(n) {
                        mismatch(&mut f, "refused_opens", n, num("refused_opens"));
                    }
                }
                if let Some(ok) = e.consumers_ok {
                    let failed: Vec<String> = rep
                        .get("consumers")
                        .and_then(|c| c.as_array())
                        .map(|cs| {
                            cs.iter()
                                .filter(|c| c.get("ok").and_then(|v| v.as_bool()) != Some(true))
                                .map(|c| format!("{}: {}", c["consumer"], c["detail"]))
                                .collect()
                        })
                        .unwrap_or_default();
                    if failed.is_empty() != ok {
                        mismatch(
                            &mut f,
                            "consumers_ok",
                            ok,
                            format!("failed consumers: [{}]", failed.join("; ")),
                        );
                    }
                }
            }
        }
    }
    f
}

fn aliases(home: &HomeModel, ids: &BTreeSet<Uuid>) -> String {
    let names: Vec<String> = ids
        .iter()
        .map(|id| {
            home.alias_of(*id)
                .map(String::from)
                .unwrap_or_else(|| id.to_string())
        })
        .collect();
    format!("[{}]", names.join(", "))
}

fn check_lookup(
    e: &Expect,
    r: &LookupResult,
    home: &HomeModel,
    rows: Option<&Result<Vec<ThreadMetadata>, String>>,
    f: &mut Vec<String>,
) {
    let source = r
        .source
        .map(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "none".into());
    if let Some(want) = &e.source {
        if !want.matches(r.source.as_ref()) {
            mismatch(f, "source", want, &source);
        }
    }
    let reason = r
        .fallback_reason
        .map(|x| x.as_str().to_string())
        .unwrap_or_else(|| "none".into());
    if let Some(want) = &e.fallback_reason {
        if !want.matches(r.fallback_reason.as_ref()) {
            mismatch(f, "fallback_reason", want, &reason);
        }
    }
    if let Some(want) = e.repaired {
        if r.repaired != want {
            let why = r
                .repair_skipped
                .as_deref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            mismatch(f, "repaired", want, format!("{}{why}", r.repaired));
        }
    }
    if e.path.as_deref() == Some(PATH_OF_ROW) {
        let id = Uuid::parse_str(&r.thread_id).ok();
        let row_path = match rows {
            None => Err("no rows were read".to_string()),
            Some(Err(err)) => Err(err.clone()),
            Some(Ok(rows)) => rows
                .iter()
                .find(|row| Some(row.id) == id)
                .map(|row| row.rollout_path.clone())
                .ok_or_else(|| "the thread has no row".to_string()),
        };
        match row_path {
            Ok(p) if r.path.as_ref() == Some(&p) => {}
            Ok(p) => mismatch(
                f,
                "path",
                format!("the row's path {}", show_path(home, &Some(p))),
                show_path(home, &r.path),
            ),
            Err(why) => f.push(format!(
                "expected path = the row's path, but {why} (got {})",
                show_path(home, &r.path)
            )),
        }
    } else if let Some(want) = &e.path {
        let expected = if want == "none" {
            None
        } else {
            home.thread(want.strip_prefix("other:").unwrap_or(want))
                .ok()
                .map(|t| t.path.clone())
        };
        if expected != r.path {
            mismatch(
                f,
                "path",
                show_path(home, &expected),
                show_path(home, &r.path),
            );
        }
    }
}

/// Checks a DB row against expectations.
pub fn check_row(e: &RowExpect, row: Option<&ThreadMetadata>, home: &HomeModel) -> Vec<String> {
    let mut f = Vec::new();
    if let Some(exists) = e.exists {
        if row.is_some() != exists {
            mismatch(&mut f, "row exists", exists, row.is_some());
        }
    }
    let Some(row) = row else {
        if e.path.is_some() || e.archived.is_some() || e.tokens_used.is_some() || e.title.is_some()
        {
            f.push("expected a row, found none".into());
        }
        return f;
    };
    if let Some(alias) = &e.path {
        if let Ok(t) = home.thread(alias) {
            if t.path != row.rollout_path {
                mismatch(
                    &mut f,
                    "row path",
                    show_path(home, &Some(t.path.clone())),
                    show_path(home, &Some(row.rollout_path.clone())),
                );
            }
        }
    }
    if let Some(a) = e.archived {
        if row.is_archived() != a {
            mismatch(&mut f, "row archived", a, row.is_archived());
        }
    }
    if let Some(n) = e.tokens_used {
        if row.tokens_used != n {
            mismatch(&mut f, "row tokens_used", n, row.tokens_used);
        }
    }
    if let Some(t) = &e.title {
        if &row.title != t {
            mismatch(&mut f, "row title", t, &row.title);
        }
    }
    f
}

/// Invariant: no lookup returns a path whose head names another thread.
pub fn lookup_never_foreign(r: &LookupResult) -> Option<String> {
    let path = r.path.as_ref()?;
    if r.source == Some(crate::lookup::LookupSource::UnverifiedDb) {
        return None;
    }
    let want = Uuid::parse_str(&r.thread_id).ok()?;
    match read_session_meta_head(path) {
        Ok(head) if head.thread_id() == Some(want) => None,
        Ok(head) => Some(format!(
            "invariant violated: lookup of {} returned {} whose head belongs to thread {}",
            r.thread_id,
            path.display(),
            head.id
        )),
        Err(err) => Some(format!(
            "invariant violated: lookup of {} returned {} as verified, but its head is unreadable: {err}",
            r.thread_id,
            path.display()
        )),
    }
}

/// Invariants read from the event log.
pub fn event_invariants(events: &[Event]) -> Vec<String> {
    let mut f = Vec::new();
    for e in events {
        if e.kind == kinds::DUPLICATE_OPEN {
            f.push(format!(
                "invariant violated: process {} opened a second state db handle on {}",
                e.worker,
                e.data.get("db").and_then(|v| v.as_str()).unwrap_or("?")
            ));
        }
        if e.kind == kinds::FENCED_WRITE {
            let owner = e.data.get("owner").and_then(|v| v.as_str());
            let db_owner = e.data.get("db_owner").and_then(|v| v.as_str());
            if owner != db_owner {
                f.push(format!(
                    "invariant violated: {} wrote the backfill {} as owner {} while the lease belonged to {}",
                    e.worker,
                    e.data.get("write").and_then(|v| v.as_str()).unwrap_or("?"),
                    owner.unwrap_or("?"),
                    db_owner.unwrap_or("nobody")
                ));
            }
        }
    }
    f
}

/// Content digests of every file under the rollout roots (moves keep the digest).
pub fn rollout_digests(codex_home: &Path) -> BTreeMap<u64, usize> {
    let mut digests = BTreeMap::new();
    for root in Root::ALL {
        for path in walk_files(&root.dir(codex_home)) {
            if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
                continue;
            }
            if let Ok(bytes) = std::fs::read(&path) {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                *digests.entry(h.finish()).or_insert(0) += 1;
            }
        }
    }
    digests
}

fn walk_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    out
}

/// Invariant: every rollout that existed at the baseline still exists with the same bytes.
pub fn rollouts_unchanged(
    baseline: &BTreeMap<u64, usize>,
    now: &BTreeMap<u64, usize>,
) -> Option<String> {
    let lost: usize = baseline
        .iter()
        .map(|(d, n)| n.saturating_sub(now.get(d).copied().unwrap_or(0)))
        .sum();
    (lost > 0).then(|| format!("invariant violated: {lost} rollout file(s) were changed or removed by the code under test"))
}

/// Runs an oracle. `rows` is every row of the DB (None: no DB file).
pub fn run_oracle(
    oracle: Oracle,
    home: &HomeModel,
    rows: Option<&[ThreadMetadata]>,
    status: Option<&str>,
    events: &[Event],
) -> Vec<String> {
    match oracle {
        Oracle::DamagedDbKept => damaged_db_kept(home),
        Oracle::OneBackfillRun => {
            let runs: Vec<&str> = events
                .iter()
                .filter(|e| e.kind == kinds::BACKFILL_COMPLETE)
                .map(|e| e.worker.as_str())
                .collect();
            if runs.len() == 1 {
                vec![]
            } else {
                vec![format!(
                    "expected exactly one completed backfill, got {} ({})",
                    runs.len(),
                    runs.join(", ")
                )]
            }
        }
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
        Oracle::IndexMatchesFiles => index_matches_files(home, rows.unwrap_or(&[])),
    }
}

fn index_matches_files(home: &HomeModel, rows: &[ThreadMetadata]) -> Vec<String> {
    let mut f = Vec::new();
    // Expected index from the files: id -> the verified files claiming it.
    let mut expected: HashMap<Uuid, Vec<(PathBuf, Root)>> = HashMap::new();
    for root in Root::ALL {
        let (files, _) = collect_rollout_files(&root.dir(&home.codex_home));
        for path in files {
            if let Ok(head) = read_session_meta_head(&path) {
                if let Some(id) = head.thread_id() {
                    expected.entry(id).or_default().push((path, root));
                }
            }
        }
    }
    let by_id: HashMap<Uuid, &ThreadMetadata> = rows.iter().map(|r| (r.id, r)).collect();
    let name = |id: Uuid| {
        home.alias_of(id)
            .map(String::from)
            .unwrap_or_else(|| id.to_string())
    };
    let mut ids: Vec<&Uuid> = expected.keys().collect();
    ids.sort();
    for id in ids {
        let files = &expected[id];
        match by_id.get(id) {
            None => f.push(format!("oracle: {} has a rollout but no row", name(*id))),
            Some(row) => match files.iter().find(|(p, _)| *p == row.rollout_path) {
                None => f.push(format!(
                    "oracle: row {} points at {}, but its rollout is {}",
                    name(*id),
                    home.relative(&row.rollout_path),
                    home.relative(&files[0].0)
                )),
                Some((_, root)) => {
                    if row.is_archived() != root.is_archived() {
                        f.push(format!(
                            "oracle: row {} says archived = {}, but its rollout is under {}",
                            name(*id),
                            row.is_archived(),
                            root.subdir()
                        ));
                    }
                }
            },
        }
    }
    for row in rows {
        if !expected.contains_key(&row.id) {
            let why = if row.rollout_path.is_file() {
                "a file that does not verify as that thread"
            } else {
                "a missing file"
            };
            let under = root_of(&home.codex_home, &row.rollout_path)
                .map(|r| r.subdir())
                .unwrap_or("outside the home");
            f.push(format!(
                "oracle: row {} points at {} ({why}, {under})",
                name(row.id),
                home.relative(&row.rollout_path)
            ));
        }
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
