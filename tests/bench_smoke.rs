//! The benchmarks' smallest configuration runs end to end and yields a well-formed report
//! (through the library and through the real CLI). Nothing here asserts a timing.

use std::path::PathBuf;
use std::process::Command;

use statedb_harness::bench::{run_benchmarks, BenchOptions, BenchReport, ContentionOptions};

const BIN: &str = env!("CARGO_BIN_EXE_statedb-harness");

fn tiny(work_dir: &std::path::Path) -> BenchOptions {
    BenchOptions {
        sizes: vec![120, 200],
        repeats: 1,
        lookup_samples: 2,
        gate_samples: 2,
        work_dir: Some(work_dir.to_path_buf()),
        binary: Some(PathBuf::from(BIN)),
        contention: Some(ContentionOptions {
            binary: PathBuf::from(BIN),
            procs: vec![1, 2],
            size: 200,
        }),
        ..BenchOptions::quick()
    }
}

fn r_sizes(p: &[statedb_harness::bench::init_process::InitProcessFigures]) -> Vec<usize> {
    p.iter().map(|f| f.size).collect()
}

fn finite_positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn assert_well_formed(r: &BenchReport) {
    assert!(r.errors.is_empty(), "errors: {:?}", r.errors);
    assert!(r.check_failures.is_empty(), "{:?}", r.check_failures);
    assert_eq!(r.sizes, vec![120, 200]);
    assert_eq!(r.homes.len(), 2);
    for (family, sizes) in [
        (
            "backfill",
            r.backfill.iter().map(|b| b.size).collect::<Vec<_>>(),
        ),
        ("gate", r.startup_gate.iter().map(|g| g.size).collect()),
        ("pages", r.pages.iter().map(|p| p.size).collect()),
        ("lookup", r.lookup.iter().map(|l| l.size).collect()),
    ] {
        assert_eq!(sizes, vec![120, 200], "{family}");
    }
    for b in &r.backfill {
        assert!(finite_positive(b.reference_rollouts_per_sec));
        assert!(finite_positive(b.same_work_baseline_rollouts_per_sec));
        assert!(finite_positive(b.head_only_baseline_rollouts_per_sec));
        assert!(b.same_work_ratio.is_some_and(finite_positive));
        assert!(b.head_only_ratio.is_some_and(finite_positive));
        assert_eq!(b.reference_secs.samples, 1);
    }
    for g in &r.startup_gate {
        assert!(g.ratio.is_some_and(finite_positive));
        assert_eq!(g.try_init_us.samples, 2);
        for part in [&g.quick_check_us, &g.reconcile_us] {
            assert!(
                part.samples == 2 && finite_positive(part.median),
                "{part:?}"
            );
        }
    }
    for p in &r.pages {
        assert_eq!(p.page_size, 25);
        for s in [&p.first_page_ms, &p.last_page_ms] {
            assert!(s.samples >= 1 && finite_positive(s.median), "{s:?}");
        }
    }
    for l in &r.lookup {
        for s in [
            &l.db_hit_us,
            &l.day_probe_us,
            &l.full_walk_us,
            &l.not_found_us,
        ] {
            assert!(s.samples >= 1 && s.min <= s.median && s.median <= s.max);
        }
    }
    let growth = r
        .lookup_growth
        .as_ref()
        .expect("two sizes give a growth row");
    assert_eq!((growth.from_size, growth.to_size), (120, 200));
    assert!(growth.db_hit.is_some() && growth.not_found.is_some());

    let c = r.contention.as_ref().expect("contention measured");
    assert_eq!(c.size, 200);
    assert_eq!(
        c.runs.iter().map(|run| run.procs).collect::<Vec<_>>(),
        [1, 2]
    );
    for run in &c.runs {
        assert!(run.all_ready && run.exactly_one_ran, "{run:?}");
        assert_eq!(run.ran_counts, vec![1]);
    }
    assert!(!r.harness_overhead.measured);
    assert!(r.harness_overhead.note.starts_with("not measured"));
    assert!(
        r.goals.iter().any(|g| g.met.is_none()),
        "the 100k goal is n/a"
    );
}

