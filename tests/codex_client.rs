//! The Codex client against the real binary: locating it, starting `app-server` on a
//! fixture home, listing every thread in both scopes, reading one, refusing an unknown id,
//! and a missing binary's error naming the install command.

mod codex_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use statedb_harness::codex::blocking::view_home;
use statedb_harness::codex::{AppServer, CodexBin, CodexError, HomeSpec, INSTALL_COMMAND};
use statedb_harness::fixture::{generate_home, FixtureOptions, FixtureThread};
use statedb_harness::rollout::layout::Root;

use codex_support::codex_or_skip;

const TIMEOUT: Duration = Duration::from_secs(30);

fn fixture(active: usize, archived: usize) -> (tempfile::TempDir, Vec<FixtureThread>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let threads = generate_home(
        dir.path(),
        &FixtureOptions {
            threads: active,
            archived,
            seed: 11,
            ..FixtureOptions::default()
        },
    )
    .expect("fixture home");
    (dir, threads)
}

#[test]
fn missing_binary_error_names_the_install_command() {
    let nowhere = PathBuf::from("/nonexistent/codex-bin");
    for err in [
        CodexBin::locate(Some(&nowhere)).unwrap_err(),
        CodexBin::locate_from(None, Some(nowhere.clone().into_os_string())).unwrap_err(),
        CodexBin::at(&nowhere).unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(matches!(err, CodexError::NotInstalled { .. }), "{err:?}");
        assert!(text.contains(INSTALL_COMMAND), "{text}");
        assert!(text.contains("/nonexistent/codex-bin"), "{text}");
    }
    let from_env = CodexBin::locate_from(None, Some(nowhere.into_os_string())).unwrap_err();
    assert!(from_env.to_string().contains("CODEX_BIN"), "{from_env}");
}

#[test]
fn explicit_path_wins_over_env() {
    let Some(bin) = codex_or_skip("explicit_path_wins_over_env") else {
        return;
    };
    let chosen = CodexBin::locate_from(Some(bin.path()), Some("/nonexistent".into())).unwrap();
    assert_eq!(chosen.path(), bin.path());
}

#[test]
fn version_is_the_pinned_one() {
    let Some(bin) = codex_or_skip("version_is_the_pinned_one") else {
        return;
    };
    let lock = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/codex/package.json"),
    )
    .unwrap();
    let version = bin.version().unwrap();
    assert!(
        lock.contains(&format!("\"{version}\"")),
        "{version} not pinned in {lock}"
    );
}

#[test]
fn starts_on_a_fixture_home_and_lists_every_thread() {
    let Some(bin) = codex_or_skip("starts_on_a_fixture_home_and_lists_every_thread") else {
        return;
    };
    let (dir, threads) = fixture(4, 2);
    let view = view_home(&bin, &HomeSpec::new(dir.path()), TIMEOUT).unwrap();
    let expect = |root: Root| -> BTreeSet<(String, Option<PathBuf>)> {
        threads
            .iter()
            .filter(|t| t.root == root)
            .map(|t| (t.id.to_string(), Some(t.path.clone())))
            .collect()
    };
    let got = |v: &[statedb_harness::codex::blocking::ListedThread]| -> BTreeSet<_> {
        v.iter().map(|t| (t.id.clone(), t.path.clone())).collect()
    };
    assert_eq!(view.active.len(), 4, "{:?}", view.active);
    assert_eq!(view.archived.len(), 2, "{:?}", view.archived);
    assert_eq!(got(&view.active), expect(Root::Active));
    assert_eq!(got(&view.archived), expect(Root::Archived));
    assert!(
        dir.path().join("state_5.sqlite").is_file(),
        "Codex builds its DB on start"
    );
}

#[test]
fn reads_a_thread_and_refuses_an_unknown_id() {
    let Some(bin) = codex_or_skip("reads_a_thread_and_refuses_an_unknown_id") else {
        return;
    };
    let (dir, threads) = fixture(2, 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut server = AppServer::start(&bin, &HomeSpec::new(dir.path()), TIMEOUT)
            .await
            .unwrap();
        let t = &threads[0];
        let read = server.read(&t.id.to_string(), false).await.unwrap();
        let thread = &read["thread"];
        assert_eq!(thread["id"], t.id.to_string(), "{read}");
        assert_eq!(thread["path"], t.path.display().to_string(), "{read}");

        let unknown = server
            .read("00000000-0000-7000-8000-000000000000", false)
            .await;
        match unknown {
            Err(CodexError::Rpc { code, message }) => {
                assert!(code < 0, "{code}");
                assert!(
                    message.contains("00000000-0000-7000-8000-000000000000"),
                    "{message}"
                );
            }
            other => panic!("expected a JSON-RPC error, got {other:?}"),
        }
        let exit = server.shutdown().await.unwrap();
        assert!(
            exit.status.contains("exit status: 0") || exit.status.contains("exit code: 0"),
            "{exit:?}"
        );
    });
}

#[test]
fn cli_archive_moves_the_rollout() {
    let Some(bin) = codex_or_skip("cli_archive_moves_the_rollout") else {
        return;
    };
    let (dir, threads) = fixture(2, 0);
    let home = HomeSpec::new(dir.path());
    // Codex archives only threads it has indexed: let it build its DB first.
    view_home(&bin, &home, TIMEOUT).unwrap();
    let id = threads[0].id.to_string();
    let out = bin.run_cli(&home, &["archive", &id], TIMEOUT).unwrap();
    assert!(out.status.success(), "{out:?}");
    let view = view_home(&bin, &home, TIMEOUT).unwrap();
    assert!(view.archived.iter().any(|t| t.id == id), "{view:?}");
    assert!(!view.active.iter().any(|t| t.id == id), "{view:?}");
    assert!(!threads[0].path.exists(), "the active file moved");
}

#[test]
fn a_failed_start_reports_status_and_stderr() {
    let Some(bin) = codex_or_skip("a_failed_start_reports_status_and_stderr") else {
        return;
    };
    // A codex home that is a regular file: Codex cannot start on it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("home-is-a-file");
    std::fs::write(&file, b"x").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(AppServer::start(&bin, &HomeSpec::new(&file), TIMEOUT))
        .err()
        .expect("start must fail");
    match err {
        CodexError::Exited { status, stderr, .. } => {
            assert!(status.contains("exit status: 1"), "{status}");
            assert!(stderr.contains("not a directory"), "{stderr}");
        }
        other => panic!("expected the exit with its stderr, got {other:?}"),
    }
}
