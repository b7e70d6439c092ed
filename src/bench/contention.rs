//! Startup contention: N real `statedb-harness init --json` processes started together on
//! one home with a fresh DB, for N in e.g. 1, 2, 4, 8.
//!
//! Measures the wall time from the first spawn until every process has exited, and checks
//! from each process's JSON that all became ready and that exactly one of them reported
//! `"ran": true` (one backfill, everybody else waited at the gate). The processes use the
//! production timings: a waiter wakes on the owner's completing commit (data_version), its 1 s poll is only the fallback.
//!
//! The binary is passed in: the CLI passes `std::env::current_exe()`, `cargo bench` and the
//! integration tests pass `env!("CARGO_BIN_EXE_statedb-harness")` (which Cargo only sets
//! for those targets, never for the library).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::stats::{millis, ratio, Stat};
use super::workspace::{remove_dir, BenchHome, Workspace};
use super::Progress;
use crate::timing::DEFAULT_POLL_INTERVAL;

/// What to run for the contention family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentionOptions {
    /// The `statedb-harness` executable to spawn.
    pub binary: PathBuf,
    /// Process counts, e.g. `[1, 2, 4, 8]`.
    pub procs: Vec<usize>,
    /// Rollouts in the home (reused when it is one of the run's sizes).
    pub size: usize,
}

/// Contention figures for every process count.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContentionFigures {
    pub size: usize,
    /// Poll interval of the waiting processes (production default), ms.
    pub poll_interval_ms: u64,
    pub runs: Vec<ContentionRun>,
}

/// N processes, repeated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContentionRun {
    pub procs: usize,
    /// First spawn to last exit, ms.
    pub all_ready_ms: Stat,
    /// From the owner's exit to the last process's exit (the waiters' wake-up lag plus
    /// their own exit), ms; goal: within 50 ms.
    pub wake_lag_ms: Option<Stat>,
    /// `all_ready_ms` / the same for the smallest process count (medians).
    pub ratio_to_fewest: Option<f64>,
    /// Every process of every repeat printed `"ready": true`.
    pub all_ready: bool,
    /// For each repeat, how many processes reported `"ran": true`.
    pub ran_counts: Vec<usize>,
    /// Every repeat had exactly one `"ran": true`.
    pub exactly_one_ran: bool,
}

pub fn measure(
    ws: &Workspace,
    home: &BenchHome,
    opts: &ContentionOptions,
    repeats: usize,
    progress: &Progress,
) -> Result<ContentionFigures, String> {
    let mut runs = Vec::new();
    for &procs in &opts.procs {
        progress.note(format!(
            "contention: {procs} init processes on {} rollouts",
            home.size
        ));
        let mut wall = Vec::new();
        let mut ran_counts = Vec::new();
        let mut lags = Vec::new();
        let mut all_ready = true;
        for _ in 0..repeats.max(1) {
            let db = ws
                .fresh_dir(&format!("db-contention-{procs}"))
                .map_err(|e| format!("cannot create a DB directory: {e}"))?;
            let outcome = run_once(&opts.binary, &home.codex_home, &db, procs);
            remove_dir(&db);
            let (ms, ready, ran, lag) = outcome?;
            wall.push(ms);
            lags.extend(lag);
            all_ready &= ready;
            ran_counts.push(ran);
        }
        runs.push(ContentionRun {
            procs,
            all_ready_ms: Stat::from_samples(wall).ok_or("no contention samples")?,
            wake_lag_ms: Stat::from_samples(lags),
            ratio_to_fewest: None,
            all_ready,
            exactly_one_ran: ran_counts.iter().all(|&n| n == 1),
            ran_counts,
        });
    }
    let fewest = runs
        .iter()
        .min_by_key(|r| r.procs)
        .map(|r| r.all_ready_ms.median);
    if let Some(base) = fewest {
        for run in &mut runs {
            run.ratio_to_fewest = ratio(run.all_ready_ms.median, base);
        }
    }
    Ok(ContentionFigures {
        size: home.size,
        poll_interval_ms: DEFAULT_POLL_INTERVAL.as_millis() as u64,
        runs,
    })
}

/// Starts `procs` processes, waits for all; returns (wall ms, all ready, count of ran, ms
/// from the owner's exit to the last exit).
fn run_once(
    binary: &Path,
    codex_home: &Path,
    sqlite_home: &Path,
    procs: usize,
) -> Result<(f64, bool, usize, Option<f64>), String> {
    let started = Instant::now();
    let mut children = Vec::with_capacity(procs);
    for _ in 0..procs {
        let child = Command::new(binary)
            .arg("init")
            .arg("--codex-home")
            .arg(codex_home)
            .arg("--sqlite-home")
            .arg(sqlite_home)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()));
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                for mut c in children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(e);
            }
        }
    }
    // Reap by polling so each exit gets its own time (the owner's vs the waiters').
    let mut exits: Vec<Option<(Instant, std::process::ExitStatus)>> = vec![None; procs];
    while exits.iter().any(Option::is_none) {
        for (child, exit) in children.iter_mut().zip(exits.iter_mut()) {
            if exit.is_none() {
                match child.try_wait() {
                    Ok(Some(status)) => *exit = Some((Instant::now(), status)),
                    Ok(None) => {}
                    Err(e) => return Err(format!("cannot wait for an init process: {e}")),
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let wall = millis(started.elapsed());
    let mut all_ready = true;
    let mut ran = 0;
    let mut owner_exit = None;
    let mut last_exit = started;
    for (child, exit) in children.iter_mut().zip(&exits) {
        let Some((at, status)) = *exit else { continue };
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        let json: serde_json::Value = match serde_json::from_str(stdout.trim()) {
            Ok(v) => v,
            Err(_) => {
                return Err(format!(
                    "init process exited with {status} and printed no JSON; stderr: {}",
                    stderr.trim()
                ))
            }
        };
        all_ready &= status.success() && json["ready"] == serde_json::Value::Bool(true);
        if json["backfill"]["ran"] == serde_json::Value::Bool(true) {
            ran += 1;
            owner_exit = Some(at);
        }
        last_exit = last_exit.max(at);
    }
    let wake_lag = owner_exit.map(|owner| millis(last_exit.saturating_duration_since(owner)));
    Ok((wall, all_ready, ran, wake_lag))
}
