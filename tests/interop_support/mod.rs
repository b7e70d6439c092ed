//! Shared parts of the interop tests: the two real Codex versions, the harness's own binary,
//! homes copied from a fixture (without the harness-home marker, so they look like a real
//! user's), and what Codex itself says about a home (every thread listed in both scopes,
//! every one read back).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use statedb_harness::codex::{AppServer, CodexBin, CodexError, HomeSpec};
use statedb_harness::fixture::FixtureThread;

pub use crate::codex_support::codex_or_skip;

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The older Codex (before the millisecond, preview and recency migrations).
pub const OLD_INSTALL_COMMAND: &str = "npm ci --prefix tools/codex-0.120.0";
const OLD_RELATIVE: &str =
    "tools/codex-0.120.0/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/codex/codex";

/// Codex 0.120.0, or a skip (a failure under CI) naming the install command.
pub fn old_codex_or_skip(test: &str) -> Option<CodexBin> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(OLD_RELATIVE);
    match CodexBin::at(&path) {
        Ok(bin) => {
            let version = bin.version().expect("codex --version");
            eprintln!("{test}: older Codex {version} at {}", path.display());
            Some(bin)
        }
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("{test}: Codex 0.120.0 is required in CI: {e} (install: {OLD_INSTALL_COMMAND})")
        }
        Err(e) => {
            eprintln!("{test}: SKIPPED, no Codex 0.120.0 ({e}); install: {OLD_INSTALL_COMMAND}");
            None
        }
    }
}

/// A generated home that looks like a user's: the harness-home marker removed.
pub fn user_home(active: usize, archived: usize) -> (tempfile::TempDir, Vec<FixtureThread>) {
    let (dir, threads) = crate::common::home_with(active, archived);
    std::fs::remove_file(
        dir.path()
            .join(statedb_harness::state::creation::HOME_MARKER),
    )
    .expect("remove marker");
    (dir, threads)
}

/// The harness binary under test: this build, or `INTEROP_HARNESS_BIN` (an older build, to
/// show which interop tests fail before a change).
fn harness_bin() -> PathBuf {
    std::env::var_os("INTEROP_HARNESS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_statedb-harness")))
}

/// Runs `statedb-harness ARGS`, returning (exit code, stdout, stderr).
pub fn harness(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(harness_bin())
        .args(args)
        .env_remove("CODEX_HOME")
        .env_remove("CODEX_SQLITE_HOME")
        .output()
        .expect("run statedb-harness");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the harness and requires `expected` as its exit code.
pub fn harness_ok(args: &[&str], expected: i32) -> String {
    let (code, out, err) = harness(args);
    assert_eq!(
        code, expected,
        "statedb-harness {args:?}\nstdout: {out}\nstderr: {err}"
    );
    out
}

/// `statedb-harness init` on `home`, letting `bin` create a DB the home lacks; exit 0.
pub fn harness_init_with_codex(bin: &CodexBin, home: &Path) -> String {
    harness_ok(
        &[
            "init",
            "--codex-home",
            home.to_str().expect("utf-8 home"),
            "--codex-bin",
            bin.path().to_str().expect("utf-8 codex path"),
        ],
        0,
    )
}

/// What Codex says about a home: id -> path for each scope's listing, and id -> path of
/// `thread/read` for every listed thread.
#[derive(Debug, Clone)]
pub struct CodexSays {
    pub active: BTreeMap<String, PathBuf>,
    pub archived: BTreeMap<String, PathBuf>,
    pub read: BTreeMap<String, Value>,
    pub stderr: String,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn by_id(items: &[Value], scope: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for item in items {
        let id = item["id"].as_str().expect("id").to_string();
        let path = PathBuf::from(item["path"].as_str().expect("path"));
        assert!(
            out.insert(id.clone(), path).is_none(),
            "Codex lists thread {id} twice in the {scope} scope"
        );
    }
    out
}

/// Starts `codex app-server` on `home`, lists both scopes, reads every listed thread (with
/// turns) and stops it. Any failure to start (e.g. a migration error) is returned.
pub fn codex_says(bin: &CodexBin, home: &Path) -> Result<CodexSays, CodexError> {
    runtime().block_on(async {
        let mut server = AppServer::start(bin, &HomeSpec::new(home), TIMEOUT).await?;
        let active = server.list_all(false).await?;
        let archived = server.list_all(true).await?;
        let mut read = BTreeMap::new();
        for item in active.iter().chain(&archived) {
            let id = item["id"].as_str().expect("id").to_string();
            let thread = server.read(&id, true).await?;
            read.insert(id, thread["thread"].clone());
        }
        let exit = server.shutdown().await?;
        Ok(CodexSays {
            active: by_id(&active, "active"),
            archived: by_id(&archived, "archived"),
            read,
            stderr: exit.stderr,
        })
    })
}

/// Starts Codex on `home` and stops it (creating and migrating its DB).
pub fn codex_touch(bin: &CodexBin, home: &Path) -> Result<String, CodexError> {
    runtime().block_on(async {
        let server = AppServer::start(bin, &HomeSpec::new(home), TIMEOUT).await?;
        Ok(server.shutdown().await?.stderr)
    })
}

/// Asserts that Codex lists every fixture thread once, in its own scope, with its own
/// file, and that `thread/read` gives the same file.
pub fn assert_codex_agrees(says: &CodexSays, threads: &[FixtureThread]) {
    let want = |archived: bool| -> BTreeMap<String, PathBuf> {
        threads
            .iter()
            .filter(|t| t.root.is_archived() == archived)
            .map(|t| (t.id.to_string(), t.path.clone()))
            .collect()
    };
    assert_eq!(
        says.active,
        want(false),
        "Codex's active listing differs from the files"
    );
    assert_eq!(
        says.archived,
        want(true),
        "Codex's archived listing differs from the files"
    );
    for (id, thread) in &says.read {
        let path = PathBuf::from(thread["path"].as_str().expect("read path"));
        let listed = says.active.get(id).or_else(|| says.archived.get(id));
        assert_eq!(
            Some(&path),
            listed,
            "thread/read of {id} names another file"
        );
    }
}

/// One SQL query's rows, as text, on a plain connection.
pub fn query(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut stmt = conn.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                let v: rusqlite::types::Value = r.get(i)?;
                Ok(match v {
                    rusqlite::types::Value::Null => "NULL".to_string(),
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Blob(b) => format!("<{} bytes>", b.len()),
                })
            })
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// Runs statements on a plain connection (a fault, as a user or another tool would make it).
pub fn exec(db: &Path, sql: &str) {
    rusqlite::Connection::open(db)
        .expect("open db")
        .execute_batch(sql)
        .expect("exec");
}

/// The schema text of every table, index and trigger Codex owns (everything not named
/// `statedb_harness_*`), by name: the harness must never change any of it.
pub fn codex_schema(db: &Path) -> BTreeMap<String, String> {
    query(
        db,
        "SELECT name, COALESCE(sql, '') FROM sqlite_master
         WHERE tbl_name NOT LIKE 'statedb_harness_%' ORDER BY name",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect()
}
