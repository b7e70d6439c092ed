//! Listing latency on a complete DB: the first page and the last page of
//! `lookup::list_threads` (active threads, newest first by update time, 25 a page).
//!
//! - **First page**: no cursor, so it includes the listing's reconcile. Measured three ways:
//!   on a long-lived handle, whose directory watch lists only what the kernel reported
//!   changed (here: nothing); as a new handle's first listing, which `stat`s every rollout
//!   directory (`first_page_new_handle_ms`, with the per-directory cost next to it: that one
//!   grows with the day directories); and as its second, which also arms the watch
//!   (`arming_page_ms`).
//! - **Last page**: a keyset cursor anchored at the 26th-oldest row, so the page holds the
//!   25 oldest threads and says there is no next page — what a client reaches by paging
//!   through the whole history, taken in one step.
//!
//! Every answer is checked (page size, no stale row, the cursor or its absence, the oldest
//! thread last) so a figure never silently measures a different page. The two alternate.
//!
//! With a binary to spawn, the pages are measured in a fresh `statedb-harness bench-pages`
//! process, as `init` is: a sub-millisecond page measured inside the bench process paid for
//! that process's history (×2.1 from 1k to 1M rollouts right after five in-process 1M
//! backfills, while a fresh process measured the same pages flat). The child prints the
//! figures as JSON; the parent checks they are for the home it generated (its size).

use std::path::Path;
use std::process::{Command, Stdio};

use rusqlite::OptionalExtension;
use uuid::Uuid;

use super::stats::{millis, timed, Stat};
use super::workspace::{bench_config, BenchHome, Workspace};
use super::Progress;
use crate::backfill::reconcile::{reconcile_new_rollouts, ReconcileMode};
use crate::lookup::{list_threads, Cursor, ListPage, ListRequest};
use crate::process::ProcessContext;
use crate::state::thread_columns::ThreadColumns;
use crate::state::threads::{self, SortKey};
use crate::state::StateDbHandle;
use crate::state_db::try_init;

/// The reconcile's racy window (2 s), with a margin.
const RACY_WINDOW: std::time::Duration = std::time::Duration::from_millis(2_100);

/// Threads per page (the listing's default).
const PAGE: usize = 25;

/// Listing figures of one home size (ms).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PageFigures {
    pub size: usize,
    pub page_size: usize,
    /// First page on a long-lived handle (its reconcile through the directory watch).
    pub first_page_ms: Stat,
    /// First page as a new handle's first listing (its reconcile walks and arms the watch).
    pub first_page_new_handle_ms: Stat,
    /// Rollout directories of the home (what that walk `stat`s).
    pub rollout_dirs: usize,
    /// `first_page_new_handle_ms` median per rollout directory (µs).
    pub first_page_new_handle_us_per_dir: f64,
    /// A new handle's second first page: the walk that also watches every directory.
    pub arming_page_ms: Stat,
    /// Last page (the oldest threads, through a cursor).
    pub last_page_ms: Stat,
}

/// How many samples of each kind: pages on one handle, and new handles' first listings.
#[derive(Debug, Clone, Copy)]
pub struct PageSamples {
    pub pages: usize,
    pub handles: usize,
}

/// Measures the pages of `home` over a complete DB: in a fresh process of `binary` when
/// one is given, else in this process.
pub fn measure(
    ws: &Workspace,
    home: &mut BenchHome,
    samples: PageSamples,
    binary: Option<&Path>,
    progress: &Progress,
) -> Result<PageFigures, String> {
    progress.note(format!("pages: {} rollouts", home.size));
    if home.size <= PAGE {
        return Err(format!(
            "a last page distinct from the first needs more than {PAGE} rollouts"
        ));
    }
    let sqlite_home = home.ensure_complete_db(ws)?;
    // Steady state: a directory changed within the reconcile's racy window is listed on
    // every listing until the window has passed, so a just-generated home is waited out.
    let settled = home.generated_at + RACY_WINDOW;
    if let Some(left) = settled.checked_duration_since(std::time::Instant::now()) {
        std::thread::sleep(left);
    }
    match binary {
        Some(binary) => in_child(binary, &home.codex_home, &sqlite_home, samples),
        None => measure_here(&home.codex_home, &sqlite_home, samples),
    }
    .and_then(|figures| {
        if figures.size == home.size {
            Ok(figures)
        } else {
            Err(format!(
                "pages were measured on {} active threads (the home has {})",
                figures.size, home.size
            ))
        }
    })
}

