//! Every check is proven to fail: for each expectation kind and oracle the runner applies,
//! a scenario the reference passes is run through a deliberately wrong state layer (a
//! small bend of the reference, see `broken_layer`) and the check must fail with its
//! message. Each base scenario is also run unbent, so a check that always fails would show.
//! (`killed` and `exit_code` judge real processes, which run this crate's binary; their
//! failures are shown in `scenario_engine.rs`.)

mod broken_layer;
mod common;

use std::sync::Arc;
use std::time::Duration;

use broken_layer::{init_then, proves, sql, Bends};
use statedb_harness::layer::{LayerError, ReferenceLayer, StateLayer};
use statedb_harness::lookup::LookupSource;

fn init_summary(edit: fn(&mut statedb_harness::layer::InitSummary)) -> Bends {
    Bends {
        init: Some(Arc::new(move |ctx, cfg| {
            let (handle, mut summary) = ReferenceLayer.init(ctx, cfg)?;
            edit(&mut summary);
            Ok((handle, summary))
        })),
        ..Default::default()
    }
}

fn init_fails(message: &'static str, timed_out: bool) -> Bends {
    Bends {
        init: Some(Arc::new(move |_, _| {
            Err(LayerError {
                message: message.into(),
                timed_out,
            })
        })),
        ..Default::default()
    }
}

const INIT: &str = r#"
name = "init"
[home]
threads = 3
db = "fresh"
[[step]]
do = "init"
expect = EXPECT
"#;

fn init_expecting(expect: &str) -> String {
    INIT.replace("EXPECT", expect)
}

#[test]
fn startup_expectations_fail_on_a_wrong_startup() {
    proves(
        &init_expecting("{ ok = true }"),
        init_fails("broken", false),
        "expected ok = true, got false",
    );
    proves(
        &init_expecting("{ status = \"complete\" }"),
        init_summary(|s| s.status = "pending".into()),
        "expected status = complete, got pending",
    );
    proves(
        &init_expecting("{ backfill_ran = true }"),
        init_summary(|s| s.backfill_ran = false),
        "expected backfill_ran = true, got false",
    );
    proves(
        &init_expecting("{ upserted = 3 }"),
        init_summary(|s| s.upserted = 2),
        "expected upserted = 3, got 2",
    );
    proves(
        &init_expecting("{ failed = 0 }"),
        init_summary(|s| s.failed = 1),
        "expected failed = 0, got 1",
    );
    proves(
        &init_expecting("{ timed_out = false }"),
        init_fails("timed out", true),
        "expected timed_out = false, got true",
    );
    proves(
        &init_expecting("{ elapsed_max = \"1s\" }"),
        Bends {
            init: Some(Arc::new(|ctx, cfg| {
                std::thread::sleep(Duration::from_millis(1500));
                ReferenceLayer.init(ctx, cfg)
            })),
            ..Default::default()
        },
        "expected elapsed <= 1s",
    );
}

const STUCK: &str = r#"
name = "stuck lease"
[timing]
wait_timeout = "300ms"
[home]
threads = 2
db = "fresh"
[[fault]]
kind = "stuck_lease"
expires_in = "60s"
[[step]]
do = "init"
expect = { ok = false, timed_out = true, error_contains = "timed out waiting for state db backfill", elapsed_min = "wait_timeout" }
"#;

#[test]
fn a_startup_that_gives_up_at_once_or_with_another_error_fails_its_bounds() {
    // Gives up at once, with the right words: only the lower time bound catches it.
    proves(
        STUCK,
        init_fails(
            "timed out waiting for state db backfill (gave up at once)",
            true,
        ),
        "expected elapsed >= wait_timeout",
    );
    proves(
        STUCK,
        Bends {
            init: Some(Arc::new(|ctx, cfg| match ReferenceLayer.init(ctx, cfg) {
                Err(e) => Err(LayerError {
                    message: "database is locked".into(),
                    ..e
                }),
                ok => ok,
            })),
            ..Default::default()
        },
        "expected an error containing 'timed out waiting for state db backfill', got 'database is locked'",
    );
}

const ROWS: &str = r#"
name = "rows"
[home]
threads = 3
db = "fresh"
[[step]]
do = "init"
[[step]]
do = "expect_row"
thread = "t0"
expect = EXPECT
"#;

#[test]
fn row_expectations_fail_on_a_wrong_row() {
    let rows = |e: &str| ROWS.replace("EXPECT", e);
    proves(
        &rows("{ exists = true }"),
        init_then(|h| sql(h, "DELETE FROM threads")),
        "expected row exists = true, got false",
    );
    proves(
        &rows("{ archived = false }"),
        init_then(|h| sql(h, "UPDATE threads SET archived = 1, archived_at = 1")),
        "expected row archived = false",
    );
    proves(
        &rows("{ path = \"t0\" }"),
        init_then(|h| {
            sql(
                h,
                "UPDATE threads SET rollout_path = rollout_path || '.moved'",
            )
        }),
        "(t0), got",
    );
}