#[test]
fn tiny_run_gives_a_well_formed_report_and_cleans_up() {
    let work = tempfile::tempdir().unwrap();
    let report = run_benchmarks(&tiny(work.path()));
    assert_well_formed(&report);
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "backfill",
        "startup_gate",
        "lookup",
        "lookup_growth",
        "contention",
        "init_process",
        "pages",
        "harness_overhead",
        "peers",
    ] {
        assert!(!json[key].is_null(), "{key} missing from the JSON");
    }
    let table = report.render_table();
    assert!(table.contains("Backfill (median") && table.contains("Harness overhead: not measured"));
    // Every size ran as a real init process, observed from outside.
    assert_eq!(r_sizes(&report.init_process), vec![120, 200]);
    assert!(report
        .init_process
        .iter()
        .all(|p| p.rss_peak_mb > 0.0 && p.db_size_mb > 0.0));
    // No Codex size in this run: skipped, with the reason.
    assert!(report.peers.codex.skipped.is_some());
    // The workspace is gone: nothing is left behind in the work dir.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[test]
fn cli_json_is_well_formed_and_bad_arguments_exit_2() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "bench",
            "--json",
            "--sizes",
            "50",
            "--repeats",
            "1",
            "--procs",
            "1,2",
        ])
        .arg("--work-dir")
        .arg(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The catalog it measures provokes the layer's error logs on purpose: none reach stderr.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        json["harness_overhead"]["measured"] == true && !err.contains("ERROR"),
        "{err}"
    );
    assert_eq!(json["sizes"], serde_json::json!([50]));
    assert_eq!(json["contention"]["size"], 50);
    assert_eq!(json["contention"]["runs"][1]["exactly_one_ran"], true);
    assert!(json["backfill"][0]["same_work_ratio"].as_f64().is_some());
    assert!(json["backfill"][0]["same_work_baseline_secs"]["median"]
        .as_f64()
        .is_some());
    assert!(json["lookup"][0]["db_hit_raw_us"]["median"]
        .as_f64()
        .is_some());
    assert!(json["lookup"][0]["db_hit_ratio"].as_f64().is_some());
    for page in ["first_page_ms", "last_page_ms"] {
        assert!(
            json["pages"][0][page]["median"].as_f64().is_some(),
            "{page}"
        );
    }
    for part in ["quick_check_us", "reconcile_us"] {
        assert!(
            json["startup_gate"][0][part]["median"].as_f64().is_some(),
            "{part}"
        );
    }
    assert!(json["init_process"][0]["rss_peak_mb"].as_f64().is_some());
    assert!(
        json["lookup_growth"].is_null(),
        "one size has no growth row"
    );

    for bad in [
        vec!["bench", "--sizes", "0"],
        vec!["bench", "--repeats", "0"],
        vec!["bench", "--work-dir", "/nonexistent/statedb-bench"],
    ] {
        let out = Command::new(BIN).args(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

/// The pages are measured in a fresh `bench-pages` process: it measures the home the DB
/// indexes (its size counted from the DB, not taken on trust), and refuses a home without
/// a DB instead of creating one.
#[test]
fn bench_pages_measures_a_complete_db_in_its_own_process_and_refuses_a_missing_one() {
    use statedb_harness::bench::workspace::bench_config;
    use statedb_harness::fixture::{generate_home, FixtureOptions};
    use statedb_harness::process::ProcessContext;

    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    let db_dir = work.path().join("db");
    std::fs::create_dir_all(&db_dir).unwrap();
    generate_home(&home, &FixtureOptions::sized(40, 3, 5)).unwrap();
    let pages = |sqlite_home: &std::path::Path| {
        Command::new(BIN)
            .args([
                "bench-pages",
                "--page-samples",
                "4",
                "--handle-samples",
                "2",
            ])
            .arg("--codex-home")
            .arg(&home)
            .arg("--sqlite-home")
            .arg(sqlite_home)
            .output()
            .unwrap()
    };

    let missing = pages(&db_dir);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains(&db_dir.join("state_5.sqlite").display().to_string()) && err.contains("init"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&db_dir).unwrap().count(),
        0,
        "nothing created"
    );

    statedb_harness::state_db::try_init(
        &ProcessContext::plain("setup"),
        &bench_config(&home, &db_dir),
    )
    .unwrap();
    let out = pages(&db_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["size"], 40,
        "the 40 active threads, not the 3 archived"
    );
    assert_eq!(json["first_page_ms"]["samples"], 4);
    assert_eq!(json["last_page_ms"]["samples"], 4);
    assert_eq!(json["first_page_new_handle_ms"]["samples"], 2);
}
