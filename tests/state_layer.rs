//! The reference state layer against the behaviours of Codex's own tests (re-expressed),
//! plus the fenced lease, concurrency and open-only guarantees we add.

mod common;

use std::time::{Duration, Instant};

use common::{cfg, cfg_with, ctx, home_with};
use rusqlite::Connection;
use statedb_harness::backfill::run_backfill;
use statedb_harness::clock::Clock;
use statedb_harness::process::ProcessContext;
use statedb_harness::rollout::layout::watermark_for;
use statedb_harness::state::backfill_state::{BackfillStatus, FencedWrite, LeaseClaimant};
use statedb_harness::state::{JournalMode, OpenMode, StateError, StateRuntime, STATE_DB_FILENAME};
use statedb_harness::state_db::{open_existing, try_init};

/// The reconcile's own bookkeeping tables in `home`'s DB: there once a reconcile recorded
/// the rollout directories.
fn seen_tables(home: &std::path::Path) -> i64 {
    Connection::open(home.join(STATE_DB_FILENAME))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'statedb_harness_seen_%'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// A waiter returns at the owner's completion, without stealing the lease or waiting out
/// its timeout, and without walking the home (what the owner's backfill just scanned).
#[test]
fn try_init_waits_for_concurrent_startup_backfill() {
    let (home, _) = home_with(3, 0);
    let c = cfg(home.path());
    let owner_ctx = ctx("owner");
    let owner =
        StateRuntime::open(&owner_ctx, c.runtime.clone(), OpenMode::CreateAndMigrate).unwrap();
    let who = LeaseClaimant::fresh();
    assert!(owner.try_claim_backfill(&who, 60_000).unwrap());
    let waiter_cfg = cfg_with(home.path(), |t| {
        t.lease = Duration::from_secs(60);
        t.wait_timeout = Duration::from_secs(2);
    });
    let (sink, events) = statedb_harness::events::EventSink::memory();
    let waiter_ctx = ProcessContext::builder()
        .name("waiter")
        .events(sink)
        .build();
    let started = Instant::now();
    let waiter = std::thread::spawn(move || try_init(&waiter_ctx, &waiter_cfg));
    // Complete only once the waiter has seen `running` and started to wait.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.kind == "gate_waiting")
    {
        assert!(
            Instant::now() < deadline,
            "the waiter never started waiting"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    owner
        .fenced(FencedWrite::Complete, &who.owner_id, None, 60_000)
        .unwrap();
    let report = waiter
        .join()
        .unwrap()
        .expect("waiter must see the owner's completion");
    assert_eq!(report.status, BackfillStatus::Complete);
    assert!(
        !report.backfill.ran,
        "the waiter must not steal a live lease"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "returned without waiting out the timeout"
    );
    assert_eq!(seen_tables(home.path()), 0, "the waiter walked the home");
}

/// A process that starts on a DB whose backfill completed before it indexes, at startup,
/// rollouts that appeared since (once a first such start has recorded the directories);
/// the process that ran the backfill, having just scanned, leaves that to the listings.
/// Catches a startup that never reconciles, and one that walks the home again in the
/// process that has just scanned it.
#[test]
fn a_start_on_a_complete_db_indexes_rollouts_added_since() {
    let (home, _) = home_with(3, 0);
    let other = tempfile::tempdir().unwrap();
    let added = statedb_harness::fixture::generate_home(
        other.path(),
        &statedb_harness::fixture::FixtureOptions {
            threads: 1,
            seed: 8,
            ..Default::default()
        },
    )
    .unwrap();
    let harness_tables = || seen_tables(home.path());
    let owner = try_init(&ctx("owner"), &cfg(home.path())).unwrap();
    assert!(owner.backfill.ran);
    drop(owner);
    assert_eq!(
        harness_tables(),
        0,
        "the owner walked the home after its scan"
    );
    let second = try_init(&ctx("second"), &cfg(home.path())).unwrap();
    assert_eq!(second.attempts, 0, "the DB was complete");
    drop(second);
    assert_eq!(
        harness_tables(),
        2,
        "the second start recorded no directories"
    );

    let day = home.path().join("sessions/2031/05/06");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::copy(&added[0].path, day.join(added[0].path.file_name().unwrap())).unwrap();
    let third = try_init(&ctx("third"), &cfg(home.path())).unwrap();
    assert!(
        third.handle.get_thread(added[0].id).unwrap().is_some(),
        "the rollout added since was not indexed at startup"
    );
}

#[test]
fn try_init_times_out_waiting_for_stuck_startup_backfill() {
    let (home, _) = home_with(2, 0);
    let c = cfg_with(home.path(), |t| {
        t.lease = Duration::from_secs(60);
        t.wait_timeout = Duration::from_millis(300);
    });
    let owner =
        StateRuntime::open(&ctx("owner"), c.runtime.clone(), OpenMode::CreateAndMigrate).unwrap();
    assert!(owner
        .try_claim_backfill(&LeaseClaimant::fresh(), 60_000)
        .unwrap());
    let started = Instant::now();
    let err = try_init(&ctx("waiter"), &c).unwrap_err();
    let elapsed = started.elapsed();
    let text = err.to_string();
    assert!(err.is_timeout(), "{text}");
    assert!(
        text.contains("timed out waiting for state db backfill"),
        "{text}"
    );
    assert!(text.contains("(status: running)"), "{text}");
    assert!(text.contains("after 300ms"), "{text}");
    assert!(
        elapsed >= Duration::from_millis(300),
        "gave up early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(300 + 700),
        "overshot the timeout: {elapsed:?}"
    );
}

#[test]
fn backfill_resumes_from_watermark_after_stale_lease_and_marks_complete() {
    let (home, threads) = home_with(2, 0);
    let c = cfg(home.path());
    let rt = StateRuntime::open(&ctx("p"), c.runtime.clone(), OpenMode::CreateAndMigrate).unwrap();
    let mut marks: Vec<_> = threads
        .iter()
        .map(|t| (watermark_for(home.path(), &t.path), t.id))
        .collect();
    marks.sort();
    // A previous owner checkpointed the first file and then went silent 10 s ago.
    rt.read("test setup", |c| {
        c.execute(
            "UPDATE backfill_state SET status = 'running', last_watermark = ?1,
                updated_at = CAST(strftime('%s','now') AS INTEGER) - 10 WHERE id = 1",
            [&marks[0].0],
        )
    })
    .unwrap();
    let outcome = run_backfill(&rt, &c.timings).unwrap();
    assert!(outcome.ran);
    assert!(
        rt.get_thread(marks[0].1).unwrap().is_none(),
        "file behind the watermark is skipped"
    );
    assert!(
        rt.get_thread(marks[1].1).unwrap().is_some(),
        "file after the watermark is indexed"
    );
    let state = rt.backfill_state().unwrap();
    assert_eq!(state.status, BackfillStatus::Complete);
    assert_eq!(state.last_watermark.as_deref(), Some(marks[1].0.as_str()));
    assert!(state.last_success_at.is_some());
}

#[test]
fn claim_is_singleton_until_stale_and_blocked_when_complete() {
    let (home, _) = home_with(0, 0);
    let rt = StateRuntime::open(
        &ctx("p"),
        cfg(home.path()).runtime,
        OpenMode::CreateAndMigrate,
    )
    .unwrap();
    let a = LeaseClaimant::fresh();
    assert!(rt.try_claim_backfill(&a, 3_600_000).unwrap());
    assert!(!rt
        .try_claim_backfill(&LeaseClaimant::fresh(), 3_600_000)
        .unwrap());
    rt.read("age the lease", |c| {
        c.execute_batch(
            "UPDATE backfill_state SET updated_at = updated_at - 10000 WHERE id = 1;
             UPDATE statedb_harness_lease SET state_updated_at = state_updated_at - 10000,
                lease_expires_at_ms = lease_expires_at_ms - 10000000 WHERE id = 1;",
        )
    })
    .unwrap();
    let b = LeaseClaimant::fresh();
    assert!(
        rt.try_claim_backfill(&b, 10_000).unwrap(),
        "an expired lease is taken over"
    );
    rt.fenced(FencedWrite::Complete, &b.owner_id, None, 10_000)
        .unwrap();
    assert!(!rt
        .try_claim_backfill(&LeaseClaimant::fresh(), 3_600_000)
        .unwrap());
}

#[test]
fn codex_style_running_row_without_owner_columns_is_a_live_lease() {
    let (home, _) = home_with(0, 0);
    let rt = StateRuntime::open(
        &ctx("p"),
        cfg(home.path()).runtime,
        OpenMode::CreateAndMigrate,
    )
    .unwrap();
    rt.read("codex claim", |c| {
        c.execute(
            "UPDATE backfill_state SET status = 'running', updated_at = CAST(strftime('%s','now') AS INTEGER) WHERE id = 1",
            [],
        )
    })
    .unwrap();
    assert!(!rt
        .try_claim_backfill(&LeaseClaimant::fresh(), 60_000)
        .unwrap());
}

#[test]
fn stale_owners_checkpoint_and_completion_are_rejected_after_takeover() {
    let (home, _) = home_with(0, 0);
    let c = cfg(home.path());
    let a_rt =
        StateRuntime::open(&ctx("a"), c.runtime.clone(), OpenMode::CreateAndMigrate).unwrap();
    let a = LeaseClaimant::fresh();
    assert!(a_rt.try_claim_backfill(&a, 100).unwrap());
    // B's clock runs 5 s ahead, so A's 100 ms lease has expired for B: no sleep needed.
    let b_ctx = ProcessContext::builder()
        .name("b")
        .clock(Clock::skewed(5_000))
        .build();
    let b_rt = StateRuntime::open(&b_ctx, c.runtime.clone(), OpenMode::CreateAndMigrate).unwrap();
    let b = LeaseClaimant::fresh();
    assert!(b_rt.try_claim_backfill(&b, 100).unwrap());
    let err = a_rt
        .fenced(
            FencedWrite::Checkpoint,
            &a.owner_id,
            Some("sessions/zzz"),
            100,
        )
        .unwrap_err();
    assert!(matches!(err, StateError::LeaseLost { .. }), "{err}");
    let err = a_rt
        .fenced(
            FencedWrite::Complete,
            &a.owner_id,
            Some("sessions/zzz"),
            100,
        )
        .unwrap_err();
    assert!(matches!(err, StateError::LeaseLost { .. }), "{err}");
    let state = b_rt.backfill_state().unwrap();
    assert_eq!(state.status, BackfillStatus::Running);
    assert_eq!(state.last_watermark, None, "the stale owner moved nothing");
    assert_eq!(state.owner.unwrap().owner_id, b.owner_id);
}

#[test]
fn reads_succeed_while_another_connection_holds_the_write_lock() {
    let (home, _) = home_with(0, 0);
    let c = cfg(home.path());
    let rt = StateRuntime::open(&ctx("p"), c.runtime.clone(), OpenMode::CreateAndMigrate).unwrap();
    let blocker = Connection::open(home.path().join(STATE_DB_FILENAME)).unwrap();
    blocker
        .execute_batch(
            "BEGIN IMMEDIATE; UPDATE backfill_state SET updated_at = updated_at WHERE id = 1;",
        )
        .unwrap();
    let started = Instant::now();
    let state = rt.backfill_state().unwrap();
    assert_eq!(state.status, BackfillStatus::Pending);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a read queued behind the writer"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_missing_singleton_row_reads_as_pending_and_init_recreates_it() {
    let (home, _) = home_with(1, 0);
    let c = cfg(home.path());
    {
        let rt =
            StateRuntime::open(&ctx("p"), c.runtime.clone(), OpenMode::CreateAndMigrate).unwrap();
        rt.read("delete row", |c| {
            c.execute("DELETE FROM backfill_state", [])
        })
        .unwrap();
        let state = rt.backfill_state().unwrap();
        assert_eq!(state.status, BackfillStatus::Pending);
        assert!(!state.row_present);
    }
    let report = try_init(&ctx("q"), &c).unwrap();
    assert_eq!(report.status, BackfillStatus::Complete);
    assert!(report.handle.backfill_state().unwrap().row_present);
}

#[test]
fn tables_and_columns_of_a_newer_version_are_tolerated() {
    let (home, _) = home_with(1, 0);
    let c = cfg(home.path());
    {
        let rt =
            StateRuntime::open(&ctx("p"), c.runtime.clone(), OpenMode::CreateAndMigrate).unwrap();
        rt.read("fake newer", |c| {
            c.execute_batch(
                "CREATE TABLE statedb_harness_from_the_future (x INTEGER);
                 ALTER TABLE threads ADD COLUMN from_the_future TEXT NOT NULL DEFAULT 'x';",
            )
        })
        .unwrap();
    }
    let report = try_init(&ctx("q"), &c).expect("a DB migrated by a newer version opens");
    assert_eq!(report.status, BackfillStatus::Complete);
}

#[test]
fn delete_journal_mode_is_honoured() {
    let (home, _) = home_with(0, 0);
    let mut c = cfg(home.path());
    c.runtime.journal_mode = JournalMode::Delete;
    let report = try_init(&ctx("p"), &c).unwrap();
    assert_eq!(report.handle.journal_mode().unwrap(), "delete");
    assert_eq!(
        report.handle.integrity_check().unwrap(),
        vec!["ok".to_string()]
    );
}

#[test]
fn eight_concurrent_inits_on_one_fresh_home_all_succeed_with_one_row_per_rollout() {
    let (home, _) = home_with(2_000, 0);
    let c = cfg_with(home.path(), |t| {
        t.lease = Duration::from_secs(5);
        t.wait_timeout = Duration::from_secs(60);
    });
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || try_init(&ProcessContext::plain(&format!("p{i}")), &c))
        })
        .collect();
    let reports: Vec<_> = workers
        .into_iter()
        .map(|w| w.join().unwrap().unwrap())
        .collect();
    let ran = reports.iter().filter(|r| r.backfill.ran).count();
    assert_eq!(ran, 1, "exactly one process ran the backfill");
    assert_eq!(reports[0].handle.thread_count().unwrap(), 2_000);
}

