//! `audit` without Codex: exit codes (0 clean, 1 findings, 2 error), every finding kind on a
//! damaged harness home, nothing created by a read-only audit, and `--repair` backing up
//! first and leaving only what it must not fix.

mod common;

use std::process::Command;

use common::{cfg, ctx, files_under, home_with};
use statedb_harness::state_db::try_init;

fn audit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_statedb-harness"))
        .arg("audit")
        .args(args)
        .env_remove("CODEX_HOME")
        .env_remove("CODEX_SQLITE_HOME")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_exits_2_naming_the_path() {
    let (code, _, err) = audit(&["--codex-home", "/nonexistent/home"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/home"), "{err}");
    let (home, _) = home_with(1, 0);
    let (code, _, err) = audit(&["--codex-home", home.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("state_5.sqlite"), "{err}");
    assert!(
        !home.path().join("state_5.sqlite").exists(),
        "audit created a DB"
    );
}

#[test]
fn findings_are_reported_read_only_and_repaired_after_a_backup() {
    let (home, threads) = home_with(4, 1);
    let h = home.path().to_str().unwrap();
    drop(try_init(&ctx("init"), &cfg(home.path())).unwrap());
    assert_eq!(audit(&["--codex-home", h]).0, 0, "a fresh index is clean");

    let outside = home.path().join("elsewhere/rollout.jsonl");
    let dup = home.path().join("sessions/copies");
    std::fs::create_dir_all(&dup).unwrap();
    std::fs::copy(
        &threads[3].path,
        dup.join(threads[3].path.file_name().unwrap()),
    )
    .unwrap();
    std::fs::write(
        home.path().join(
            "sessions/rollout-2026-01-01T00-00-00-019bff00-0000-7000-8000-00000000beef.jsonl",
        ),
        b"not json\n",
    )
    .unwrap();
    rusqlite::Connection::open(home.path().join("state_5.sqlite"))
        .unwrap()
        .execute_batch(&format!(
            "UPDATE threads SET rollout_path = '{}' WHERE id = '{}';
             UPDATE threads SET rollout_path = '{}' WHERE id = '{}';
             UPDATE backfill_state SET status = 'running', updated_at = 0;",
            outside.display(),
            threads[0].id,
            home.path().join("sessions/gone.jsonl").display(),
            threads[1].id,
        ))
        .unwrap();
    let before = files_under(home.path());
    let (code, out, _) = audit(&["--codex-home", h, "--json"]);
    assert_eq!(code, 1, "{out}");
    for kind in [
        "row_points_outside_home",
        "row_points_at_missing_file",
        "duplicate_files",
        "unverifiable_head",
        "\"backfill\"",
    ] {
        assert!(out.contains(kind), "missing {kind}: {out}");
    }
    assert_eq!(
        files_under(home.path()),
        before,
        "a read-only audit changed files"
    );

    let (code, out, _) = audit(&["--codex-home", h, "--repair"]);
    assert_eq!(
        code, 1,
        "duplicates, unverifiable heads and the expired lease stay: {out}"
    );
    let backup = out
        .lines()
        .find_map(|l| l.strip_prefix("backup: "))
        .unwrap();
    let saved = std::path::Path::new(backup).join("state_5.sqlite");
    assert!(saved.is_file());
    assert!(out.contains(&format!("fixed: {}", threads[0].id)), "{out}");
    assert!(out.contains(&format!("fixed: {}", threads[1].id)), "{out}");
    assert!(!out.contains("outside this home"), "{out}");
    assert!(out.contains("files claim this id"), "{out}");
}
