//! The real Codex binary for integration tests: found as every command finds it. Missing,
//! it fails the test under CI (`CI=true`) with the install command, and locally skips with
//! a printed reason. A test that ran prints the version it ran against, so CI logs prove it.
#![allow(dead_code)]

use statedb_harness::codex::{CodexBin, INSTALL_COMMAND};

pub fn codex_or_skip(test: &str) -> Option<CodexBin> {
    match CodexBin::locate(None) {
        Ok(bin) => {
            let version = bin.version().expect("codex --version");
            eprintln!(
                "{test}: running against the real Codex {version} at {}",
                bin.path().display()
            );
            Some(bin)
        }
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("{test}: the real Codex is required in CI: {e} (install: {INSTALL_COMMAND})")
        }
        Err(e) => {
            eprintln!("{test}: SKIPPED, no Codex binary: {e}");
            None
        }
    }
}
