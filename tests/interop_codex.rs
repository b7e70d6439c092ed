//! The harness on real Codex homes, proven with the real binaries (pinned 0.169.0 and the
//! older 0.120.0): after any harness command Codex starts, migrates, lists every thread
//! once with its own file, and reads each one. Each numbered defect of issue 11 has a test
//! here that failed before the change. Missing binaries skip locally, fail under CI.

mod codex_support;
mod common;
mod interop_support;

use std::path::Path;

use interop_support::*;

fn db(home: &Path) -> std::path::PathBuf {
    home.join("state_5.sqlite")
}

/// Defect 1: `init` on a home without a DB used to create a DB that stopped Codex from
/// starting ("table threads already exists"). Now Codex creates it and starts afterwards.
#[test]
fn harness_init_on_a_home_without_db_leaves_one_codex_starts_on() {
    let Some(bin) = codex_or_skip("harness_init_on_a_home_without_db") else {
        return;
    };
    let (home, threads) = user_home(3, 1);
    harness_init_with_codex(&bin, home.path());
    let says = codex_says(&bin, home.path()).expect("Codex starts on the DB after harness init");
    assert_codex_agrees(&says, &threads);
}

/// Without a Codex binary and without the marker, `init` refuses and creates nothing.
#[test]
fn init_refuses_to_create_a_db_in_a_user_home_without_codex() {
    let (home, _) = user_home(1, 0);
    let (code, _, err) = harness(&[
        "init",
        "--codex-home",
        home.path().to_str().unwrap(),
        "--codex-bin",
        "/nonexistent/codex",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--codex-bin") && err.contains("--harness-db"),
        "{err}"
    );
    assert!(!db(home.path()).exists(), "a DB was created anyway");
}

/// Defect 2: `init` on a 0.120.0 DB used to add the columns it missed, and 0.169.0 then
/// failed its migration 25 ("duplicate column name: created_at_ms"). Now the harness adds
/// only its own tables and 0.169.0 upgrades the DB cleanly.
#[test]
fn harness_init_on_an_old_codex_db_keeps_the_upgrade_clean() {
    let Some(new) = codex_or_skip("old_db_upgrade") else {
        return;
    };
    let Some(old) = old_codex_or_skip("old_db_upgrade") else {
        return;
    };
    let (home, threads) = user_home(3, 1);
    codex_touch(&old, home.path()).expect("0.120.0 creates its DB");
    let before = query(&db(home.path()), "SELECT count(*) FROM _sqlx_migrations")[0][0].clone();
    let columns = query(
        &db(home.path()),
        "SELECT name FROM pragma_table_info('threads')",
    );
    let h = home.path().to_str().unwrap();
    harness_ok(&["init", "--codex-home", h], 0);
    // Every other command reads and writes the older table as it is.
    let id = threads[0].id.to_string();
    harness_ok(&["lookup", "--codex-home", h, "--any", &id], 0);
    harness_ok(&["list", "--codex-home", h], 0);
    harness_ok(&["status", "--codex-home", h], 0);
    harness_ok(&["audit", "--codex-home", h], 0);
    assert_eq!(
        query(
            &db(home.path()),
            "SELECT name FROM pragma_table_info('threads')"
        ),
        columns,
        "the harness changed Codex's threads table"
    );
    assert_eq!(
        query(&db(home.path()), "SELECT count(*) FROM _sqlx_migrations")[0][0],
        before
    );
    let says = codex_says(&new, home.path()).expect("0.169.0 migrates the DB the harness used");
    assert_codex_agrees(&says, &threads);
    let failed = query(
        &db(home.path()),
        "SELECT count(*) FROM _sqlx_migrations WHERE success = 0",
    );
    assert_eq!(failed[0][0], "0");
}

/// Defect 3: a backfill the harness ran on a Codex DB whose status was `pending` wrote
/// rows with an empty preview, which Codex's listings skip; the status was then
/// `complete`, so Codex never backfilled again. Now Codex lists every thread.
#[test]
fn harness_backfill_of_a_pending_codex_db_is_listed_by_codex() {
    let Some(bin) = codex_or_skip("pending_backfill") else {
        return;
    };
    let (home, threads) = user_home(4, 2);
    codex_touch(&bin, home.path()).expect("Codex creates its DB");
    // As if Codex had been stopped before its backfill: no rows, status pending.
    exec(
        &db(home.path()),
        "DELETE FROM threads; UPDATE backfill_state SET status = 'pending', last_watermark = NULL",
    );
    let out = harness_ok(
        &[
            "init",
            "--codex-home",
            home.path().to_str().unwrap(),
            "--json",
        ],
        0,
    );
    assert!(
        out.contains("\"ran\":true"),
        "the harness did not backfill: {out}"
    );
    let empty = query(
        &db(home.path()),
        "SELECT count(*) FROM threads WHERE preview = ''",
    );
    assert_eq!(empty[0][0], "0", "rows with an empty preview");
    let says = codex_says(&bin, home.path()).expect("Codex starts");
    assert_codex_agrees(&says, &threads);
}

/// A Codex-made DB through every harness command, then Codex again: it starts, lists every
/// thread once with its own file and reads each one.
#[test]
fn every_harness_command_on_a_codex_db_leaves_it_usable_by_codex() {
    let Some(bin) = codex_or_skip("every_command") else {
        return;
    };
    let (home, threads) = user_home(3, 2);
    let h = home.path().to_str().unwrap();
    codex_touch(&bin, home.path()).expect("Codex creates its DB");
    let schema = codex_schema(&db(home.path()));
    let id = threads[0].id.to_string();
    harness_ok(&["init", "--codex-home", h], 0);
    harness_ok(&["lookup", "--codex-home", h, "--any", &id], 0);
    harness_ok(&["lookup", "--codex-home", h, "--open-only", &id], 0);
    harness_ok(&["list", "--codex-home", h], 0);
    harness_ok(&["list", "--codex-home", h, "--archived", "--prune"], 0);
    harness_ok(&["status", "--codex-home", h], 0);
    assert_eq!(
        codex_schema(&db(home.path())),
        schema,
        "a harness command changed a table, index or trigger Codex owns"
    );
    harness_ok(&["audit", "--codex-home", h], 0);
    assert_eq!(
        codex_schema(&db(home.path())),
        schema,
        "audit changed the schema"
    );
    let says = codex_says(&bin, home.path()).expect("Codex starts after the harness");
    assert_codex_agrees(&says, &threads);
}

/// A row pointing at another thread's file, repaired by a harness lookup: Codex then reads
/// the thread from its own file.
#[test]
fn a_stale_row_repaired_by_the_harness_is_read_by_codex() {
    let Some(bin) = codex_or_skip("stale_row_repair") else {
        return;
    };
    let (home, threads) = user_home(3, 0);
    codex_touch(&bin, home.path()).expect("Codex creates its DB");
    let (victim, other) = (&threads[0], &threads[1]);
    exec(
        &db(home.path()),
        &format!(
            "UPDATE threads SET rollout_path = '{}' WHERE id = '{}'",
            other.path.display(),
            victim.id
        ),
    );
    let out = harness_ok(
        &[
            "lookup",
            "--codex-home",
            home.path().to_str().unwrap(),
            "--json",
            &victim.id.to_string(),
        ],
        0,
    );
    assert!(out.contains("\"repaired\":true"), "{out}");
    let says = codex_says(&bin, home.path()).expect("Codex starts");
    assert_codex_agrees(&says, &threads);
}

/// A row missing from a Codex DB, inserted by the harness's read-repair, is listed by Codex
/// (it has a preview).
#[test]
fn a_row_inserted_by_read_repair_is_listed_by_codex() {
    let Some(bin) = codex_or_skip("missing_row_repair") else {
        return;
    };
    let (home, threads) = user_home(3, 0);
    codex_touch(&bin, home.path()).expect("Codex creates its DB");
    let victim = &threads[2];
    exec(
        &db(home.path()),
        &format!("DELETE FROM threads WHERE id = '{}'", victim.id),
    );
    harness_ok(
        &[
            "lookup",
            "--codex-home",
            home.path().to_str().unwrap(),
            &victim.id.to_string(),
        ],
        0,
    );
    let says = codex_says(&bin, home.path()).expect("Codex starts");
    assert_codex_agrees(&says, &threads);
}

/// Defect 4: compressed rollouts were invisible to the harness. The harness now indexes a
/// `.jsonl.zst` rollout into a Codex DB with the path Codex itself stores (the `.zst`
/// file), and Codex lists and reads the thread (under its logical `.jsonl` path, as Codex
/// reports compressed rollouts).
#[test]
fn a_compressed_rollout_indexed_by_the_harness_is_listed_by_codex() {
    let Some(bin) = codex_or_skip("compressed_rollout") else {
        return;
    };
    let (home, threads) = user_home(3, 1);
    let plain = threads[1].path.clone();
    let packed = std::path::PathBuf::from(format!("{}.zst", plain.display()));
    let bytes = std::fs::read(&plain).unwrap();
    std::fs::write(&packed, zstd::encode_all(bytes.as_slice(), 3).unwrap()).unwrap();
    std::fs::remove_file(&plain).unwrap();
    codex_touch(&bin, home.path()).expect("Codex creates its DB");
    exec(
        &db(home.path()),
        "DELETE FROM threads; UPDATE backfill_state SET status = 'pending', last_watermark = NULL",
    );
    harness_ok(&["init", "--codex-home", home.path().to_str().unwrap()], 0);
    let stored = query(
        &db(home.path()),
        &format!(
            "SELECT rollout_path FROM threads WHERE id = '{}'",
            threads[1].id
        ),
    );
    assert_eq!(stored, vec![vec![packed.display().to_string()]]);
    let out = harness_ok(
        &[
            "lookup",
            "--codex-home",
            home.path().to_str().unwrap(),
            "--json",
            &threads[1].id.to_string(),
        ],
        0,
    );
    assert!(out.contains(".jsonl.zst"), "{out}");
    let says = codex_says(&bin, home.path()).expect("Codex starts");
    assert_codex_agrees(&says, &threads);
    assert_eq!(
        std::fs::read(&packed).unwrap(),
        zstd::encode_all(bytes.as_slice(), 3).unwrap()
    );
}

/// Defect 6 (issue 13 item 2): a home copied with its DB keeps rows naming the original
/// home's files. The harness never answers or keeps such a path: lookups and listings on
/// the copy name only the copy's files and repair the rows, after which Codex on the copy
/// lists and reads every thread from the copy, even with the original damaged.
#[test]
fn a_copied_home_never_answers_with_the_original_home() {
    let Some(bin) = codex_or_skip("copied_home") else {
        return;
    };
    let (original, threads) = user_home(3, 1);
    codex_touch(&bin, original.path()).expect("Codex indexes the original");
    let copy = tempfile::tempdir().unwrap();
    let options = fs_extra::dir::CopyOptions::new().content_only(true);
    fs_extra::dir::copy(original.path(), copy.path(), &options).unwrap();
    // Damage the original: every rollout's head now names another thread.
    let first = std::fs::read(&threads[0].path).unwrap();
    for t in &threads {
        std::fs::write(&t.path, &first).unwrap();
    }
    let c = copy.path().to_str().unwrap();
    let outside = original.path().to_str().unwrap();
    let id = threads[1].id.to_string();
    let looked = harness_ok(&["lookup", "--codex-home", c, "--any", "--json", &id], 0);
    assert!(
        !looked.contains(outside),
        "lookup answered the original: {looked}"
    );
    assert!(looked.contains(c), "{looked}");
    for args in [
        vec!["list", "--codex-home", c, "--json"],
        vec!["list", "--codex-home", c, "--archived", "--json"],
    ] {
        let listed = harness_ok(&args, 0);
        assert!(
            !listed.contains(outside),
            "listing named the original: {listed}"
        );
    }
    let rows = query(&db(copy.path()), "SELECT rollout_path FROM threads");
    assert_eq!(rows.len(), threads.len());
    for row in rows {
        assert!(
            row[0].starts_with(c),
            "row kept a path outside the copy: {}",
            row[0]
        );
    }
    let in_copy: Vec<_> = threads
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.path = copy
                .path()
                .join(t.path.strip_prefix(original.path()).unwrap());
            t
        })
        .collect();
    let says = codex_says(&bin, copy.path()).expect("Codex starts on the copy");
    assert_codex_agrees(&says, &in_copy);
}

