//! Failpoints: named places inside the reference code where a scenario can inject a pause,
//! a sleep, an error, or the death of the process.
//!
//! A `FailpointSet` belongs to one `ProcessContext` (never a global registry), so tasks in one
//! process and tests running in parallel never see each other's failpoints. Child processes
//! get theirs explicitly as `--failpoint` arguments. Actions are a closed enum; nothing runs
//! arbitrary code. A `pause` ends when its worker's release file appears (the runner's
//! "release" step, which names one worker) or when its duration runs out, so a paused worker
//! can always be stopped. A pause consumes the release file it ends on, so the next hit of
//! the same failpoint pauses again until released again.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::events::{kinds, EventSink};
use crate::timing::{format_duration, parse_duration};

/// Every failpoint the reference code declares. Code names them by variant, so a typo does
/// not compile; scenario files and `--failpoint` arguments name them by their dotted string.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumMessage,
)]
pub enum Failpoint {
    /// After the state runtime is opened, before the backfill gate.
    #[strum(serialize = "init.after_open")]
    #[serde(rename = "init.after_open")]
    InitAfterOpen,
    /// In the startup gate, before each re-read of the backfill state.
    #[strum(serialize = "gate.before_poll")]
    #[serde(rename = "gate.before_poll")]
    GateBeforePoll,
    /// Right after this process claimed the backfill lease.
    #[strum(serialize = "backfill.after_claim")]
    #[serde(rename = "backfill.after_claim")]
    BackfillAfterClaim,
    /// After each committed batch of rows (hit N = batch N).
    #[strum(serialize = "backfill.after_batch")]
    #[serde(rename = "backfill.after_batch")]
    BackfillAfterBatch,
    /// After the last batch, before marking the backfill complete.
    #[strum(serialize = "backfill.before_complete")]
    #[serde(rename = "backfill.before_complete")]
    BackfillBeforeComplete,
    /// Before each lease refresh of the heartbeat.
    #[strum(serialize = "backfill.heartbeat")]
    #[serde(rename = "backfill.heartbeat")]
    BackfillHeartbeat,
    /// In a lookup, after the DB row was read.
    #[strum(serialize = "lookup.after_db_read")]
    #[serde(rename = "lookup.after_db_read")]
    LookupAfterDbRead,
    /// Inside the read-repair write transaction, between its read and its write.
    #[strum(serialize = "repair.after_read")]
    #[serde(rename = "repair.after_read")]
    RepairAfterRead,
}

impl Failpoint {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Where the failpoint sits (its doc comment).
    pub fn place(self) -> &'static str {
        strum::EnumMessage::get_documentation(&self).unwrap_or("")
    }
}

impl fmt::Display for Failpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Failpoint {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        use strum::IntoEnumIterator;
        Failpoint::iter().find(|f| f.name() == name).ok_or_else(|| {
            let valid: Vec<&str> = Failpoint::iter().map(Failpoint::name).collect();
            format!("unknown failpoint '{name}' (valid: {})", valid.join(", "))
        })
    }
}

/// What a failpoint does when it fires.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailAction {
    /// Block until released by the runner or until the duration ends.
    Pause(Duration),
    /// Sleep for the duration.
    Sleep(Duration),
    /// Return an injected error from the operation.
    Error(String),
    /// Exit the process with this code (task workers: stop as if killed).
    Exit(i32),
    /// SIGKILL this process (task workers: stop as if killed).
    Kill,
}

/// Longest pause when none is given: long enough to outlast any scenario wait, short
/// enough that a forgotten pause cannot hang CI.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(60);

impl fmt::Display for FailAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailAction::Pause(d) => write!(f, "pause({})", format_duration(*d)),
            FailAction::Sleep(d) => write!(f, "sleep({})", format_duration(*d)),
            FailAction::Error(m) => write!(f, "error({m})"),
            FailAction::Exit(c) => write!(f, "exit({c})"),
            FailAction::Kill => f.write_str("kill"),
        }
    }
}

impl FromStr for FailAction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, arg) = match text.split_once('(') {
            Some((name, rest)) => {
                let arg = rest
                    .strip_suffix(')')
                    .ok_or_else(|| format!("failpoint action '{text}' is missing ')'"))?;
                (name, Some(arg))
            }
            None => (text, None),
        };
        match (name, arg) {
            ("pause", None) => Ok(FailAction::Pause(DEFAULT_PAUSE)),
            ("pause", Some(d)) => Ok(FailAction::Pause(parse_duration(d)?)),
            ("sleep", Some(d)) => Ok(FailAction::Sleep(parse_duration(d)?)),
            ("error", None) => Ok(FailAction::Error("injected failure".into())),
            ("error", Some(m)) => Ok(FailAction::Error(m.to_string())),
            ("exit", None) => Ok(FailAction::Exit(1)),
            ("exit", Some(c)) => c
                .parse()
                .map(FailAction::Exit)
                .map_err(|_| format!("exit code '{c}' is not a number")),
            ("kill", None) => Ok(FailAction::Kill),
            _ => Err(format!(
                "unknown failpoint action '{text}' (valid: pause, pause(D), sleep(D), error, error(MSG), exit(CODE), kill)"
            )),
        }
    }
}

