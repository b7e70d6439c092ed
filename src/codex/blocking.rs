//! Blocking conveniences for tests and commands without a runtime: start Codex on a home,
//! list both scopes completely, shut it down.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::app_server::AppServer;
use super::bin::CodexBin;
use super::error::CodexError;
use super::home::HomeSpec;

/// One listed thread: its id and the path Codex gave for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedThread {
    pub id: String,
    pub path: Option<PathBuf>,
}

/// What Codex lists on a home, in both scopes, and what it wrote to stderr.
#[derive(Debug, Clone)]
pub struct HomeView {
    pub active: Vec<ListedThread>,
    pub archived: Vec<ListedThread>,
    pub stderr: String,
}

impl ListedThread {
    pub fn from_item(item: &Value) -> ListedThread {
        ListedThread {
            id: item
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            path: item.get("path").and_then(Value::as_str).map(PathBuf::from),
        }
    }
}

/// Starts `codex app-server` on `home`, lists both scopes fully and shuts it down; every
/// request (and the start) is bounded by `timeout`.
pub fn view_home(
    bin: &CodexBin,
    home: &HomeSpec,
    timeout: Duration,
) -> Result<HomeView, CodexError> {
    runtime()?.block_on(async {
        let mut server = AppServer::start(bin, home, timeout).await?;
        let active = server.list_all(false).await?;
        let archived = server.list_all(true).await?;
        let exit = server.shutdown().await?;
        Ok(HomeView {
            active: active.iter().map(ListedThread::from_item).collect(),
            archived: archived.iter().map(ListedThread::from_item).collect(),
            stderr: exit.stderr,
        })
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, CodexError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CodexError::Io {
            what: "building a runtime".into(),
            source,
        })
}
