//! One `codex app-server` child process driven over JSON-RPC (one JSON object per line on
//! stdin/stdout). A reader task routes answers to waiting requests by id and skips the
//! server's notifications; stderr is captured continuously so a failure can show it. The
//! child is killed when the `AppServer` is dropped.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

use super::bin::CodexBin;
use super::error::CodexError;
use super::home::HomeSpec;
use super::ALL_SOURCE_KINDS;
use crate::lookup::ListFilter;

/// Page size used for `list_all` (the server caps pages itself).
const LIST_PAGE: u64 = 100;
/// A listing longer than this many pages is a cursor loop, not a home.
const MAX_PAGES: usize = 100_000;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, CodexError>>>>>;

/// How the child ended.
#[derive(Debug, Clone)]
pub struct ExitReport {
    pub status: String,
    pub stderr: String,
}

/// A running `codex app-server`.
pub struct AppServer {
    child: Child,
    stdin: Option<ChildStdin>,
    pending: Pending,
    stderr: Arc<Mutex<String>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    next_id: u64,
    timeout: Duration,
    pid: Option<u32>,
}

impl AppServer {
    /// Spawns the server on `home` and completes the `initialize` handshake within
    /// `timeout`. A failed start carries the exit status and the captured stderr.
    pub async fn start(
        bin: &CodexBin,
        home: &HomeSpec,
        timeout: Duration,
    ) -> Result<AppServer, CodexError> {
        let mut cmd = Command::new(bin.path());
        cmd.arg("app-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        home.apply_tokio(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| CodexError::Spawn {
            path: bin.path().to_path_buf(),
            source,
        })?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let pending: Pending = Arc::default();
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(route_answers(out, pending.clone()));
        }
        let stderr_task = child
            .stderr
            .take()
            .map(|err| tokio::spawn(capture(err, stderr.clone())));
        let mut server = AppServer {
            child,
            stdin,
            pending,
            stderr,
            stderr_task,
            next_id: 1,
            timeout,
            pid,
        };
        let init = server
            .request(
                "initialize",
                json!({"clientInfo": {"name": "statedb-harness", "version": env!("CARGO_PKG_VERSION")}}),
            )
            .await;
        match init {
            Ok(_) => {
                server
                    .send(
                        &json!({"jsonrpc": "2.0", "method": "initialized"}),
                        "initialized",
                    )
                    .await?;
                Ok(server)
            }
            Err(e) => Err(server.start_failure(e).await),
        }
    }

    /// The child's pid (for `/proc/<pid>/fd` observations).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends one request and waits (at most the server's timeout) for its answer.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, CodexError> {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if let Err(e) = self.send(&msg, method).await {
            self.forget(id);
            return Err(self.exited_or(method, e).await);
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(answer)) => answer,
            // The reader ended: the child closed stdout, i.e. it is exiting.
            Ok(Err(_)) => Err(self.exited(method).await),
            Err(_) => {
                self.forget(id);
                Err(CodexError::Timeout {
                    method: method.to_string(),
                    after: self.timeout,
                    stderr: self.stderr(),
                })
            }
        }
    }

    /// Every page of `thread/list` in one scope, every source kind, every provider.
    pub async fn list_all(&mut self, archived: bool) -> Result<Vec<Value>, CodexError> {
        self.list_all_paged(archived, None).await
    }

    /// `list_all` with pages of `limit` threads (default 100).
    pub async fn list_all_paged(
        &mut self,
        archived: bool,
        limit: Option<u64>,
    ) -> Result<Vec<Value>, CodexError> {
        self.list_all_filtered(archived, limit, &ListFilter::default())
            .await
    }

    /// `list_all_paged` keeping only `filter`'s source kinds and model providers (an
    /// empty list: every kind, every provider).
    pub async fn list_all_filtered(
        &mut self,
        archived: bool,
        limit: Option<u64>,
        filter: &ListFilter,
    ) -> Result<Vec<Value>, CodexError> {
        let kinds: Vec<&str> = if filter.sources.is_empty() {
            ALL_SOURCE_KINDS.to_vec()
        } else {
            filter.sources.iter().map(String::as_str).collect()
        };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .request(
                    "thread/list",
                    json!({
                        "archived": archived,
                        "cursor": cursor,
                        "limit": limit.unwrap_or(LIST_PAGE),
                        "sourceKinds": kinds,
                        "modelProviders": filter.providers,
                    }),
                )
                .await?;
            let data =
                page.get("data")
                    .and_then(Value::as_array)
                    .ok_or_else(|| CodexError::Protocol {
                        method: "thread/list".into(),
                        detail: format!("no data array in {page}"),
                    })?;
            items.extend(data.iter().cloned());
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) if Some(next) != cursor.as_deref() => cursor = Some(next.to_string()),
                Some(next) => {
                    return Err(CodexError::Protocol {
                        method: "thread/list".into(),
                        detail: format!("cursor {next:?} repeats"),
                    })
                }
                None => return Ok(items),
            }
        }
        Err(CodexError::Protocol {
            method: "thread/list".into(),
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// `thread/read` of one thread id.
    pub async fn read(&mut self, id: &str, include_turns: bool) -> Result<Value, CodexError> {
        self.request(
            "thread/read",
            json!({"threadId": id, "includeTurns": include_turns}),
        )
        .await
    }

    /// Closes stdin (the server's signal to exit) and waits for the exit; kills the child
    /// if it does not exit within the timeout.
    pub async fn shutdown(mut self) -> Result<ExitReport, CodexError> {
        drop(self.stdin.take());
        let status = match tokio::time::timeout(self.timeout, self.child.wait()).await {
            Ok(Ok(s)) => s.to_string(),
            Ok(Err(source)) => {
                return Err(CodexError::Io {
                    what: "waiting for app-server to exit".into(),
                    source,
                })
            }
            Err(_) => {
                let _ = self.child.kill().await;
                "killed after not exiting on closed stdin".to_string()
            }
        };
        self.drain_stderr().await;
        Ok(ExitReport {
            status,
            stderr: self.stderr(),
        })
    }

    async fn send(&mut self, msg: &Value, what: &str) -> Result<(), CodexError> {
        let stdin = self.stdin.as_mut().ok_or_else(|| CodexError::Protocol {
            method: what.to_string(),
            detail: "stdin already closed".into(),
        })?;
        let mut line = msg.to_string();
        line.push('\n');
        let io = |source| CodexError::Io {
            what: format!("sending {what}"),
            source,
        };
        stdin.write_all(line.as_bytes()).await.map_err(io)?;
        stdin.flush().await.map_err(io)
    }

    /// After the child exited: wait (bounded) for the stderr reader to reach EOF.
    async fn drain_stderr(&mut self) {
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }

    fn forget(&self, id: u64) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&id);
        }
    }

    /// The exit status (waiting briefly for it) and stderr of a child that stopped talking.
    async fn exited(&mut self, method: &str) -> CodexError {
        let status = match tokio::time::timeout(self.timeout, self.child.wait()).await {
            Ok(Ok(s)) => s.to_string(),
            Ok(Err(e)) => format!("unknown ({e})"),
            Err(_) => "still running with stdout closed".to_string(),
        };
        self.drain_stderr().await;
        CodexError::Exited {
            method: method.to_string(),
            status,
            stderr: self.stderr(),
        }
    }

    async fn exited_or(&mut self, method: &str, e: CodexError) -> CodexError {
        match self.child.try_wait() {
            Ok(Some(_)) => self.exited(method).await,
            _ => e,
        }
    }

    /// A start that did not complete: the error with status and stderr.
    async fn start_failure(&mut self, e: CodexError) -> CodexError {
        match e {
            CodexError::Timeout { .. } => {
                let _ = self.child.kill().await;
                self.drain_stderr().await;
                CodexError::Timeout {
                    method: "initialize".into(),
                    after: self.timeout,
                    stderr: self.stderr(),
                }
            }
            other => other,
        }
    }
}

/// Routes each answer (a message with an `id` and no `method`) to its waiting request.
async fn route_answers(out: tokio::process::ChildStdout, pending: Pending) {
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        // Notifications and server-to-client requests carry a method: not ours to answer.
        if msg.get("method").is_some() {
            continue;
        }
        let Some(id) = msg.get("id").and_then(Value::as_u64) else {
            continue;
        };
        let answer = match msg.get("error") {
            Some(err) => Err(CodexError::Rpc {
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }),
            None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
        };
        let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
        if let Some(tx) = waiter {
            let _ = tx.send(answer);
        }
    }
    // stdout closed: wake every waiter (their senders drop) so they report the exit.
    if let Ok(mut p) = pending.lock() {
        p.clear();
    }
}

async fn capture(err: tokio::process::ChildStderr, into: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(err).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut s) = into.lock() {
            s.push_str(&line);
            s.push('\n');
        }
    }
}
