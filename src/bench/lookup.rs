//! Lookup latency of `lookup::find_thread_path` on a complete DB, by the path a lookup takes:
//!
//! - **DB hit**: the row's path, verified against the file head.
//! - **Day probe**: the row is deleted first, so the lookup falls back to the filesystem,
//!   finds the file by listing the UUIDv7 day directories, and read-repairs (re-inserts)
//!   the row.
//! - **Full walk**: the thread's file is moved into a non-date sub-directory
//!   (`sessions/misplaced/`) and its row deleted, so the day probe misses and the search
//!   walks the whole root before it finds (and repairs) it.
//! - **Not found**: a UUIDv7 from within the home's time range that no file carries: the
//!   probe and the whole walk, then nothing.
//!
//! Next to the DB hit, in the same rounds and on the same threads, a **raw verified hit**
//! is the floor a verified lookup can reach: one cached prepared point query for the path,
//! open the file, read its first line, `serde_json` parse, compare the id
//! (`db_hit_raw_us`; `db_hit_ratio` = DB hit / raw).
//!
//! Each sample measures the same path: the row a previous sample repaired is deleted again
//! (untimed) before the next one, and every answer is checked (source, fallback reason,
//! repaired, path) so a figure never silently measures another path. The moved file is
//! put back when the family ends, even on an error. All sizes are measured in the same
//! rounds, interleaved, so the growth ratios compare sizes under the same machine load.

use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::stats::{micros, ratio, timed, Stat};
use super::workspace::{BenchHome, Workspace};
use super::Progress;
use crate::lookup::{find_thread_path, FallbackReason, LookupResult, LookupSource};
use crate::process::ProcessContext;
use crate::rollout::layout::{uuid_v7_unix_ms, Root};
use crate::rollout::search::{find_rollout_by_id, SearchVia};
use crate::state::StateDbHandle;
use crate::state_db::try_init;
use crate::thread::Scope;

/// Name of the non-date directory the full-walk thread's file is moved into.
pub const MISPLACED_DIR: &str = "misplaced";
/// Threads the DB-hit and day-probe samples rotate over.
const ROTATION: usize = 16;

/// Lookup latencies of one home size (µs).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LookupFigures {
    pub size: usize,
    pub db_hit_us: Stat,
    /// The raw verified hit (the floor; see the module docs).
    pub db_hit_raw_us: Stat,
    /// `db_hit_us` / `db_hit_raw_us` (medians).
    pub db_hit_ratio: Option<f64>,
    pub day_probe_us: Stat,
    pub full_walk_us: Stat,
    pub not_found_us: Stat,
}

/// How each latency grew from the smallest to the largest size (median ratios).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LookupGrowth {
    pub from_size: usize,
    pub to_size: usize,
    /// Expected about flat.
    pub db_hit: Option<f64>,
    /// Expected about flat.
    pub day_probe: Option<f64>,
    /// Grows with the number of directories (expected).
    pub full_walk: Option<f64>,
    /// Grows with the number of directories (expected).
    pub not_found: Option<f64>,
}

impl LookupGrowth {
    pub fn between(small: &LookupFigures, large: &LookupFigures) -> Self {
        let g = |a: &Stat, b: &Stat| ratio(b.median, a.median);
        LookupGrowth {
            from_size: small.size,
            to_size: large.size,
            db_hit: g(&small.db_hit_us, &large.db_hit_us),
            day_probe: g(&small.day_probe_us, &large.day_probe_us),
            full_walk: g(&small.full_walk_us, &large.full_walk_us),
            not_found: g(&small.not_found_us, &large.not_found_us),
        }
    }
}

/// Puts the moved file back when dropped.
struct Misplaced {
    original: PathBuf,
    moved: PathBuf,
}

impl Misplaced {
    fn new(original: &Path, sessions: &Path) -> Result<Self, String> {
        let dir = sessions.join(MISPLACED_DIR);
        let name = original.file_name().ok_or("rollout path without a name")?;
        let moved = dir.join(name);
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::rename(original, &moved))
            .map_err(|e| format!("cannot move {} aside: {e}", original.display()))?;
        Ok(Misplaced {
            original: original.to_path_buf(),
            moved,
        })
    }
}

