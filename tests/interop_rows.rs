//! Rows and rollouts as the real Codex (0.169.0) makes and reads them.
//!
//! - Codex reads the generated fixture lines without rejecting any (defect 5): its own
//!   backfill records the model and the token count of every thread, and `thread/read`
//!   with turns gives the model and every user turn.
//! - The harness's backfill writes the rows Codex's own backfill writes: Codex indexes one
//!   copy of a home, the harness another, and every column is compared; each remaining
//!   difference is named and explained below.

mod codex_support;
mod common;
mod interop_support;

use std::collections::BTreeMap;
use std::path::Path;

use interop_support::*;
use statedb_harness::fixture::FixtureThread;

/// Copies `home` (rollouts with their mtimes) into a fresh directory.
fn copy_home(home: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = fs_extra::dir::CopyOptions::new()
        .content_only(true)
        .copy_inside(true);
    fs_extra::dir::copy(home, dir.path(), &options).expect("copy home");
    // fs_extra does not keep mtimes; updated_at is the file's mtime.
    for rel in common::files_under(home).into_keys() {
        let mtime = std::fs::metadata(home.join(&rel))
            .expect("meta")
            .modified()
            .expect("mtime");
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(rel))
            .expect("open copy")
            .set_modified(mtime)
            .expect("set mtime");
    }
    dir
}

/// Every `threads` column of every row, by id; `rollout_path` made relative to the home.
fn rows(home: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let db = home.join("state_5.sqlite");
    let names: Vec<String> = query(&db, "SELECT name FROM pragma_table_info('threads')")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let prefix = format!("{}/", home.display());
    query(&db, "SELECT * FROM threads ORDER BY id")
        .into_iter()
        .map(|values| {
            let row: BTreeMap<String, String> = names
                .iter()
                .cloned()
                .zip(values.into_iter().map(|v| v.replace(&prefix, "<home>/")))
                .collect();
            (row["id"].clone(), row)
        })
        .collect()
}

#[test]
fn codex_reads_fixture_rollouts_without_rejecting_lines() {
    let Some(bin) = codex_or_skip("fixture_lines") else {
        return;
    };
    let (home, threads) = user_home(3, 1);
    let says = codex_says(&bin, home.path()).expect("Codex starts on a fixture home");
    assert_codex_agrees(&says, &threads);
    for row in rows(home.path()).values() {
        assert_eq!(
            row["model"], "gpt-5-codex",
            "Codex recorded no model: {row:?}"
        );
        assert_eq!(row["reasoning_effort"], "medium", "{row:?}");
        assert_ne!(row["tokens_used"], "0", "Codex recorded no tokens: {row:?}");
    }
    for FixtureThread { id, .. } in &threads {
        let thread = &says.read[&id.to_string()];
        assert_eq!(thread["model"], "gpt-5-codex", "{thread}");
        let turns = thread["turns"].as_array().expect("turns");
        assert!(!turns.is_empty(), "no turns read for {id}");
        for turn in turns {
            assert!(turn["error"].is_null(), "turn error: {turn}");
        }
    }
}

/// Columns that differ by design, with why. Everything else must be equal.
const EXPLAINED: &[(&str, &str)] = &[(
    "has_user_event",
    "Codex 0.169.0's backfill leaves 0; the harness records 1 when the rollout has a user \
         message. No listing or read of either depends on it (listings filter on preview).",
)];

#[test]
fn harness_rows_equal_codexs_own_backfill_rows() {
    let Some(bin) = codex_or_skip("row_comparison") else {
        return;
    };
    let (home, threads) = user_home(4, 2);
    let by_codex = copy_home(home.path());
    let by_harness = copy_home(home.path());
    codex_touch(&bin, by_codex.path()).expect("Codex indexes its copy");
    // Codex makes the harness's DB (empty: backfill state reset, rows removed), then the
    // harness backfills it.
    codex_touch(&bin, by_harness.path()).expect("Codex creates the harness copy's DB");
    exec(
        &by_harness.path().join("state_5.sqlite"),
        "DELETE FROM threads; UPDATE backfill_state SET status = 'pending', last_watermark = NULL",
    );
    harness_ok(
        &["init", "--codex-home", by_harness.path().to_str().unwrap()],
        0,
    );
    let codex_rows = rows(by_codex.path());
    let harness_rows = rows(by_harness.path());
    assert_eq!(codex_rows.len(), threads.len());
    assert_eq!(
        codex_rows.keys().collect::<Vec<_>>(),
        harness_rows.keys().collect::<Vec<_>>()
    );
    let explained: Vec<&str> = EXPLAINED.iter().map(|(c, _)| *c).collect();
    let mut seen_explained = Vec::new();
    for (id, codex_row) in &codex_rows {
        let harness_row = &harness_rows[id];
        for (column, codex_value) in codex_row {
            let harness_value = &harness_row[column];
            if codex_value == harness_value {
                continue;
            }
            assert!(
                explained.contains(&column.as_str()),
                "thread {id}: column {column} differs: Codex {codex_value:?}, harness {harness_value:?}"
            );
            seen_explained.push(column.clone());
        }
    }
    // An explanation that no longer explains anything must go.
    for column in explained {
        assert!(
            seen_explained.iter().any(|c| c == column),
            "{column} no longer differs; remove it from EXPLAINED"
        );
    }
}
