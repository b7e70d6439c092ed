//! Where the DB lives, through the real binary: `CODEX_SQLITE_HOME` and `--sqlite-home`
//! (the flag wins) are honoured by every command that opens the DB, the desktop layout
//! `<codex_home>/sqlite/state_5.sqlite` is found without any setting, and nothing is ever
//! created in a sqlite home that was not chosen.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_statedb-harness");

fn run(args: &[&str], env_sqlite_home: Option<&Path>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("CODEX_HOME")
        .env_remove("CODEX_SQLITE_HOME");
    if let Some(dir) = env_sqlite_home {
        cmd.env("CODEX_SQLITE_HOME", dir);
    }
    cmd.output().expect("run the binary")
}

fn ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json output")
}

/// A fixture home with 3 threads; returns the home and one thread id.
fn home() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = run(
        &[
            "fixture",
            "--codex-home",
            home.to_str().unwrap(),
            "--threads",
            "3",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = ok(&run(
        &[
            "list",
            "--codex-home",
            home.to_str().unwrap(),
            "--no-db",
            "--json",
        ],
        None,
    ));
    let id = listed["items"][0]["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    (dir, id)
}

fn db(dir: &Path) -> std::path::PathBuf {
    dir.join("state_5.sqlite")
}

#[test]
fn codex_sqlite_home_is_honoured_by_init_lookup_list_and_status() {
    let (dir, id) = home();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    let env_dir = dir.path().join("env-sqlite");
    ok(&run(&["init", "--codex-home", h, "--json"], Some(&env_dir)));
    assert!(
        db(&env_dir).is_file(),
        "init did not create the DB under CODEX_SQLITE_HOME"
    );
    assert!(!db(&home).exists(), "init created a DB in the codex home");
    let found = ok(&run(
        &["lookup", "--codex-home", h, "--open-only", &id, "--json"],
        Some(&env_dir),
    ));
    assert_eq!(found["source"], "db", "{found}");
    let listed = ok(&run(&["list", "--codex-home", h, "--json"], Some(&env_dir)));
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{listed}");
    let status = ok(&run(
        &["status", "--codex-home", h, "--json"],
        Some(&env_dir),
    ));
    assert_eq!(status["threads"], 3, "{status}");
    assert_eq!(status["db"], db(&env_dir).to_str().unwrap(), "{status}");
    assert!(
        !db(&home).exists(),
        "a command created a DB in the codex home"
    );
}

#[test]
fn the_sqlite_home_flag_wins_over_the_environment() {
    let (dir, _) = home();
    let home = dir.path().join("home");
    let env_dir = dir.path().join("env-sqlite");
    let flag_dir = dir.path().join("flag-sqlite");
    ok(&run(
        &[
            "init",
            "--codex-home",
            home.to_str().unwrap(),
            "--sqlite-home",
            flag_dir.to_str().unwrap(),
            "--json",
        ],
        Some(&env_dir),
    ));
    assert!(db(&flag_dir).is_file(), "the flag's directory has no DB");
    assert!(
        !env_dir.exists(),
        "the environment's directory was created although the flag was given"
    );
}

#[test]
fn the_desktop_layout_is_found_without_settings() {
    let (dir, id) = home();
    let home = dir.path().join("home");
    let h = home.to_str().unwrap();
    let desktop = home.join("sqlite");
    ok(&run(
        &[
            "init",
            "--codex-home",
            h,
            "--sqlite-home",
            desktop.to_str().unwrap(),
            "--json",
        ],
        None,
    ));
    // No flag, no environment: the desktop DB is the one used, and none is created beside it.
    let found = ok(&run(&["lookup", "--codex-home", h, &id, "--json"], None));
    assert_eq!(found["source"], "db", "{found}");
    let status = ok(&run(&["status", "--codex-home", h, "--json"], None));
    assert_eq!(status["threads"], 3, "{status}");
    assert_eq!(status["db"], db(&desktop).to_str().unwrap(), "{status}");
    assert!(
        !db(&home).exists(),
        "a DB was created in the codex home beside the desktop one"
    );
}
