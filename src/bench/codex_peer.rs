//! Side by side with the real Codex (`peers.codex`): the pinned `codex app-server` and the
//! reference on the same home, each behind a real process boundary, in the same run.
//!
//! - **First start**: spawn to "backfill complete" on a fresh sqlite home. Codex: the
//!   app-server answered `initialize` and its `backfill_state` row (read from outside,
//!   read-only) says `complete`. Reference: one `statedb-harness init` process to its exit.
//! - **Warm read**: a long-lived app-server answering `thread/read` (JSON-RPC over pipes)
//!   against the reference's in-process `find_thread_path` on a long-lived handle; and one
//!   process each on a complete DB (app-server start + read + shutdown vs one
//!   `statedb-harness lookup` process).
//! - **All ready**: N processes started together on a fresh sqlite home, until every one
//!   is ready (Codex: answered `initialize`, and the row is `complete`).
//!
//! Ratios are Codex / reference (above 1: the reference is ahead). Every answer is checked
//! (the read names the thread; the lookup comes from the DB). Without a Codex binary the
//! family reports `skipped` with the reason.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::stats::{micros, millis, ratio, Stat};
use super::workspace::{remove_dir, BenchHome, Workspace};
use super::Progress;
use crate::codex::{AppServer, CodexBin, HomeSpec};
use crate::lookup::{find_thread_path, LookupSource};
use crate::process::ProcessContext;
use crate::state_db::try_init;
use crate::thread::Scope;

/// How long one Codex start may take before the family gives up.
const CODEX_START_TIMEOUT: Duration = Duration::from_secs(600);
/// Warm reads sampled per side.
const WARM_SAMPLES: usize = 30;
/// One-process reads sampled per side.
const COLD_SAMPLES: usize = 5;

/// `peers.codex`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CodexPeerReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codex_version: Option<String>,
    pub sizes: Vec<CodexPeerFigures>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// One home size, both sides.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CodexPeerFigures {
    pub size: usize,
    pub first_start: Pair,
    pub warm_read: Pair,
    pub one_process_read: Pair,
    pub all_ready: Vec<ReadyPair>,
}

/// One figure on both sides; `ratio` = Codex / reference (medians).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pair {
    pub unit: &'static str,
    pub codex: Stat,
    pub reference: Stat,
    pub ratio: Option<f64>,
}

impl Pair {
    fn new(unit: &'static str, codex: Vec<f64>, reference: Vec<f64>) -> Result<Pair, String> {
        let codex = Stat::from_samples(codex).ok_or("no Codex samples")?;
        let reference = Stat::from_samples(reference).ok_or("no reference samples")?;
        Ok(Pair {
            unit,
            ratio: ratio(codex.median, reference.median),
            codex,
            reference,
        })
    }
}

/// N concurrent starts on both sides, ms.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadyPair {
    pub procs: usize,
    /// `None` when a Codex start failed (see `codex_failed`).
    pub codex_ms: Option<f64>,
    pub reference_ms: f64,
    pub ratio: Option<f64>,
    /// Why a Codex start failed (e.g. its startup gate timed out), when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codex_failed: Option<String>,
}

/// Whether the reference is ahead of Codex on every side-by-side figure (`None`: none
/// measured), and the detail. A concurrent-start run that Codex failed (its waiters giving
/// up behind a slow first start) while the reference had all N ready is won by the
/// reference and counted as such; any other missing ratio leaves the goal unmet.
pub fn ahead_of_codex(sizes: &[CodexPeerFigures]) -> (Option<bool>, String) {
    let codex_failures = sizes
        .iter()
        .flat_map(|f| &f.all_ready)
        .filter(|a| a.codex_failed.is_some())
        .count();
    let ratios: Vec<Option<f64>> = sizes
        .iter()
        .flat_map(|f| {
            [
                f.first_start.ratio,
                f.warm_read.ratio,
                f.one_process_read.ratio,
            ]
            .into_iter()
            .chain(
                f.all_ready
                    .iter()
                    .filter(|a| a.codex_failed.is_none())
                    .map(|a| a.ratio),
            )
        })
        .collect();
    let met = (!ratios.is_empty()).then(|| ratios.iter().all(|r| r.is_some_and(|r| r > 1.0)));
    let smallest = ratios.iter().flatten().copied().min_by(f64::total_cmp);
    let detail = match (smallest, codex_failures) {
        (None, _) => "not measured".to_string(),
        (Some(r), 0) => format!("smallest Codex/reference ratio {r:.1}"),
        (Some(r), n) => format!(
            "smallest Codex/reference ratio {r:.1}; Codex failed {n} concurrent-start run(s) the reference completed"
        ),
    };
    (met, detail)
}

