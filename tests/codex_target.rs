//! The catalog on the real Codex, through the command line: the conformance matrix
//! regenerated and compared with the committed snapshot (so CI proves the Codex run
//! happened and that no verdict changed), at least 25 scenarios run rather than skipped,
//! every skip a declared capability gap, and `run --target codex --format json` in the
//! reference's shape plus `"target"`.

mod codex_support;

use std::path::Path;
use std::process::Command;

use codex_support::codex_or_skip;

const BIN: &str = env!("CARGO_BIN_EXE_statedb-harness");
const SNAPSHOT: &str = "conformance/codex-0.169.0.json";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn conformance_matches_the_committed_snapshot_and_runs_enough_of_the_catalog() {
    let Some(bin) = codex_or_skip("conformance_matches_the_committed_snapshot") else {
        return;
    };
    let out = Command::new(BIN)
        .current_dir(repo())
        .args(["conformance", "--json", "--check", SNAPSHOT, "--codex-bin"])
        .arg(bin.path())
        .output()
        .expect("run conformance");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "conformance differs from {SNAPSHOT}:\n{stderr}"
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).expect("matrix JSON");
    assert_eq!(m["codex_version"], "0.169.0");
    let rows = m["rows"].as_array().expect("rows");
    assert!(
        rows.iter().all(|r| r["reference"] == "pass"),
        "reference column must be all pass"
    );
    let ran = rows.iter().filter(|r| r["codex"] != "skip").count();
    assert!(ran >= 25, "only {ran} scenarios ran on Codex");
    for r in rows.iter().filter(|r| r["codex"] == "skip") {
        let why = r["difference"].as_str().unwrap_or_default();
        assert!(
            why.starts_with("not observable on this target:")
                || why.starts_with("slow on this target:"),
            "{}: skipped for an undeclared reason: {why}",
            r["file"]
        );
    }
}

#[test]
fn run_target_codex_reports_in_the_reference_shape_plus_target() {
    let Some(bin) = codex_or_skip("run_target_codex_reports_in_the_reference_shape") else {
        return;
    };
    let out = Command::new(BIN)
        .current_dir(repo())
        .args([
            "run",
            "scenarios/lookup_duplicate_id_file_verified.toml",
            "scenarios/lookup_stale_row_other_thread.toml",
            "--target",
            "codex",
            "--format",
            "json",
            "--seed",
            "1",
            "--codex-bin",
        ])
        .arg(bin.path())
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    assert_eq!(v["target"], "codex");
    assert_eq!(v["codex_version"], "0.169.0");
    let s = v["scenarios"].as_array().unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["status"], "pass", "{}", s[0]);
    assert_eq!(s[0]["faults"][0]["kind"], "duplicate_id_file");
    assert!(
        s[0]["not_observed"]
            .as_array()
            .is_some_and(|n| !n.is_empty()),
        "reference-only expectations are named"
    );
    // A Codex failure fails the run, with its bundle and Codex's stderr kept.
    assert_eq!(s[1]["status"], "fail", "{}", s[1]);
    assert_eq!(out.status.code(), Some(1));
    let bundle = s[1]["bundle"].as_str().expect("bundle");
    assert!(Path::new(bundle).join("codex-stderr.txt").is_file());
    // Its replay command runs Codex again (`replay` drives the reference only).
    let replay = s[1]["replay"].as_str().expect("replay");
    assert_eq!(
        replay,
        "statedb-harness run scenarios/lookup_stale_row_other_thread.toml --target codex --seed 1 --keep"
    );
    let replay_txt = std::fs::read_to_string(Path::new(bundle).join("REPLAY.txt")).unwrap();
    assert!(replay_txt.contains(replay), "{replay_txt}");
    let _ = std::fs::remove_dir_all(bundle);
}

#[test]
fn a_missing_codex_is_a_usage_error_naming_the_install_command() {
    let out = Command::new(BIN)
        .current_dir(repo())
        .args([
            "run",
            "scenarios/",
            "--target",
            "codex",
            "--codex-bin",
            "/nonexistent/codex",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("npm ci --prefix tools/codex"), "{stderr}");
}