/// One configured failpoint: `name[@N]=action`; `@N` fires only on the N-th hit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailpointSpec {
    pub name: Failpoint,
    pub action: FailAction,
    pub on_hit: Option<u64>,
}

impl fmt::Display for FailpointSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.on_hit {
            Some(n) => write!(f, "{}@{}={}", self.name, n, self.action),
            None => write!(f, "{}={}", self.name, self.action),
        }
    }
}

impl FromStr for FailpointSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (lhs, action) = text
            .split_once('=')
            .ok_or_else(|| format!("failpoint '{text}' must look like NAME[@N]=ACTION"))?;
        let (name, on_hit) = match lhs.split_once('@') {
            Some((name, n)) => {
                let n: u64 = n.parse().map_err(|_| {
                    format!("failpoint hit count '{n}' in '{text}' is not a number")
                })?;
                if n == 0 {
                    return Err(format!("failpoint hit count in '{text}' starts at 1"));
                }
                (name, Some(n))
            }
            None => (lhs, None),
        };
        Ok(FailpointSpec {
            name: name.parse()?,
            action: action.parse()?,
            on_hit,
        })
    }
}

/// Checks a failpoint name, listing the valid ones on error.
pub fn validate_name(name: &str) -> Result<(), String> {
    name.parse::<Failpoint>().map(|_| ())
}

/// How a process reacts to `exit` and `kill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathMode {
    /// A real OS process: exit or SIGKILL itself.
    RealProcess,
    /// A task standing in for a process: return [`FailpointError::Killed`] and let the
    /// caller stop without any cleanup, as a dead process would.
    Simulated,
}

/// Why an operation stopped at a failpoint.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FailpointError {
    #[error("failpoint {name} injected an error: {message}")]
    Injected { name: Failpoint, message: String },
    #[error("failpoint {name} killed the worker")]
    Killed { name: Failpoint },
}

/// The failpoints of one process context.
#[derive(Debug)]
pub struct FailpointSet {
    specs: Vec<FailpointSpec>,
    hits: Mutex<HashMap<Failpoint, u64>>,
    release_dir: Option<PathBuf>,
    death: DeathMode,
}

impl Default for FailpointSet {
    fn default() -> Self {
        FailpointSet::new(Vec::new(), None, DeathMode::Simulated)
    }
}

impl FailpointSet {
    pub fn new(specs: Vec<FailpointSpec>, release_dir: Option<PathBuf>, death: DeathMode) -> Self {
        FailpointSet {
            specs,
            hits: Mutex::new(HashMap::new()),
            release_dir,
            death,
        }
    }

    pub fn specs(&self) -> &[FailpointSpec] {
        &self.specs
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The file whose creation releases `worker`'s pause at failpoint `name` (one worker's,
    /// never every worker paused there).
    pub fn release_file(release_dir: &std::path::Path, worker: &str, name: &str) -> PathBuf {
        release_dir.join(format!("{worker}@{name}.release"))
    }

    /// The file whose creation ends every pause under `release_dir`, now and later: the
    /// runner's teardown, so no worker is left hanging whatever it hits next.
    pub fn release_all_file(release_dir: &std::path::Path) -> PathBuf {
        release_dir.join("ALL.release")
    }

    /// Evaluates failpoint `name`. Blocking (it may sleep or pause); callers on async
    /// threads run it inside `spawn_blocking` like every other state-layer call.
    pub fn hit(
        &self,
        name: Failpoint,
        events: &EventSink,
        worker: &str,
    ) -> Result<(), FailpointError> {
        if self.specs.is_empty() {
            return Ok(());
        }
        let hit_number = {
            let mut hits = match self.hits.lock() {
                Ok(h) => h,
                Err(poisoned) => poisoned.into_inner(),
            };
            let n = hits.entry(name).or_insert(0);
            *n += 1;
            *n
        };
        let Some(spec) = self
            .specs
            .iter()
            .find(|s| s.name == name && s.on_hit.is_none_or(|n| n == hit_number))
        else {
            return Ok(());
        };
        events.emit(
            worker,
            kinds::FAILPOINT_FIRED,
            json!({"name": name.name(), "hit": hit_number, "action": spec.action.to_string()}),
        );
        tracing::info!(failpoint = name.name(), hit = hit_number, action = %spec.action, "failpoint fired");
        match &spec.action {
            FailAction::Sleep(d) => {
                std::thread::sleep(*d);
                Ok(())
            }
            FailAction::Pause(d) => {
                self.pause(worker, name, *d);
                Ok(())
            }
            FailAction::Error(message) => Err(FailpointError::Injected {
                name,
                message: message.clone(),
            }),
            FailAction::Exit(code) => match self.death {
                DeathMode::RealProcess => std::process::exit(*code),
                DeathMode::Simulated => Err(FailpointError::Killed { name }),
            },
            FailAction::Kill => match self.death {
                DeathMode::RealProcess => {
                    // SAFETY: kill(2) on our own pid with a valid signal number.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGKILL);
                    }
                    std::process::abort()
                }
                DeathMode::Simulated => Err(FailpointError::Killed { name }),
            },
        }
    }