#[test]
fn open_existing_on_a_missing_db_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(&dir.path().join("not-yet"));
    assert!(open_existing(&ctx("p"), &c).unwrap().is_none());
    assert!(!dir.path().join("not-yet").exists());
}

#[test]
fn open_existing_on_an_incomplete_db_is_none_and_writes_nothing() {
    let (home, _) = home_with(1, 0);
    let c = cfg(home.path());
    drop(StateRuntime::open(&ctx("p"), c.runtime.clone(), OpenMode::CreateAndMigrate).unwrap());
    let before = std::fs::read(home.path().join(STATE_DB_FILENAME)).unwrap();
    assert!(open_existing(&ctx("q"), &c).unwrap().is_none());
    assert_eq!(
        std::fs::read(home.path().join(STATE_DB_FILENAME)).unwrap(),
        before
    );
}

/// Opening without migrating still checks the tables are there: a complete DB whose
/// `threads` table is gone is refused by name, not answered from, and left as it was.
#[test]
fn open_existing_refuses_a_db_without_its_threads_table() {
    let (home, _) = home_with(1, 0);
    let c = cfg(home.path());
    drop(try_init(&ctx("p"), &c).unwrap());
    let db = home.path().join(STATE_DB_FILENAME);
    Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE threads")
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    match open_existing(&ctx("q"), &c) {
        Err(
            e @ StateError::MissingSchema {
                table: "threads", ..
            },
        ) => {
            assert!(e.to_string().contains(&db.display().to_string()), "{e}")
        }
        Err(e) => panic!("expected MissingSchema for threads, got {e}"),
        Ok(h) => panic!("opened a DB without threads: {}", h.is_some()),
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn a_second_handle_in_one_process_is_refused() {
    let (home, _) = home_with(1, 0);
    let c = cfg(home.path());
    let p = ctx("p");
    let _first = try_init(&p, &c).unwrap();
    let err = try_init(&p, &c).unwrap_err();
    assert!(
        err.to_string().contains("already holds a state db handle"),
        "{err}"
    );
}

#[test]
fn a_db_file_that_is_not_a_database_is_kept_aside_and_the_index_rebuilt() {
    let (home, _) = home_with(1, 0);
    let db = home.path().join(STATE_DB_FILENAME);
    std::fs::write(
        &db,
        b"this is not sqlite, just some bytes that are long enough to be a header.....",
    )
    .unwrap();
    let before = std::fs::read(&db).unwrap();
    let report = try_init(&ctx("p"), &cfg(home.path())).expect("startup recovers");
    assert_eq!(
        report.handle.thread_count().unwrap(),
        1,
        "rebuilt from the rollouts"
    );
    let backups: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state_5.sqlite.corrupt-")
        })
        .collect();
    assert_eq!(backups.len(), 1, "one timestamped backup next to the DB");
    assert_eq!(
        std::fs::read(backups[0].path()).unwrap(),
        before,
        "the damaged file is kept byte for byte"
    );
}