impl Drop for Misplaced {
    fn drop(&mut self) {
        if let Err(e) = std::fs::rename(&self.moved, &self.original) {
            tracing::error!(
                "bench: cannot put {} back at {}: {e}",
                self.moved.display(),
                self.original.display()
            );
            return;
        }
        if let Some(dir) = self.moved.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// One kind of lookup: the thread ids it rotates over and what its answer must be.
struct Kind {
    name: &'static str,
    ids: Vec<(Uuid, String)>,
    /// Delete the row before each sample.
    delete_row: bool,
    expect: fn(&LookupResult, &Expected) -> bool,
}

struct Expected {
    misplaced: PathBuf,
}

fn expect_db_hit(r: &LookupResult, _: &Expected) -> bool {
    r.source == Some(LookupSource::Db) && r.path.is_some()
}

fn expect_repaired(r: &LookupResult) -> bool {
    r.source == Some(LookupSource::Filesystem)
        && r.fallback_reason == Some(FallbackReason::MissingRow)
        && r.repaired
}

fn expect_day_probe(r: &LookupResult, e: &Expected) -> bool {
    expect_repaired(r) && r.path.as_deref() != Some(e.misplaced.as_path())
}

fn expect_walk(r: &LookupResult, e: &Expected) -> bool {
    expect_repaired(r) && r.path.as_deref() == Some(e.misplaced.as_path())
}

fn expect_not_found(r: &LookupResult, _: &Expected) -> bool {
    r.path.is_none() && r.fallback_reason == Some(FallbackReason::MissingRow)
}

/// One home, ready to be sampled: its handle, the kinds with their threads, the moved file.
struct Prepared<'h> {
    home: &'h BenchHome,
    handle: StateDbHandle,
    kinds: [Kind; 4],
    expected: Expected,
    walk_thread: Uuid,
    misplaced: Misplaced,
    samples: [Vec<f64>; 4],
    raw: RawHit,
    raw_samples: Vec<f64>,
}

/// The raw verified hit: its own read-only connection on the same DB.
struct RawHit {
    conn: rusqlite::Connection,
}

impl RawHit {
    fn open(db: &Path) -> Result<Self, String> {
        let conn = rusqlite::Connection::open_with_flags(
            db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("cannot open {} for the raw hit: {e}", db.display()))?;
        Ok(RawHit { conn })
    }

    /// Whether the row's file starts with `id`'s session_meta.
    fn hit(&self, id: &str) -> Result<bool, String> {
        use std::io::BufRead;
        let path: String = self
            .conn
            .prepare_cached("SELECT rollout_path FROM threads WHERE id = ?1")
            .and_then(|mut st| st.query_row([id], |r| r.get(0)))
            .map_err(|e| format!("raw hit query for {id}: {e}"))?;
        let file = std::fs::File::open(&path).map_err(|e| format!("raw hit open {path}: {e}"))?;
        let mut line = String::new();
        std::io::BufReader::new(file)
            .read_line(&mut line)
            .map_err(|e| format!("raw hit read {path}: {e}"))?;
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("raw hit parse {path}: {e}"))?;
        Ok(value["payload"]["id"].as_str() == Some(id))
    }
}

