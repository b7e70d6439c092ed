//! Running workers: a tokio blocking task with its own `ProcessContext`, or a real OS
//! process (the binary re-invoked as `worker --plan FILE`). Both report events into the
//! scenario's `EventLog` and end with a `WorkerOutcome`. Process workers can be SIGKILLed.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;
use tokio::sync::Notify;

use super::model::WorkerKind;
use super::roles::{run_role, WorkerOutcome, WorkerPlan, WORKER_RESULT};
use crate::events::{Event, EventSink};
use crate::failpoints::DeathMode;
use crate::layer::StateLayer;

/// All events of one scenario run, from every worker and the runner.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Mutex<Vec<Event>>,
    notify: Notify,
}

impl EventLog {
    pub fn push(&self, event: Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
        self.notify.notify_waiters();
    }

    pub fn snapshot(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Waits until an event matching `pred` exists, or the timeout passes.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&Event) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if self.snapshot().iter().any(&pred) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.snapshot().iter().any(&pred);
            }
        }
    }
}

enum Running {
    Task {
        handle: tokio::task::JoinHandle<WorkerOutcome>,
        /// Moves the task's events into the log; ends when the task's context is dropped.
        forward: tokio::task::JoinHandle<()>,
    },
    Process {
        child: tokio::process::Child,
        reader: tokio::task::JoinHandle<ProcessReport>,
    },
}

/// What a process worker's stdout said: its final report, and whether it reached a
/// failpoint that ends the process (`exit` or `kill`).
#[derive(Debug, Default)]
struct ProcessReport {
    outcome: Option<WorkerOutcome>,
    died_at_failpoint: bool,
}

/// Whether a `failpoint_fired` event is one whose action ends the process.
fn ends_the_process(e: &Event) -> bool {
    e.kind == crate::events::kinds::FAILPOINT_FIRED
        && e.data
            .get("action")
            .and_then(|a| a.as_str())
            .is_some_and(|a| a == "kill" || a.starts_with("exit("))
}

/// How long a joined task worker's remaining events may take to reach the log.
const FORWARD_DRAIN: Duration = Duration::from_secs(5);

/// A started worker.
pub struct WorkerHandle {
    pub name: String,
    pub kind: WorkerKind,
    running: Option<Running>,
    started: Instant,
}