#[test]
fn an_unknown_backfill_status_is_rebackfilled_instead_of_wedging_startup() {
    let (home, _) = home_with(2, 0);
    let c = cfg(home.path());
    drop(StateRuntime::open(&ctx("p"), c.runtime.clone(), OpenMode::CreateAndMigrate).unwrap());
    let raw = Connection::open(home.path().join(STATE_DB_FILENAME)).unwrap();
    raw.execute(
        "UPDATE backfill_state SET status = 'rebuilding' WHERE id = 1",
        [],
    )
    .unwrap();
    let report = try_init(&ctx("q"), &c).unwrap();
    assert_eq!(report.status, BackfillStatus::Complete);
    assert!(report.backfill.ran);
    assert_eq!(report.handle.thread_count().unwrap(), 2);
}

#[test]
fn garbled_and_empty_rollouts_are_counted_failed_never_fatal() {
    let (home, threads) = home_with(3, 0);
    std::fs::write(&threads[0].path, b"").unwrap();
    let dir = threads[1].path.parent().unwrap();
    std::fs::write(
        dir.join("rollout-2026-01-01T00-00-00-not-a-uuid.jsonl"),
        b"{garbage\n",
    )
    .unwrap();
    let report = try_init(&ctx("p"), &cfg(home.path())).unwrap();
    assert_eq!(report.backfill.scanned, 4);
    assert_eq!(report.backfill.failed, 2);
    assert_eq!(report.backfill.upserted, 2);
    assert_eq!(report.status, BackfillStatus::Complete);
}