/// Measures every home's lookups. Sizes are interleaved round by round, so a change of
/// machine load shifts every size alike and the growth ratios stay meaningful. Returns one
/// result per home, in order.
pub fn measure_all(
    ws: &Workspace,
    homes: &mut [BenchHome],
    fast_samples: usize,
    walk_samples: usize,
    progress: &Progress,
) -> Vec<Result<LookupFigures, String>> {
    let sizes: Vec<String> = homes.iter().map(|h| h.size.to_string()).collect();
    progress.note(format!(
        "lookup: {} rollouts, interleaved",
        sizes.join(", ")
    ));
    let dbs: Vec<Result<PathBuf, String>> =
        homes.iter_mut().map(|h| h.ensure_complete_db(ws)).collect();
    let mut results: Vec<Result<LookupFigures, String>> = Vec::with_capacity(homes.len());
    let mut prepared: Vec<Option<Prepared<'_>>> = Vec::with_capacity(homes.len());
    for (home, db) in homes.iter().zip(dbs) {
        match db.and_then(|db| prepare(home, &db)) {
            Ok(p) => {
                prepared.push(Some(p));
                results.push(Err(String::new()));
            }
            Err(e) => {
                prepared.push(None);
                results.push(Err(e));
            }
        }
    }
    // One untimed round to warm up, then the timed ones; sizes and kinds interleaved.
    let rounds = fast_samples.max(walk_samples);
    for round in 0..=rounds {
        for (slot, result) in prepared.iter_mut().zip(results.iter_mut()) {
            let Some(p) = slot else { continue };
            for (k, kind) in p.kinds.iter().enumerate() {
                let wanted = if k < 2 { fast_samples } else { walk_samples };
                if round > wanted {
                    continue;
                }
                let (id, text) = &kind.ids[round % kind.ids.len()];
                let outcome = sample(&p.handle, &p.home.codex_home, kind, *id, text, &p.expected)
                    .and_then(|took| {
                        if k > 0 {
                            return Ok((took, None));
                        }
                        let (hit, raw) = timed(|| p.raw.hit(text));
                        match hit? {
                            true => Ok((took, Some(raw))),
                            false => Err(format!("raw hit of {id}: the head names another id")),
                        }
                    });
                match outcome {
                    Ok((took, raw)) if round > 0 => {
                        p.samples[k].push(micros(took));
                        p.raw_samples.extend(raw.map(micros));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        *result = Err(e);
                        // Puts the moved file back now; this home is out of the run.
                        *slot = None;
                        break;
                    }
                }
            }
        }
    }
    for (slot, result) in prepared.into_iter().zip(results.iter_mut()) {
        if let Some(p) = slot {
            *result = finish(p);
        }
    }
    results
}

fn prepare<'h>(home: &'h BenchHome, sqlite_home: &Path) -> Result<Prepared<'h>, String> {
    let n = home.threads.len();
    if n < 3 {
        return Err(format!(
            "lookup needs at least 3 rollouts, the home has {n}"
        ));
    }
    let ctx = ProcessContext::plain("bench-lookup");
    let handle = try_init(&ctx, &home.config(sqlite_home))
        .map_err(|e| format!("cannot open the complete DB: {e}"))?
        .handle;
    let sessions = Root::Active.dir(&home.codex_home);

    // Spread the rotation over the whole home; the middle thread is the misplaced one.
    let walk_index = n / 2;
    let spread: Vec<usize> = (0..2 * ROTATION)
        .map(|k| k * n / (2 * ROTATION))
        .filter(|&i| i != walk_index)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let id_of = |i: usize| (home.threads[i].id, home.threads[i].id.to_string());
    let hit_ids: Vec<_> = spread.iter().step_by(2).map(|&i| id_of(i)).collect();
    let probe_ids: Vec<_> = spread
        .iter()
        .skip(1)
        .step_by(2)
        .map(|&i| id_of(i))
        .collect();
    let probe_ids = if probe_ids.is_empty() {
        hit_ids.clone()
    } else {
        probe_ids
    };
    for (id, _) in &probe_ids {
        let via = find_rollout_by_id(&sessions, *id, false).via;
        if via != Some(SearchVia::DayProbe) {
            return Err(format!(
                "thread {id} is not found by the day probe ({via:?})"
            ));
        }
    }
    let not_found = absent_v7_id(home, walk_index)?;

    let walk_thread = &home.threads[walk_index];
    let misplaced = Misplaced::new(&walk_thread.path, &sessions)?;
    let search = find_rollout_by_id(&sessions, walk_thread.id, false);
    if search.via != Some(SearchVia::Walk) || search.found.as_ref() != Some(&misplaced.moved) {
        return Err(format!(
            "the misplaced thread is not found by the walk ({:?})",
            search.via
        ));
    }
    Ok(Prepared {
        home,
        handle,
        expected: Expected {
            misplaced: misplaced.moved.clone(),
        },
        kinds: [
            Kind {
                name: "db hit",
                ids: hit_ids,
                delete_row: false,
                expect: expect_db_hit,
            },
            Kind {
                name: "day probe",
                ids: probe_ids,
                delete_row: true,
                expect: expect_day_probe,
            },
            Kind {
                name: "full walk",
                ids: vec![id_of(walk_index)],
                delete_row: true,
                expect: expect_walk,
            },
            Kind {
                name: "not found",
                ids: vec![(not_found, not_found.to_string())],
                delete_row: false,
                expect: expect_not_found,
            },
        ],
        walk_thread: walk_thread.id,
        misplaced,
        samples: Default::default(),
        raw: RawHit::open(&home.config(sqlite_home).runtime.db_path())?,
        raw_samples: Vec::new(),
    })
}