/// Locates Codex or says why the family is skipped.
pub fn locate() -> Result<(CodexBin, String), String> {
    let bin = CodexBin::locate(None).map_err(|e| format!("no Codex binary: {e}"))?;
    let version = bin
        .version()
        .map_err(|e| format!("Codex at {} does not run: {e}", bin.path().display()))?;
    Ok((bin, version))
}

/// Measures one home. `binary` is this crate's executable; `procs` the concurrent counts.
pub fn measure(
    ws: &Workspace,
    home: &BenchHome,
    codex: &CodexBin,
    binary: &Path,
    procs: &[usize],
    progress: &Progress,
) -> Result<CodexPeerFigures, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    progress.note(format!("codex peer: first start on {} rollouts", home.size));
    let codex_dir = fresh(ws, "codex-first")?;
    let codex_first = rt.block_on(all_ready_codex(codex, home, &codex_dir, 1))?;
    let ref_dir = fresh(ws, "reference-first")?;
    let ref_first = all_ready_reference(binary, home, &ref_dir, 1)?;
    let first_start = Pair::new(
        "s",
        vec![codex_first.as_secs_f64()],
        vec![ref_first.as_secs_f64()],
    )?;

    progress.note("codex peer: warm and one-process reads");
    let ids: Vec<String> = (0..8)
        .map(|k| home.threads[k * home.threads.len() / 8].id.to_string())
        .collect();
    let codex_spec = spec(home, &codex_dir);
    let (codex_warm, codex_cold) = rt.block_on(codex_reads(codex, &codex_spec, &ids))?;
    let (ref_warm, ref_cold) = reference_reads(binary, home, &ref_dir, &ids)?;
    remove_dir(&codex_dir);
    remove_dir(&ref_dir);
    let warm_read = Pair::new("us", codex_warm, ref_warm)?;
    let one_process_read = Pair::new("ms", codex_cold, ref_cold)?;

    let mut all_ready = Vec::new();
    for &n in procs {
        progress.note(format!("codex peer: {n} concurrent starts"));
        let (codex, reference) = if n == 1 {
            (Ok(codex_first), Ok(ref_first))
        } else {
            let d = fresh(ws, "codex-ready")?;
            let c = rt.block_on(all_ready_codex(codex, home, &d, n));
            remove_dir(&d);
            let d = fresh(ws, "reference-ready")?;
            let r = all_ready_reference(binary, home, &d, n);
            remove_dir(&d);
            (c, r)
        };
        let reference_ms = millis(reference?);
        // A Codex start that fails (its own 30 s gate timing out behind a slow first
        // start) is a finding, not a reason to lose the other figures.
        let (codex_ms, codex_failed) = match codex {
            Ok(d) => (Some(millis(d)), None),
            Err(e) => (None, Some(e.lines().next().unwrap_or_default().to_string())),
        };
        all_ready.push(ReadyPair {
            procs: n,
            ratio: codex_ms.and_then(|c| ratio(c, reference_ms)),
            codex_ms,
            reference_ms,
            codex_failed,
        });
    }
    Ok(CodexPeerFigures {
        size: home.size,
        first_start,
        warm_read,
        one_process_read,
        all_ready,
    })
}

fn fresh(ws: &Workspace, label: &str) -> Result<std::path::PathBuf, String> {
    let dir = ws
        .fresh_dir(label)
        .map_err(|e| format!("cannot create a DB directory: {e}"))?;
    ws.settle();
    Ok(dir)
}