#[test]
fn a_torn_last_line_does_not_fail_the_file() {
    let (home, threads) = home_with(1, 0);
    let mut bytes = std::fs::read(&threads[0].path).unwrap();
    bytes.extend_from_slice(b"{\"timestamp\":\"2026-01-27T12:00:00.000Z\",\"type\":\"event_ms");
    std::fs::write(&threads[0].path, bytes).unwrap();
    let report = try_init(&ctx("p"), &cfg(home.path())).unwrap();
    assert_eq!(report.backfill.failed, 0);
    assert!(report.handle.get_thread(threads[0].id).unwrap().is_some());
}

#[test]
fn a_killed_owner_leaves_the_lease_and_a_waiter_takes_it_over_after_expiry() {
    use statedb_harness::failpoints::{DeathMode, FailpointSet};
    let (home, _) = home_with(450, 0);
    let c = cfg_with(home.path(), |t| {
        t.lease = Duration::from_millis(300);
        t.wait_timeout = Duration::from_secs(5);
    });
    let dying = ProcessContext::builder()
        .name("dying")
        .failpoints(FailpointSet::new(
            vec!["backfill.after_batch@1=kill".parse().unwrap()],
            None,
            DeathMode::Simulated,
        ))
        .build();
    let err = try_init(&dying, &c).unwrap_err();
    assert!(err.to_string().contains("killed"), "{err}");
    let started = Instant::now();
    let report = try_init(&ctx("next"), &c).unwrap();
    assert!(
        report.backfill.ran,
        "the next process takes the expired lease over"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "took over a live lease"
    );
    assert_eq!(report.handle.thread_count().unwrap(), 450);
}

