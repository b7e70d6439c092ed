//! Errors of driving the real Codex binary; each says what to do next.

use std::path::PathBuf;
use std::time::Duration;

use super::bin::INSTALL_COMMAND;

#[derive(Debug, thiserror::Error)]
pub enum CodexError {
    #[error("Codex binary not found at {} (from {origin}); install the pinned Codex with `{INSTALL_COMMAND}` or pass --codex-bin PATH / set CODEX_BIN", path.display())]
    NotInstalled { path: PathBuf, origin: String },
    #[error("could not start {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("I/O with the Codex process failed during {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Codex did not answer {method} within {after:?}; stderr:\n{stderr}")]
    Timeout {
        method: String,
        after: Duration,
        stderr: String,
    },
    #[error("Codex answered with JSON-RPC error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("Codex exited ({status}) before answering {method}; stderr:\n{stderr}")]
    Exited {
        method: String,
        status: String,
        stderr: String,
    },
    #[error("unexpected answer from Codex to {method}: {detail}")]
    Protocol { method: String, detail: String },
}

impl CodexError {
    /// True for a JSON-RPC error answer (Codex ran and refused), as opposed to a transport
    /// failure.
    pub fn is_rpc(&self) -> bool {
        matches!(self, CodexError::Rpc { .. })
    }
}
