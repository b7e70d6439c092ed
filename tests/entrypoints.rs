//! Entrypoints: each kind opens the DB exactly once and every consumer works on that one
//! handle; the app-server refuses to start without a DB while the others run from the
//! files; the consumer-lazy-open seeded bug shows up as a refused open.

mod common;

use common::{cfg, count_events, ctx, ctx_with_variant, home_with};
use statedb_harness::entrypoints::{run_entrypoint, EntrypointKind, Workload, CONSUMERS};
use statedb_harness::events::kinds;
use statedb_harness::state::STATE_DB_FILENAME;
use statedb_harness::state_db::try_init;
use statedb_harness::variant::Variant;

fn names(report: &statedb_harness::entrypoints::EntrypointReport) -> Vec<&str> {
    report
        .consumers
        .iter()
        .map(|c| c.consumer.as_str())
        .collect()
}

#[test]
fn every_entrypoint_opens_the_db_once_and_every_consumer_is_ok() {
    for kind in EntrypointKind::ALL {
        let (home, threads) = home_with(4, 2);
        let ctx = ctx(kind.name());
        let workload = Workload::from_fixture(&threads);
        assert_eq!(workload.thread_ids.len(), 6);
        assert_eq!(workload.names.len(), 4);
        let report = run_entrypoint(&ctx, &cfg(home.path()), kind, &workload);
        assert_eq!(report.kind, kind);
        assert!(report.handle_available, "{report:#?}");
        assert_eq!(report.db_opens, 1, "{report:#?}");
        assert_eq!(report.refused_opens, 0, "{report:#?}");
        assert_eq!(names(&report), CONSUMERS);
        assert!(report.all_ok(), "{report:#?}");
        let sessions = report.consumer("thread_manager.sessions").unwrap();
        assert!(sessions.detail.contains("resumed 6 of 6"), "{sessions:?}");
        let resume = report.consumer("resume_last").unwrap();
        assert!(resume.detail.contains("via state db"), "{resume:?}");
    }
}

#[test]
fn entrypoints_run_one_after_another_on_one_home() {
    let (home, threads) = home_with(3, 1);
    let workload = Workload::from_fixture(&threads);
    for kind in EntrypointKind::ALL {
        let ctx = ctx(kind.name());
        let report = run_entrypoint(&ctx, &cfg(home.path()), kind, &workload);
        assert_eq!((report.db_opens, report.refused_opens), (1, 0));
        assert!(report.all_ok(), "{report:#?}");
        // The handle was released when the entrypoint returned: the process may open again.
        assert!(try_init(&ctx, &cfg(home.path())).is_ok());
        assert_eq!(ctx.refused_opens(), 0);
    }
}

/// The seeded bug is detectable from every entrypoint: the thread store's own open is
/// refused and logged, even though every consumer still "works" (from the files).
#[test]
fn consumer_lazy_open_variant_is_detected_by_every_entrypoint() {
    for kind in EntrypointKind::ALL {
        let (home, threads) = home_with(3, 1);
        let (ctx, events) = ctx_with_variant(kind.name(), Variant::ConsumerLazyOpen);
        let report = run_entrypoint(
            &ctx,
            &cfg(home.path()),
            kind,
            &Workload::from_fixture(&threads),
        );
        assert!(report.refused_opens >= 1, "{report:#?}");
        assert_eq!(report.db_opens, 1, "the second open never got a handle");
        assert!(count_events(&events, kinds::DUPLICATE_OPEN) >= 1);
        assert!(
            report.all_ok(),
            "the bug is silent functionally: {report:#?}"
        );
    }
}

/// Makes the DB unusable in a way startup cannot repair: `state_5.sqlite` is a directory
/// (a damaged file would be set aside and rebuilt). Returns the bytes of a marker inside it.
fn corrupt_db(home: &std::path::Path) -> Vec<u8> {
    let garbage = b"this is not a sqlite database, just bytes".repeat(200);
    let dir = home.join(STATE_DB_FILENAME);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("marker"), &garbage).unwrap();
    garbage
}

#[test]
fn app_server_does_not_start_without_a_state_db() {
    let (home, threads) = home_with(2, 0);
    let garbage = corrupt_db(home.path());
    let ctx = ctx("app-server");
    let report = run_entrypoint(
        &ctx,
        &cfg(home.path()),
        EntrypointKind::AppServer,
        &Workload::from_fixture(&threads),
    );
    assert!(!report.handle_available);
    assert_eq!(report.refused_opens, 0);
    assert_eq!(names(&report), CONSUMERS);
    for c in &report.consumers {
        assert!(!c.ok, "{c:?}");
        assert!(
            c.detail
                .contains("failed to initialize sqlite state runtime under"),
            "{c:?}"
        );
    }
    assert_eq!(
        std::fs::read(home.path().join(STATE_DB_FILENAME).join("marker")).unwrap(),
        garbage,
        "the unreadable DB is left as it was"
    );
}

#[test]
fn other_entrypoints_run_from_the_files_without_a_state_db() {
    for kind in [
        EntrypointKind::Cli,
        EntrypointKind::Exec,
        EntrypointKind::McpServer,
    ] {
        let (home, threads) = home_with(3, 1);
        let garbage = corrupt_db(home.path());
        let ctx = ctx(kind.name());
        let report = run_entrypoint(
            &ctx,
            &cfg(home.path()),
            kind,
            &Workload::from_fixture(&threads),
        );
        assert!(!report.handle_available);
        assert_eq!(report.refused_opens, 0);
        for c in &report.consumers {
            if c.consumer == "memory_reset" {
                assert!(!c.ok);
                assert_eq!(c.detail, "state db unavailable for memory reset");
            } else {
                assert!(c.ok, "{kind}: {c:?}");
            }
        }
        let resume = report.consumer("resume_last").unwrap();
        assert!(resume.detail.contains("db_unavailable"), "{resume:?}");
        let read = report.consumer("thread_store.read_thread").unwrap();
        assert!(read.detail.contains("4 from rollouts"), "{read:?}");
        assert_eq!(
            std::fs::read(home.path().join(STATE_DB_FILENAME).join("marker")).unwrap(),
            garbage
        );
    }
}

#[test]
fn entrypoint_kind_names_parse_and_serialize() {
    for kind in EntrypointKind::ALL {
        assert_eq!(kind.name().parse::<EntrypointKind>().unwrap(), kind);
        assert_eq!(
            serde_json::to_value(kind).unwrap(),
            serde_json::Value::from(kind.name())
        );
    }
    assert_eq!(
        "app-server".parse::<EntrypointKind>().unwrap(),
        EntrypointKind::AppServer
    );
    let err = "tui".parse::<EntrypointKind>().unwrap_err();
    assert_eq!(
        err,
        "unknown entrypoint 'tui' (valid: cli, exec, app_server, mcp_server)"
    );
}

#[test]
fn report_serializes_with_its_counters() {
    let (home, threads) = home_with(1, 0);
    let report = run_entrypoint(
        &ctx("mcp"),
        &cfg(home.path()),
        EntrypointKind::McpServer,
        &Workload::from_fixture(&threads),
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["kind"], "mcp_server");
    assert_eq!(json["handle_available"], true);
    assert_eq!(json["db_opens"], 1);
    assert_eq!(json["refused_opens"], 0);
    assert_eq!(json["consumers"].as_array().unwrap().len(), CONSUMERS.len());
    assert_eq!(json["consumers"][0]["consumer"], "thread_store.read_thread");
}