    fn pause(&self, worker: &str, name: Failpoint, max: Duration) {
        let started = Instant::now();
        let release = self
            .release_dir
            .as_deref()
            .map(|dir| Self::release_file(dir, worker, name.name()));
        let release_all = self.release_dir.as_deref().map(Self::release_all_file);
        while started.elapsed() < max {
            if release_all.as_deref().is_some_and(|f| f.exists()) {
                return;
            }
            // Consuming the file is what ends the pause: a release frees one pause, once.
            if release
                .as_deref()
                .is_some_and(|f| std::fs::remove_file(f).is_ok())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(5).min(max - started.elapsed()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hit_counted_spec_and_round_trips() {
        let spec: FailpointSpec = "backfill.after_batch@2=exit(137)".parse().unwrap();
        assert_eq!(spec.on_hit, Some(2));
        assert_eq!(spec.action, FailAction::Exit(137));
        assert_eq!(spec.to_string(), "backfill.after_batch@2=exit(137)");
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = "backfill.nowhere=kill"
            .parse::<FailpointSpec>()
            .unwrap_err();
        assert!(err.contains("backfill.after_claim"), "{err}");
    }

    #[test]
    fn unknown_action_names_the_grammar() {
        let err = "backfill.after_claim=explode"
            .parse::<FailpointSpec>()
            .unwrap_err();
        assert!(err.contains("pause(D)"), "{err}");
    }

    #[test]
    fn fires_only_on_the_requested_hit() {
        let set = FailpointSet::new(
            vec!["backfill.after_batch@2=error(boom)".parse().unwrap()],
            None,
            DeathMode::Simulated,
        );
        let (sink, events) = EventSink::memory();
        assert!(set.hit(Failpoint::BackfillAfterBatch, &sink, "w").is_ok());
        let err = set
            .hit(Failpoint::BackfillAfterBatch, &sink, "w")
            .unwrap_err();
        assert!(matches!(err, FailpointError::Injected { .. }));
        assert!(set.hit(Failpoint::BackfillAfterBatch, &sink, "w").is_ok());
        assert_eq!(events.lock().unwrap().len(), 1);
    }

    #[test]
    fn simulated_kill_returns_killed() {
        let set = FailpointSet::new(
            vec!["backfill.after_claim=kill".parse().unwrap()],
            None,
            DeathMode::Simulated,
        );
        let err = set
            .hit(Failpoint::BackfillAfterClaim, &EventSink::Null, "w")
            .unwrap_err();
        assert_eq!(
            err,
            FailpointError::Killed {
                name: Failpoint::BackfillAfterClaim
            }
        );
    }

    #[test]
    fn pause_ends_when_the_release_file_appears() {
        let dir = tempfile::tempdir().unwrap();
        let set = FailpointSet::new(
            vec!["backfill.after_claim=pause(30s)".parse().unwrap()],
            Some(dir.path().to_path_buf()),
            DeathMode::Simulated,
        );
        let release = FailpointSet::release_file(dir.path(), "w", "backfill.after_claim");
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(release, b"").unwrap();
        });
        let started = Instant::now();
        set.hit(Failpoint::BackfillAfterClaim, &EventSink::Null, "w")
            .unwrap();
        releaser.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_release_frees_one_pause_once_and_the_next_hit_pauses_again() {
        let dir = tempfile::tempdir().unwrap();
        let set = FailpointSet::new(
            vec!["backfill.after_batch=pause(300ms)".parse().unwrap()],
            Some(dir.path().to_path_buf()),
            DeathMode::Simulated,
        );
        let release = FailpointSet::release_file(dir.path(), "w", "backfill.after_batch");
        std::fs::write(&release, b"").unwrap();
        let started = Instant::now();
        set.hit(Failpoint::BackfillAfterBatch, &EventSink::Null, "w")
            .unwrap();
        assert!(started.elapsed() < Duration::from_millis(300));
        assert!(!release.exists(), "the release was not consumed");
        // No new release: the second hit waits out its whole pause.
        let started = Instant::now();
        set.hit(Failpoint::BackfillAfterBatch, &EventSink::Null, "w")
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn another_workers_release_does_not_free_this_pause() {
        let dir = tempfile::tempdir().unwrap();
        let set = FailpointSet::new(
            vec!["backfill.after_claim=pause(200ms)".parse().unwrap()],
            Some(dir.path().to_path_buf()),
            DeathMode::Simulated,
        );
        let other = FailpointSet::release_file(dir.path(), "other", "backfill.after_claim");
        std::fs::write(&other, b"").unwrap();
        let started = Instant::now();
        set.hit(Failpoint::BackfillAfterClaim, &EventSink::Null, "w")
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(other.exists(), "the other worker's release was taken");
    }
}