impl WorkerHandle {
    /// Starts `plan` as a blocking task with its own process context.
    pub fn spawn_task<L: StateLayer>(
        layer: Arc<L>,
        plan: WorkerPlan,
        log: Arc<EventLog>,
    ) -> Result<Self, String> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let ctx = plan.context(EventSink::Channel(tx), DeathMode::Simulated)?;
        let sink = log.clone();
        let forward = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                sink.push(e);
            }
        });
        let name = plan.name.clone();
        let handle = tokio::task::spawn_blocking(move || run_role(&*layer, &ctx, &plan));
        Ok(WorkerHandle {
            name,
            kind: WorkerKind::Task,
            running: Some(Running::Task { handle, forward }),
            started: Instant::now(),
        })
    }

    /// Starts `plan` as a real process of `binary`; its stderr goes to `log_file`.
    pub fn spawn_process(
        binary: &Path,
        plan: &WorkerPlan,
        plan_file: &Path,
        log_file: &Path,
        log: Arc<EventLog>,
    ) -> Result<Self, String> {
        let json = serde_json::to_string_pretty(plan).map_err(|e| e.to_string())?;
        std::fs::write(plan_file, json).map_err(|e| format!("{}: {e}", plan_file.display()))?;
        let stderr =
            std::fs::File::create(log_file).map_err(|e| format!("{}: {e}", log_file.display()))?;
        let mut child = tokio::process::Command::new(binary)
            .arg("worker")
            .arg("--plan")
            .arg(plan_file)
            .env("STATEDB_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start worker process {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("worker stdout not captured")?;
        let reader = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            let mut report = ProcessReport::default();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Event>(&line) {
                    Ok(e) if e.kind == WORKER_RESULT => {
                        report.outcome = serde_json::from_value(e.data).ok()
                    }
                    Ok(e) => {
                        report.died_at_failpoint |= ends_the_process(&e);
                        log.push(e)
                    }
                    Err(_) => {}
                }
            }
            report
        });
        Ok(WorkerHandle {
            name: plan.name.clone(),
            kind: WorkerKind::Process,
            running: Some(Running::Process { child, reader }),
            started: Instant::now(),
        })
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The OS pid of a running process worker (for `/proc` observations).
    pub fn pid(&self) -> Option<u32> {
        match &self.running {
            Some(Running::Process { child, .. }) => child.id(),
            _ => None,
        }
    }

    /// Whether the worker has ended (it may not have been joined yet).
    pub fn has_ended(&mut self) -> bool {
        match &mut self.running {
            None => true,
            Some(Running::Task { handle, .. }) => handle.is_finished(),
            Some(Running::Process { child, .. }) => !matches!(child.try_wait(), Ok(None)),
        }
    }

    /// SIGKILLs a process worker.
    pub async fn kill(&mut self) -> Result<(), String> {
        match &mut self.running {
            Some(Running::Process { child, .. }) => child
                .start_kill()
                .map_err(|e| format!("cannot kill worker {}: {e}", self.name)),
            Some(Running::Task { .. }) => Err(format!(
                "worker {} is a task; only processes can be killed",
                self.name
            )),
            None => Err(format!("worker {} already ended", self.name)),
        }
    }

    /// Waits for the worker to end.
    pub async fn join(&mut self, timeout: Duration) -> Result<WorkerOutcome, String> {
        let running = self
            .running
            .take()
            .ok_or_else(|| format!("worker {} was already joined", self.name))?;
        match running {
            Running::Task {
                mut handle,
                forward,
            } => match tokio::time::timeout(timeout, &mut handle).await {
                Ok(Ok(outcome)) => {
                    // Every event the task emitted is queued by now; let the forwarder move
                    // them into the log before anyone reads it (checks, oracles, reports).
                    // Its channel closes when the task's context is dropped, which a
                    // finished task has done; the bound only guards against a leaked clone.
                    let _ = tokio::time::timeout(FORWARD_DRAIN, forward).await;
                    Ok(outcome)
                }
                Ok(Err(e)) => Err(format!("worker {} panicked: {e}", self.name)),
                Err(_) => {
                    // The blocking thread cannot be preempted; it is left to finish.
                    Err(format!(
                        "worker {} did not finish within {}",
                        self.name,
                        crate::timing::format_duration(timeout)
                    ))
                }
            },
            Running::Process { mut child, reader } => {
                let status = match tokio::time::timeout(timeout, child.wait()).await {
                    Ok(Ok(status)) => status,
                    Ok(Err(e)) => return Err(format!("waiting for worker {}: {e}", self.name)),
                    Err(_) => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        return Err(format!(
                            "worker {} did not finish within {} (killed)",
                            self.name,
                            crate::timing::format_duration(timeout)
                        ));
                    }
                };
                let report = reader.await.unwrap_or_default();
                let reported = report.outcome.is_some();
                let mut outcome = report.outcome.unwrap_or_else(|| WorkerOutcome {
                    ok: false,
                    error: Some(format!("worker process ended without a report ({status})")),
                    elapsed_ms: self.started.elapsed().as_millis() as u64,
                    ..Default::default()
                });
                outcome.exit_code = status.code();
                // Died: a signal, or an `exit`/`kill` failpoint that ended the process before
                // it could report (`exit(CODE)` leaves no signal, only its exit code).
                if status.signal().is_some() || (!reported && report.died_at_failpoint) {
                    outcome.killed = true;
                    outcome.ok = false;
                }
                Ok(outcome)
            }
        }
    }
}

/// Where a scenario's worker files go.
pub fn worker_files(run_dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let dir = run_dir.join("workers");
    (
        dir.join(format!("{name}.plan.json")),
        dir.join(format!("{name}.log")),
    )
}
