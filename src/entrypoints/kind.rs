//! `EntrypointKind`: the four process entrypoints that create a state DB handle, with
//! their serialised names (`cli`, `exec`, `app_server`, `mcp_server`).

use std::fmt;
use std::str::FromStr;

/// A process entrypoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntrypointKind {
    /// The interactive CLI/TUI: runs without the DB when it cannot be opened.
    Cli,
    /// `codex exec`: runs without the DB when it cannot be opened.
    Exec,
    /// The app-server: cannot start without the DB.
    AppServer,
    /// The MCP server: runs without the DB when it cannot be opened.
    McpServer,
}

impl EntrypointKind {
    pub const ALL: [EntrypointKind; 4] = [
        EntrypointKind::Cli,
        EntrypointKind::Exec,
        EntrypointKind::AppServer,
        EntrypointKind::McpServer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EntrypointKind::Cli => "cli",
            EntrypointKind::Exec => "exec",
            EntrypointKind::AppServer => "app_server",
            EntrypointKind::McpServer => "mcp_server",
        }
    }

    /// Whether a failed DB startup stops this entrypoint.
    pub fn requires_state_db(self) -> bool {
        self == EntrypointKind::AppServer
    }
}

impl fmt::Display for EntrypointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EntrypointKind {
    type Err = String;

    /// Accepts the serialised names, and `-` in place of `_` (`app-server`).
    fn from_str(text: &str) -> Result<Self, String> {
        let wanted = text.trim().replace('-', "_");
        EntrypointKind::ALL
            .into_iter()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = EntrypointKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown entrypoint '{text}' (valid: {})", names.join(", "))
            })
    }
}