#[test]
fn the_heartbeat_keeps_a_paused_owners_lease_live_past_its_length() {
    use statedb_harness::failpoints::{DeathMode, FailpointSet};
    let (home, _) = home_with(5, 0);
    let release = tempfile::tempdir().unwrap();
    let c = cfg_with(home.path(), |t| {
        t.lease = Duration::from_millis(150);
        t.wait_timeout = Duration::from_millis(600);
    });
    let (sink, events) = statedb_harness::events::EventSink::memory();
    let owner = ProcessContext::builder()
        .name("owner")
        .events(sink)
        .failpoints(FailpointSet::new(
            vec!["backfill.after_claim=pause(10s)".parse().unwrap()],
            Some(release.path().to_path_buf()),
            DeathMode::Simulated,
        ))
        .build();
    let owner_cfg = c.clone();
    let owner_thread = std::thread::spawn(move || try_init(&owner, &owner_cfg));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.kind == "failpoint_fired")
    {
        assert!(Instant::now() < deadline, "owner never claimed");
        std::thread::sleep(Duration::from_millis(2));
    }
    // 600ms is four lease lengths: only heartbeats keep the lease from expiring.
    let err = try_init(&ctx("waiter"), &c).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    std::fs::write(
        FailpointSet::release_file(release.path(), "owner", "backfill.after_claim"),
        b"",
    )
    .unwrap();
    let report = owner_thread.join().unwrap().unwrap();
    assert!(report.backfill.ran);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.kind == "fenced_write" && e.data["write"] == "heartbeat"),
        "heartbeats were written"
    );
}