fn spec(home: &BenchHome, sqlite_home: &Path) -> HomeSpec {
    HomeSpec {
        codex_home: home.codex_home.clone(),
        sqlite_home: Some(sqlite_home.to_path_buf()),
    }
}

/// N app-servers at once on a fresh sqlite home: spawn until all answered `initialize`
/// and the DB says `complete`.
async fn all_ready_codex(
    codex: &CodexBin,
    home: &BenchHome,
    sqlite_home: &Path,
    n: usize,
) -> Result<Duration, String> {
    let spec = spec(home, sqlite_home);
    let started = Instant::now();
    let starts = (0..n).map(|_| AppServer::start(codex, &spec, CODEX_START_TIMEOUT));
    let servers = futures_join_all(starts).await;
    let mut live = Vec::new();
    for s in servers {
        live.push(s.map_err(|e| {
            let text = e.to_string();
            let gate = text.lines().find(|l| l.contains("timed out waiting"));
            format!(
                "Codex app-server did not start: {}",
                gate.unwrap_or_else(|| text.lines().next().unwrap_or_default())
            )
        })?);
    }
    let db = sqlite_home.join(crate::state::STATE_DB_FILENAME);
    loop {
        if backfill_complete(&db) {
            break;
        }
        if started.elapsed() > CODEX_START_TIMEOUT {
            return Err(format!(
                "Codex's backfill at {} did not complete",
                db.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    for s in live {
        let _ = s.shutdown().await;
    }
    Ok(took)
}

/// Polls every future until all are done, so the N starts run concurrently on one thread
/// (they borrow the binary and home, so they cannot be spawned as tasks).
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let futures: Vec<_> = futures.map(Box::pin).collect();
    let mut slots: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, fut) in slots.iter_mut().zip(futures.iter_mut()) {
            if let Some(f) = fut {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *slot = Some(v);
                        *fut = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    slots.into_iter().flatten().collect()
}

fn backfill_complete(db: &Path) -> bool {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return false;
    };
    conn.query_row("SELECT status FROM backfill_state WHERE id = 1", [], |r| {
        r.get::<_, String>(0)
    })
    .is_ok_and(|s| s == "complete")
}

/// N `statedb-harness init` processes at once: spawn until the last exits ready.
fn all_ready_reference(
    binary: &Path,
    home: &BenchHome,
    sqlite_home: &Path,
    n: usize,
) -> Result<Duration, String> {
    let started = Instant::now();
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(binary)
                .arg("init")
                .arg("--codex-home")
                .arg(&home.codex_home)
                .arg("--sqlite-home")
                .arg(sqlite_home)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        })
        .collect();
    for child in children {
        let status = child
            .and_then(|mut c| c.wait())
            .map_err(|e| format!("reference init process: {e}"))?;
        if !status.success() {
            return Err(format!("reference init process failed: {status}"));
        }
    }
    Ok(started.elapsed())
}

/// Warm `thread/read`s on one server (µs) and one-process start+read+shutdown (ms).
async fn codex_reads(
    codex: &CodexBin,
    spec: &HomeSpec,
    ids: &[String],
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let check = |answer: &serde_json::Value, id: &str| {
        if answer.to_string().contains(id) {
            Ok(())
        } else {
            Err(format!("Codex thread/read of {id} answered {answer}"))
        }
    };
    let mut server = AppServer::start(codex, spec, CODEX_START_TIMEOUT)
        .await
        .map_err(|e| format!("Codex app-server did not start: {e}"))?;
    let mut warm = Vec::new();
    for k in 0..=WARM_SAMPLES {
        let id = &ids[k % ids.len()];
        let t = Instant::now();
        let answer = server
            .read(id, false)
            .await
            .map_err(|e| format!("Codex thread/read of {id}: {e}"))?;
        let took = t.elapsed();
        check(&answer, id)?;
        if k > 0 {
            warm.push(micros(took));
        }
    }
    let _ = server.shutdown().await;
    let mut cold = Vec::new();
    for k in 0..COLD_SAMPLES {
        let id = &ids[k % ids.len()];
        let t = Instant::now();
        let mut server = AppServer::start(codex, spec, CODEX_START_TIMEOUT)
            .await
            .map_err(|e| format!("Codex app-server did not start: {e}"))?;
        let answer = server
            .read(id, false)
            .await
            .map_err(|e| format!("Codex thread/read of {id}: {e}"))?;
        let _ = server.shutdown().await;
        cold.push(millis(t.elapsed()));
        check(&answer, id)?;
    }
    Ok((warm, cold))
}

/// Warm in-process lookups (µs) and one `statedb-harness lookup` process each (ms).
fn reference_reads(
    binary: &Path,
    home: &BenchHome,
    sqlite_home: &Path,
    ids: &[String],
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let ctx = ProcessContext::plain("bench-codex-peer");
    let handle = try_init(&ctx, &home.config(sqlite_home))
        .map_err(|e| format!("cannot open the reference DB: {e}"))?
        .handle;
    let mut warm = Vec::new();
    for k in 0..=WARM_SAMPLES {
        let id = &ids[k % ids.len()];
        let t = Instant::now();
        let r = find_thread_path(Some(&handle), &home.codex_home, id, Scope::Any);
        let took = t.elapsed();
        if r.source != Some(LookupSource::Db) {
            return Err(format!("reference lookup of {id} was not a DB hit: {r:?}"));
        }
        if k > 0 {
            warm.push(micros(took));
        }
    }
    drop(handle);
    let mut cold = Vec::new();
    for k in 0..COLD_SAMPLES {
        let id = &ids[k % ids.len()];
        let t = Instant::now();
        let out = Command::new(binary)
            .arg("lookup")
            .arg("--codex-home")
            .arg(&home.codex_home)
            .arg("--sqlite-home")
            .arg(sqlite_home)
            .arg("--any")
            .arg("--json")
            .arg(id)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("reference lookup process: {e}"))?;
        cold.push(millis(t.elapsed()));
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.contains("\"db\"") {
            return Err(format!(
                "reference lookup process of {id}: {} {text}",
                out.status
            ));
        }
    }
    Ok((warm, cold))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(ratio: f64) -> Pair {
        Pair::new("ms", vec![ratio], vec![1.0]).expect("pair")
    }

    fn figures(read_ratio: f64, ready: Vec<ReadyPair>) -> CodexPeerFigures {
        CodexPeerFigures {
            size: 10,
            first_start: pair(20.0),
            warm_read: pair(read_ratio),
            one_process_read: pair(2.0),
            all_ready: ready,
        }
    }

    fn ready(procs: usize, codex_ms: Option<f64>) -> ReadyPair {
        ReadyPair {
            procs,
            codex_ms,
            reference_ms: 100.0,
            ratio: codex_ms.map(|c| c / 100.0),
            codex_failed: codex_ms
                .is_none()
                .then(|| "timed out after 30s".to_string()),
        }
    }

    #[test]
    fn a_codex_start_that_failed_where_the_reference_completed_is_won_and_named() {
        let (met, detail) =
            ahead_of_codex(&[figures(3.0, vec![ready(1, Some(900.0)), ready(2, None)])]);
        assert_eq!(met, Some(true), "{detail}");
        assert_eq!(
            detail,
            "smallest Codex/reference ratio 2.0; Codex failed 1 concurrent-start run(s) the reference completed"
        );
    }

    #[test]
    fn one_figure_where_codex_is_faster_fails_the_goal() {
        let (met, detail) = ahead_of_codex(&[figures(0.5, vec![ready(1, Some(900.0))])]);
        assert_eq!(met, Some(false));
        assert_eq!(detail, "smallest Codex/reference ratio 0.5");
    }

    #[test]
    fn a_ratio_that_could_not_be_formed_fails_the_goal() {
        let mut ready = ready(4, Some(900.0));
        ready.ratio = None;
        assert_eq!(ahead_of_codex(&[figures(3.0, vec![ready])]).0, Some(false));
        assert_eq!(ahead_of_codex(&[]), (None, "not measured".to_string()));
    }
}