/// Runs `bench-pages` in a child process and reads its figures.
fn in_child(
    binary: &Path,
    codex_home: &Path,
    sqlite_home: &Path,
    samples: PageSamples,
) -> Result<PageFigures, String> {
    let out = Command::new(binary)
        .arg("bench-pages")
        .arg("--codex-home")
        .arg(codex_home)
        .arg("--sqlite-home")
        .arg(sqlite_home)
        .args(["--page-samples", &samples.pages.to_string()])
        .args(["--handle-samples", &samples.handles.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot spawn {} bench-pages: {e}", binary.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the bench-pages process failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let figures: PageFigures = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("the bench-pages process printed no page figures: {e}"))?;
    if figures.page_size != PAGE {
        return Err(format!(
            "the bench-pages process measured pages of {} (asked: {PAGE})",
            figures.page_size
        ));
    }
    Ok(figures)
}

/// Measures both pages `samples.pages` times each on one handle, and a new handle's first
/// two listings `samples.handles` times (each walks the home, so there are fewer of them),
/// on the complete DB in `sqlite_home`, which must exist. `size` is the home's active
/// threads as the DB counts them, so a caller can check it measured the home it meant.
/// A page takes well under a millisecond, and a median of a handful of them moved with
/// whatever else the machine did (×2.7 from 1k to 1M rollouts with 5 samples at load 4;
/// flat with 1,000), so pages get as many samples as lookups.
pub fn measure_here(
    codex_home: &Path,
    sqlite_home: &Path,
    samples: PageSamples,
) -> Result<PageFigures, String> {
    let ctx = ProcessContext::plain("bench-pages");
    let config = bench_config(codex_home, sqlite_home);
    let db = config.runtime.db_path();
    if !db.is_file() {
        return Err(format!(
            "{} does not exist: pages are measured on a complete DB (run `init` first)",
            db.display()
        ));
    }
    let open = || {
        try_init(&ctx, &config)
            .map(|init| init.handle)
            .map_err(|e| format!("cannot open the complete DB: {e}"))
    };
    let handle = open()?;
    let size = active_threads(&handle)?;
    if size <= PAGE {
        return Err(format!(
            "{} holds {size} active threads; a last page distinct from the first needs more than {PAGE}",
            db.display()
        ));
    }
    let (cursor, oldest) = last_page_cursor(&handle)?;
    let first = ListRequest::default();
    let last = ListRequest {
        cursor: Some(cursor),
        ..ListRequest::default()
    };
    let page = |req: &ListRequest| -> Result<(ListPage, std::time::Duration), String> {
        let (page, took) = timed(|| list_threads(Some(&handle), codex_home, req));
        Ok((page.map_err(|e| format!("listing failed: {e}"))?, took))
    };
    let mut first_ms = Vec::with_capacity(samples.pages);
    let mut last_ms = Vec::with_capacity(samples.pages);
    // Two untimed rounds: the handle's first listing walks, its second arms the watch.
    for round in 0..samples.pages.max(1) + 2 {
        let (a, took_first) = page(&first)?;
        check(&a, true, None)?;
        let (b, took_last) = page(&last)?;
        check(&b, false, Some(oldest))?;
        if round > 1 {
            first_ms.push(millis(took_first));
            last_ms.push(millis(took_last));
        }
    }
    // One handle per process: the long-lived one goes before the new ones open.
    drop(handle);
    let mut new_handle_ms = Vec::with_capacity(samples.handles);
    let mut arming_ms = Vec::with_capacity(samples.handles);
    let mut rollout_dirs = 0;
    for round in 0..=samples.handles.max(1) {
        let handle = open()?;
        let mut took = [std::time::Duration::ZERO; 2];
        for took in &mut took {
            let (a, t) = timed(|| list_threads(Some(&handle), codex_home, &first));
            check(&a.map_err(|e| format!("listing failed: {e}"))?, true, None)?;
            *took = t;
        }
        if round > 0 {
            new_handle_ms.push(millis(took[0]));
            arming_ms.push(millis(took[1]));
        } else {
            // Untimed: how many directories a walking reconcile checks.
            handle.take_listing_memo();
            rollout_dirs = reconcile_new_rollouts(&handle, ReconcileMode::Listing)
                .map_err(|e| format!("reconcile failed: {e}"))?
                .dirs_checked;
        }
    }
    let first_page_new_handle_ms =
        Stat::from_samples(new_handle_ms).ok_or("no new-handle first-page samples")?;
    Ok(PageFigures {
        size,
        page_size: PAGE,
        first_page_ms: Stat::from_samples(first_ms).ok_or("no first-page samples")?,
        first_page_new_handle_us_per_dir: first_page_new_handle_ms.median * 1000.0
            / rollout_dirs.max(1) as f64,
        first_page_new_handle_ms,
        rollout_dirs,
        arming_page_ms: Stat::from_samples(arming_ms).ok_or("no arming-page samples")?,
        last_page_ms: Stat::from_samples(last_ms).ok_or("no last-page samples")?,
    })
}

/// Active (not archived) threads in the DB.
fn active_threads(handle: &StateDbHandle) -> Result<usize, String> {
    handle
        .read("bench pages", |c| {
            c.query_row("SELECT count(*) FROM threads WHERE archived = 0", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n as usize)
        .map_err(|e| format!("cannot count the active threads: {e}"))
}

/// The cursor after which exactly the `PAGE` oldest active threads remain, and the oldest.
fn last_page_cursor(handle: &StateDbHandle) -> Result<(String, Uuid), String> {
    let nth_oldest = |offset: usize| {
        handle
            .read("bench pages", |c| {
                let col = SortKey::Updated.column(ThreadColumns::of(c)?);
                let id: Option<String> = c
                    .query_row(
                        &format!(
                            "SELECT id FROM threads WHERE archived = 0
                             ORDER BY {col} ASC, id ASC LIMIT 1 OFFSET ?1"
                        ),
                        [offset as i64],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(id) = id.and_then(|id| Uuid::parse_str(&id).ok()) else {
                    return Ok(None);
                };
                threads::get(c, id)
            })
            .map_err(|e| format!("cannot read the oldest threads: {e}"))?
            .ok_or_else(|| format!("no active thread at offset {offset} from the oldest"))
    };
    let anchor = nth_oldest(PAGE)?;
    let oldest = nth_oldest(0)?;
    Ok((
        Cursor::encode(SortKey::Updated.of(&anchor), Some(anchor.id)),
        oldest.id,
    ))
}

/// A full page of live rows; the first has a next cursor, the last ends on `oldest`.
fn check(page: &ListPage, first: bool, oldest: Option<Uuid>) -> Result<(), String> {
    let which = if first { "first" } else { "last" };
    if page.items.len() != PAGE || !page.stale.is_empty() {
        return Err(format!(
            "the {which} page has {} items and {} stale rows (want {PAGE} and 0)",
            page.items.len(),
            page.stale.len()
        ));
    }
    if page.next_cursor.is_some() != first {
        return Err(format!(
            "the {which} page's next cursor is {:?}",
            page.next_cursor
        ));
    }
    match (oldest, page.items.last()) {
        (Some(want), Some(got)) if got.thread_id != want => Err(format!(
            "the last page ends on {} instead of the oldest thread {want}",
            got.thread_id
        )),
        _ => Ok(()),
    }
}