/// WAL is the default (as in Codex): read from the DB file by a connection of our own, not
/// from the handle. Catches a journal-mode pragma that asks for nothing SQLite knows (the
/// file would stay in rollback-journal mode).
#[test]
fn wal_is_the_default_journal_mode_of_the_file() {
    let (home, _) = home_with(1, 0);
    let report = try_init(&ctx("wal"), &cfg(home.path())).unwrap();
    let db = report.handle.db_path().to_path_buf();
    drop(report);
    let conn = Connection::open(&db).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// A rollout whose `session_meta` names no model provider is indexed under Codex's default
/// provider, `openai`. Catches any other default.
#[test]
fn a_rollout_without_provider_is_indexed_under_openai() {
    let (home, threads) = home_with(1, 0);
    let path = &threads[0].path;
    let text = std::fs::read_to_string(path).unwrap();
    let (head, rest) = text.split_once('\n').unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(head).unwrap();
    let payload = meta["payload"].as_object_mut().unwrap();
    assert!(payload.remove("model_provider").is_some());
    std::fs::write(path, format!("{meta}\n{rest}")).unwrap();
    let report = try_init(&ctx("provider"), &cfg(home.path())).unwrap();
    let db = report.handle.db_path().to_path_buf();
    drop(report);
    let conn = Connection::open(&db).unwrap();
    let provider: String = conn
        .query_row(
            "SELECT model_provider FROM threads WHERE id = ?1",
            [threads[0].id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(provider, "openai");
}

/// A DB that stays locked for the whole start: startup retries a bounded number of times,
/// backing off between attempts, and then fails, naming the lock, instead of hanging the
/// process. (Bounded here by a generous deadline only to turn a hang into a failure.)
/// Catches retrying forever, giving up at the first busy open, and a backoff that does
/// not grow: five attempts of the 50 ms busy timeout with 20 + 40 + 80 + 160 ms between
/// them take at least 550 ms; giving up at once takes about 50, a shrinking backoff 290.
#[test]
fn startup_on_a_db_locked_throughout_gives_up_with_busy() {
    let (home, _) = home_with(1, 0);
    let mut c = cfg(home.path());
    c.runtime.journal_mode = JournalMode::Delete;
    c.runtime.busy_timeout = Duration::from_millis(50);
    drop(try_init(&ctx("make"), &c).unwrap());
    let holder = Connection::open(home.path().join(STATE_DB_FILENAME)).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let late = c.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        let result = try_init(&ctx("late"), &late).map(|_| ());
        let _ = tx.send((result, started.elapsed()));
    });
    let (result, took) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("startup on a locked DB never gave up");
    assert!(
        took >= Duration::from_millis(500),
        "gave up after {took:?}, without backing off between five attempts"
    );
    let err = result
        .expect_err("the DB was locked throughout")
        .to_string();
    assert!(err.contains("locked") || err.contains("busy"), "{err}");
    holder.execute_batch("ROLLBACK").unwrap();
}

/// An archived row's `archived_at` (seconds, Codex's column) reads back as milliseconds.
/// Catches a wrong unit conversion on read.
#[test]
fn archived_at_seconds_read_back_as_milliseconds() {
    let (home, threads) = home_with(0, 1);
    let report = try_init(&ctx("archived"), &cfg(home.path())).unwrap();
    let id = threads[0].id;
    report
        .handle
        .read("test setup", |c| {
            c.execute(
                "UPDATE threads SET archived_at = 1700000000 WHERE id = ?1",
                [id.to_string()],
            )
        })
        .unwrap();
    let row = report.handle.get_thread(id).unwrap().expect("row");
    assert_eq!(row.archived_at_ms, Some(1_700_000_000_000));
}
