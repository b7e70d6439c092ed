//! Per-step expectations: a worker's outcome (startup report, lookup, listing, entrypoint
//! report, timing) and a DB row compared with what the scenario expects.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use crate::faults::HomeModel;
use crate::lookup::LookupResult;
use crate::scenario::model::{parse_bound, Expect, RowExpect, TimingSpec, PATH_OF_ROW};
use crate::scenario::roles::WorkerOutcome;
use crate::thread::ThreadMetadata;

fn mismatch(
    failures: &mut Vec<String>,
    what: &str,
    expected: impl std::fmt::Display,
    got: impl std::fmt::Display,
) {
    failures.push(format!("expected {what} = {expected}, got {got}"));
}

pub(super) fn show_opt<T: std::fmt::Display>(v: &Option<T>) -> String {
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
