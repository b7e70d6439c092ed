//! The real Codex CLI as a system under test: finding the pinned binary (`bin`), the home a
//! child process sees (`home`), driving `codex app-server` over JSON-RPC (`app_server`),
//! one-shot CLI commands (`bin::CodexBin::run_cli`), and a blocking "start, list
//! everything, stop" view for tests (`blocking`).
//!
//! Nothing here knows about scenarios; the scenario target builds on it.

pub mod app_server;
pub mod bin;
pub mod blocking;
pub mod error;
pub mod home;

pub use app_server::{AppServer, ExitReport};
pub use bin::{CliOutput, CodexBin, INSTALL_COMMAND};
pub use error::CodexError;
pub use home::HomeSpec;

/// Every `thread/list` source kind of the pinned protocol: the default list shows only
/// interactive sources, and the harness must see every thread.
pub const ALL_SOURCE_KINDS: &[&str] = &[
    "cli",
    "vscode",
    "exec",
    "appServer",
    "subAgent",
    "subAgentReview",
    "subAgentCompact",
    "subAgentThreadSpawn",
    "subAgentOther",
    "unknown",
];