/// `audit` reads a damaged Codex home without creating anything; `audit --repair` backs the
/// DB up, fixes it, and Codex then lists and reads every thread from its own file.
#[test]
fn audit_repair_on_a_damaged_codex_home_leaves_codex_listing_every_thread() {
    let Some(bin) = codex_or_skip("audit_repair") else {
        return;
    };
    let (home, threads) = user_home(4, 2);
    let h = home.path().to_str().unwrap();
    codex_touch(&bin, home.path()).expect("Codex creates its DB");
    let archived = threads.iter().find(|t| t.root.is_archived()).unwrap();
    exec(
        &db(home.path()),
        &format!(
            "UPDATE threads SET rollout_path = '{other}' WHERE id = '{a}';
             DELETE FROM threads WHERE id = '{b}';
             UPDATE threads SET preview = '' WHERE id = '{c}';
             UPDATE threads SET archived = 0, archived_at = NULL WHERE id = '{d}';",
            other = threads[1].path.display(),
            a = threads[0].id,
            b = threads[2].id,
            c = threads[3].id,
            d = archived.id,
        ),
    );
    let names = || {
        let mut v: Vec<String> = std::fs::read_dir(home.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let before = names();
    let found = harness_ok(&["audit", "--codex-home", h, "--json"], 1);
    for kind in [
        "row_points_at_other_thread",
        "rollout_without_row",
        "hidden_from_codex_lists",
        "wrong_archived_flag",
    ] {
        assert!(found.contains(kind), "audit missed {kind}: {found}");
    }
    assert_eq!(
        before,
        names(),
        "a read-only audit created or removed files"
    );
    let repaired = harness_ok(&["audit", "--codex-home", h, "--repair"], 0);
    let backup = repaired
        .lines()
        .find_map(|l| l.strip_prefix("backup: "))
        .expect("backup path printed");
    assert!(
        std::path::Path::new(backup)
            .join("state_5.sqlite")
            .is_file(),
        "{repaired}"
    );
    let says = codex_says(&bin, home.path()).expect("Codex starts after the repair");
    assert_codex_agrees(&says, &threads);
}

/// The harness's backfill write log (a `statedb_harness_*` table and triggers on Codex's
/// `backfill_state`) changes no schema Codex migrates: a 0.120.0 DB with the log installed
/// is upgraded by 0.169.0, which starts, backfills and lists every thread; the triggers
/// survive the upgrade and logged Codex's own writes: one completion, no lease violation.
#[test]
fn codex_upgrades_and_backfills_a_db_with_the_write_log_installed() {
    use statedb_harness::faults::HomeModel;
    use statedb_harness::observe::{lease, writes};
    let Some(new) = codex_or_skip("write_log_upgrade") else {
        return;
    };
    let Some(old) = old_codex_or_skip("write_log_upgrade") else {
        return;
    };
    let (home, threads) = user_home(3, 1);
    codex_touch(&old, home.path()).expect("0.120.0 creates its DB");
    // Pending, so 0.169.0 backfills (and its writes are logged).
    exec(
        &db(home.path()),
        "DELETE FROM threads;
         UPDATE backfill_state SET status = 'pending', last_watermark = NULL, last_success_at = NULL;",
    );
    let model = HomeModel::new(home.path().to_path_buf(), home.path().to_path_buf());
    let lease_watched = writes::install(&model).expect("install the write log");
    assert!(!lease_watched, "Codex's DB has no harness lease table");
    let says = codex_says(&new, home.path()).expect("0.169.0 starts on a DB with the log");
    assert_codex_agrees(&says, &threads);
    let failed = query(
        &db(home.path()),
        "SELECT count(*) FROM _sqlx_migrations WHERE success = 0",
    );
    assert_eq!(failed[0][0], "0");
    let triggers = query(
        &db(home.path()),
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'statedb_harness_log_%'",
    );
    assert_eq!(triggers[0][0], "4", "the upgrade dropped a trigger");
    let log = writes::read(&model).expect("read the write log");
    assert_eq!(lease::completions(&log).len(), 1, "{log:#?}");
    assert_eq!(lease::violations(&log), Vec::<String>::new(), "{log:#?}");
}

/// A listing page reads through the indexes Codex itself creates: on the DB each real
/// Codex makes (0.169.0 with its ms columns, 0.120.0 with seconds only), the statements of
/// a page walk one of Codex's indexes in order (no sort, no scan of the table), with and without an
/// anchor and a filter, so a page costs the same at any size and the harness adds no index.
#[test]
fn a_listing_page_walks_an_index_codex_created() {
    use statedb_harness::lookup::ListFilter;
    use statedb_harness::state::thread_columns::ThreadColumns;
    use statedb_harness::state::thread_pages::page_statements;
    use statedb_harness::state::threads::{Anchor, SortKey};
    let Some(new) = codex_or_skip("listing_page_plan") else {
        return;
    };
    let Some(old) = old_codex_or_skip("listing_page_plan") else {
        return;
    };
    let filter = ListFilter {
        sources: vec!["cli".into()],
        providers: vec!["openai".into()],
    };
    let (extra, _) = filter.sql(5);
    for bin in [&new, &old] {
        let (home, _) = user_home(3, 1);
        codex_touch(bin, home.path()).expect("Codex creates its DB");
        let conn = rusqlite::Connection::open(db(home.path())).expect("open");
        let columns = ThreadColumns::of(&conn).expect("columns");
        let anchors = [
            None,
            Some(Anchor {
                ts_ms: 1_800_000_000_000,
                id: Some(uuid::Uuid::nil()),
            }),
            Some(Anchor {
                ts_ms: 1_800_000_000_000,
                id: None,
            }),
        ];
        for key in [SortKey::Updated, SortKey::Created] {
            for anchor in anchors {
                for extra in ["", extra.as_str()] {
                    // The first statement holds every row Codex writes (the ms part on
                    // 0.169.0, the seconds part on 0.120.0).
                    let sql = &page_statements(columns, false, key, anchor, extra)[0];
                    let plan = query_plan(&conn, sql);
                    assert!(
                        plan.split("; ")
                            .all(|step| step.contains("USING INDEX idx_threads_"))
                            && !plan.contains("TEMP B-TREE"),
                        "{key:?} {anchor:?} {extra:?}: {plan}"
                    );
                }
            }
        }
        // The shape this replaced, ordered by the COALESCE of both columns, sorts the table.
        let col = SortKey::Updated.column(columns);
        let before = query_plan(
            &conn,
            &format!(
                "SELECT id FROM threads WHERE archived = 0 ORDER BY {col} DESC, id DESC LIMIT 26"
            ),
        );
        assert!(before.contains("TEMP B-TREE"), "{before}");
    }
}

/// `EXPLAIN QUERY PLAN` of `sql`, its detail lines joined (parameters left unbound).
fn query_plan(conn: &rusqlite::Connection, sql: &str) -> String {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("prepare");
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().expect("plan row") {
        out.push(row.get::<_, String>(3).expect("detail"));
    }
    out.join("; ")
}
