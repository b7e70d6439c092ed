//! Finding the Codex binary (`--codex-bin`, then `CODEX_BIN`, then the pinned install under
//! `tools/codex/`) and running one-shot CLI commands such as `codex archive ID`.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::error::CodexError;
use super::home::HomeSpec;

/// The one command that installs the pinned Codex (run from the repository root).
pub const INSTALL_COMMAND: &str = "npm ci --prefix tools/codex";

/// Where `npm ci --prefix tools/codex` puts the static binary, relative to the repo root.
const PINNED_RELATIVE: &str =
    "tools/codex/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex";

/// A Codex executable that exists on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexBin {
    path: PathBuf,
}

/// What a one-shot CLI command did.
#[derive(Debug, Clone)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CodexBin {
    /// `explicit` (`--codex-bin`), else the env var `CODEX_BIN`, else the pinned install.
    pub fn locate(explicit: Option<&Path>) -> Result<CodexBin, CodexError> {
        Self::locate_from(explicit, std::env::var_os("CODEX_BIN"))
    }

    /// `locate` with the environment value passed in (testable without touching the env).
    pub fn locate_from(
        explicit: Option<&Path>,
        env_value: Option<OsString>,
    ) -> Result<CodexBin, CodexError> {
        let (path, origin) = match (explicit, env_value.filter(|v| !v.is_empty())) {
            (Some(p), _) => (p.to_path_buf(), "--codex-bin".to_string()),
            (None, Some(v)) => (PathBuf::from(v), "CODEX_BIN".to_string()),
            (None, None) => (pinned_path(), "the pinned install".to_string()),
        };
        Self::checked(path, origin)
    }

    /// A binary at an explicit path (checked to exist).
    pub fn at(path: impl Into<PathBuf>) -> Result<CodexBin, CodexError> {
        Self::checked(path.into(), "an explicit path".to_string())
    }

    fn checked(path: PathBuf, origin: String) -> Result<CodexBin, CodexError> {
        if path.is_file() {
            Ok(CodexBin { path })
        } else {
            Err(CodexError::NotInstalled { path, origin })
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version the binary prints (`codex-cli 0.169.0` -> `0.169.0`).
    pub fn version(&self) -> Result<String, CodexError> {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--version");
        let out = run_with_timeout(cmd, &self.path, Duration::from_secs(30))?;
        let text = out.stdout.trim();
        text.split_whitespace()
            .last()
            .filter(|v| {
                out.status.success() && v.chars().next().is_some_and(|c| c.is_ascii_digit())
            })
            .map(str::to_string)
            .ok_or_else(|| CodexError::Protocol {
                method: "--version".into(),
                detail: format!("exit {}, stdout {text:?}", out.status),
            })
    }

    /// Runs `codex ARGS` on `home` (e.g. `["archive", id]`), killed after `timeout`.
    pub fn run_cli(
        &self,
        home: &HomeSpec,
        args: &[&str],
        timeout: Duration,
    ) -> Result<CliOutput, CodexError> {
        let mut cmd = Command::new(&self.path);
        cmd.args(args);
        home.apply_std(&mut cmd);
        run_with_timeout(cmd, &self.path, timeout)
    }
}

/// The pinned install under this repository.
pub fn pinned_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(PINNED_RELATIVE)
}

fn run_with_timeout(
    mut cmd: Command,
    path: &Path,
    timeout: Duration,
) -> Result<CliOutput, CodexError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| CodexError::Spawn {
        path: path.to_path_buf(),
        source,
    })?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CodexError::Timeout {
                    method: format!("{cmd:?}"),
                    after: timeout,
                    stderr: stderr.join().unwrap_or_default(),
                });
            }
            // Polling a child we own: no async runtime needed by blocking callers.
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(source) => {
                return Err(CodexError::Io {
                    what: "waiting for a Codex command".into(),
                    source,
                })
            }
        }
    };
    Ok(CliOutput {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}