const ORACLES: &str = r#"
name = "oracles"
[home]
threads = 3
db = "fresh"
[[step]]
do = "init"
[[step]]
do = "expect_backfill"
status = "complete"
rows = 3
[[check]]
oracle = "ORACLE"
"#;

#[test]
fn backfill_expectations_and_oracles_fail_on_a_wrong_index() {
    let with = |oracle: &str| ORACLES.replace("ORACLE", oracle);
    proves(
        &with("index_matches_files"),
        init_then(|h| {
            sql(
                h,
                "DELETE FROM threads WHERE rowid = (SELECT MIN(rowid) FROM threads)",
            )
        }),
        "expected 3 rows, got 2",
    );
    let no_expect_backfill = |oracle: &str| {
        with(oracle).replace(
            "[[step]]\ndo = \"expect_backfill\"\nstatus = \"complete\"\nrows = 3\n",
            "",
        )
    };
    proves(
        &no_expect_backfill("index_matches_files"),
        init_then(|h| {
            sql(
                h,
                "DELETE FROM threads WHERE rowid = (SELECT MIN(rowid) FROM threads)",
            )
        }),
        "has a rollout but no row",
    );
    proves(
        &with("backfill_complete"),
        init_then(|h| sql(h, "UPDATE backfill_state SET status = 'pending'")),
        "expected backfill status = complete, got pending",
    );
    proves(
        &no_expect_backfill("backfill_complete"),
        init_then(|h| sql(h, "UPDATE backfill_state SET status = 'pending'")),
        "complete",
    );
}

#[test]
fn one_backfill_run_fails_when_a_backfill_runs_twice() {
    let text = r#"
name = "one backfill"
[home]
threads = 3
db = "fresh"
[[step]]
do = "init"
[[check]]
oracle = "one_backfill_run"
"#;
    proves(
        text,
        Bends {
            init: Some(Arc::new(|ctx, cfg| {
                let (handle, summary) = ReferenceLayer.init(ctx, cfg)?;
                sql(
                    &handle,
                    "UPDATE backfill_state SET status = 'pending', last_watermark = NULL",
                );
                // A second backfill in the same worker, through a sibling context (its own
                // handle registry, the same event stream).
                let sibling = statedb_harness::process::ProcessContext::builder()
                    .name(ctx.name())
                    .events(ctx.events().clone())
                    .build();
                ReferenceLayer.backfill(&sibling, cfg)?;
                Ok((handle, summary))
            })),
            ..Default::default()
        },
        "expected exactly one completed backfill, got 2",
    );
}

#[test]
fn no_db_file_fails_when_open_only_creates_the_db() {
    let text = r#"
name = "open-only creates nothing"
[home]
threads = 2
db = "none"
[[step]]
do = "lookup"
thread = "t0"
handle = "open_only"
expect = { ok = true, source = "filesystem" }
[[check]]
oracle = "no_db_file"
"#;
    proves(
        text,
        Bends {
            open_existing: Some(Arc::new(|ctx, cfg| {
                Ok(ReferenceLayer.init(ctx, cfg).ok().map(|(h, _)| h))
            })),
            ..Default::default()
        },
        "state_5.sqlite",
    );
}

const LOOKUP: &str = r#"
name = "lookup"
[home]
threads = 3
[[fault]]
kind = "stale_row"
thread = "t0"
points_to = "t1"
[[step]]
do = "lookup"
thread = "t0"
expect = EXPECT
"#;

fn lookup_bend(edit: fn(&mut statedb_harness::lookup::LookupResult)) -> Bends {
    Bends {
        lookup: Some(Arc::new(move |mut r, _| {
            edit(&mut r);
            r
        })),
        ..Default::default()
    }
}