/// Puts the moved file back, re-indexes it, and summarises the samples.
fn finish(p: Prepared<'_>) -> Result<LookupFigures, String> {
    let Prepared {
        home,
        handle,
        walk_thread,
        misplaced,
        samples,
        raw_samples,
        ..
    } = p;
    drop(misplaced);
    // Re-index the walk thread at its restored file (a quiet missing-row repair).
    handle
        .delete_thread(walk_thread)
        .map_err(|e| format!("cannot delete the row of {walk_thread}: {e}"))?;
    let _ = find_thread_path(
        Some(&handle),
        &home.codex_home,
        &walk_thread.to_string(),
        Scope::Active,
    );
    let [db_hit, day_probe, full_walk, not_found] = samples;
    let stat =
        |name: &str, v: Vec<f64>| Stat::from_samples(v).ok_or_else(|| format!("no {name} samples"));
    let db_hit_us = stat("db hit", db_hit)?;
    let db_hit_raw_us = stat("raw hit", raw_samples)?;
    Ok(LookupFigures {
        size: home.size,
        db_hit_ratio: ratio(db_hit_us.median, db_hit_raw_us.median),
        db_hit_us,
        db_hit_raw_us,
        day_probe_us: stat("day probe", day_probe)?,
        full_walk_us: stat("full walk", full_walk)?,
        not_found_us: stat("not found", not_found)?,
    })
}

fn sample(
    handle: &StateDbHandle,
    codex_home: &Path,
    kind: &Kind,
    id: Uuid,
    text: &str,
    expected: &Expected,
) -> Result<std::time::Duration, String> {
    if kind.delete_row {
        handle
            .delete_thread(id)
            .map_err(|e| format!("cannot delete the row of {id}: {e}"))?;
    }
    let (result, took) = timed(|| find_thread_path(Some(handle), codex_home, text, Scope::Active));
    if !(kind.expect)(&result, expected) {
        return Err(format!(
            "{} lookup of {id} took another path: source {:?}, fallback {:?}, repaired {}, path {:?}",
            kind.name, result.source, result.fallback_reason, result.repaired, result.path
        ));
    }
    Ok(took)
}

/// A UUIDv7 dated next to an existing thread (so the day probe lists real directories)
/// that no rollout carries.
fn absent_v7_id(home: &BenchHome, near: usize) -> Result<Uuid, String> {
    let ms = uuid_v7_unix_ms(&home.threads[near].id).ok_or("fixture ids are not UUIDv7")?;
    let ms = u64::try_from(ms + 1).map_err(|e| e.to_string())?;
    let id = uuid::Builder::from_unix_timestamp_millis(ms, &[0xa5; 10]).into_uuid();
    if home.threads.iter().any(|t| t.id == id) {
        return Err(format!("the synthetic absent id {id} exists"));
    }
    Ok(id)
}