#[test]
fn lookup_expectations_and_the_foreign_file_invariant_fail_on_a_wrong_answer() {
    let lookup = |e: &str| LOOKUP.replace("EXPECT", e);
    proves(
        &lookup("{ ok = true }"),
        lookup_bend(|r| {
            r.path = None;
            r.source = None;
        }),
        "expected ok = true, got false",
    );
    proves(
        &lookup("{ source = \"filesystem\" }"),
        lookup_bend(|r| r.source = Some(LookupSource::Db)),
        "expected source = filesystem, got db",
    );
    proves(
        &lookup("{ fallback_reason = \"mismatch\" }"),
        lookup_bend(|r| r.fallback_reason = None),
        "expected fallback_reason = mismatch, got none",
    );
    proves(
        &lookup("{ repaired = true }"),
        lookup_bend(|r| r.repaired = false),
        "expected repaired = true, got false",
    );
    // The stale row's file: t1's. Both the expectation and the invariant catch it.
    let foreign = Bends {
        lookup: Some(Arc::new(|mut r, home| {
            let t1 = statedb_harness::rollout::collect_rollout_files(&home.join("sessions"))
                .0
                .into_iter()
                .find(|p| Some(p) != r.path.as_ref())
                .expect("another rollout");
            r.path = Some(t1);
            r
        })),
        ..Default::default()
    };
    proves(&lookup("{ path = \"t0\" }"), foreign.clone(), "(t0), got");
    proves(&lookup("{ ok = true }"), foreign, "whose head claims");
    proves(
        &lookup("{ elapsed_max = \"1s\" }"),
        Bends {
            lookup: Some(Arc::new(|r, _| {
                std::thread::sleep(Duration::from_millis(1500));
                r
            })),
            ..Default::default()
        },
        "expected elapsed <= 1s",
    );
}

const LIST: &str = r#"
name = "list"
[home]
threads = 4
FAULT
[[step]]
do = "list"
expect = EXPECT
"#;

fn list_bend(edit: fn(&mut statedb_harness::lookup::ListPage)) -> Bends {
    Bends {
        list: Some(Arc::new(move |r| {
            r.map(|mut page| {
                edit(&mut page);
                page
            })
        })),
        ..Default::default()
    }
}

#[test]
fn listing_expectations_fail_on_a_wrong_listing() {
    let list = |fault: &str, e: &str| LIST.replace("FAULT", fault).replace("EXPECT", e);
    proves(
        &list("", "{ items = 4 }"),
        list_bend(|p| {
            p.items.pop();
        }),
        "expected items = 4, got",
    );
    proves(
        &list("", "{ all_threads = true }"),
        list_bend(|p| {
            let first = p.items[0].clone();
            *p.items.last_mut().unwrap() = first;
        }),
        "listing",
    );
    let deleted = "[[fault]]\nkind = \"delete_file\"\nthread = \"t1\"";
    proves(
        &list(deleted, "{ stale = [\"t1\"] }"),
        list_bend(|p| p.stale.clear()),
        "stale",
    );
}

#[test]
fn entrypoint_expectations_fail_on_a_wrong_report() {
    let text = r#"
name = "entrypoint"
[home]
threads = 2
[[step]]
do = "entrypoint"
entrypoint = "cli"
expect = EXPECT
"#;
    let bend = |field: &'static str, value: serde_json::Value| Bends {
        entrypoint: Some(Arc::new(move |r| {
            r.map(|mut report| {
                report[field] = value.clone();
                report
            })
        })),
        ..Default::default()
    };
    proves(
        &text.replace("EXPECT", "{ db_opens = 1 }"),
        bend("db_opens", serde_json::json!(2)),
        "expected db_opens = 1, got 2",
    );
    proves(
        &text.replace("EXPECT", "{ refused_opens = 0 }"),
        bend("refused_opens", serde_json::json!(3)),
        "expected refused_opens = 0, got 3",
    );
    proves(
        &text.replace("EXPECT", "{ consumers_ok = true }"),
        bend(
            "consumers",
            serde_json::json!([{"consumer": "thread_store", "ok": false, "detail": "broken"}]),
        ),
        "expected consumers_ok = true",
    );
}

/// The index oracle rebuilds the expected index with its own walker (`observe::Census`),
/// head reader (`observe::head`) and SQL, so an index that the reference's own readers
/// would agree with is still caught: a row pointing at a file whose head claims another
/// thread (what a head parser that trusts a file's name or a stale path would accept), and
/// an archived rollout the index misses (what a walker that skips a root would produce).
#[test]
fn the_index_oracle_catches_an_index_that_agrees_with_a_wrong_reader() {
    let text = r#"
name = "index oracle"
[home]
threads = 3
archived = 1
db = "fresh"
[[step]]
do = "init"
[[check]]
oracle = "index_matches_files"
"#;
    proves(
        text,
        init_then(|h| {
            sql(
                h,
                "UPDATE threads SET rollout_path = (SELECT rollout_path FROM threads t
                    WHERE t.id <> threads.id AND t.archived = 0 LIMIT 1)
                 WHERE rowid = (SELECT MIN(rowid) FROM threads WHERE archived = 0)",
            )
        }),
        ", but its rollout is ",
    );
    proves(
        text,
        init_then(|h| sql(h, "DELETE FROM threads WHERE archived = 1")),
        "has a rollout but no row",
    );
    proves(
        text,
        init_then(|h| sql(h, "UPDATE threads SET archived = 0 WHERE archived = 1")),
        "but its rollout is under archived_sessions",
    );
}
