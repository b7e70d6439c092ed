//! Benchmarks of the reference state layer: `statedb-harness bench` and `cargo bench`.
//!
//! [`run_benchmarks`] generates one deterministic home per size (once per run, in a
//! temporary [`workspace`]) and runs the measurement families on it, each in its own file:
//!
//! - [`backfill`]: startup backfill throughput against a same-work baseline ([`same_work`])
//!   and a cheaper head-only one;
//! - [`startup`]: the startup gate's cost on a complete DB against a bare open;
//! - [`lookup`]: lookup latency by path (DB hit, day probe, full walk, not found) and its
//!   growth with the home's size;
//! - [`init_process`]: one real `init` process per size: time, peak RSS, DB size;
//! - [`pages`]: listing latency of the first and the last page;
//! - [`contention`]: N concurrent real `init` processes on one fresh DB;
//! - [`codex_peer`]: the same figures for the real Codex next to the reference (`peers.codex`);
//! - [`overhead`]: the hook through which the scenario runner reports harness overhead.
//!
//! Every figure is a median over repeats ([`stats`]) and every ratio is taken against a
//! baseline measured in the same run. A family that cannot run records an error in the
//! report and the others go on; correctness checks made along the way (exactly one
//! backfill under contention...) are reported separately from timing, which is never
//! asserted. [`table`] renders the report for a terminal.

pub mod backfill;
pub mod codex_peer;
pub mod contention;
pub mod init_process;
pub mod lookup;
pub mod overhead;
pub mod pages;
pub mod peak_rss;
pub mod same_work;
pub mod startup;
pub mod stats;
pub mod table;
pub mod workspace;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

pub use backfill::BackfillFigures;
pub use contention::{ContentionFigures, ContentionOptions};
pub use lookup::{LookupFigures, LookupGrowth};
pub use overhead::{harness_overhead_ratio, HarnessOverheadFigures, HarnessOverheadInput};
pub use startup::StartupGateFigures;

use stats::ratio;
use workspace::{remove_dir, BenchHome, Workspace};

/// Backfill ratio (reference / same-work baseline throughput) the reference should reach.
pub const BACKFILL_RATIO_GOAL: f64 = 0.8;
/// Size at which the backfill goal applies.
pub const BACKFILL_GOAL_SIZE: usize = 100_000;
/// Concurrent starts measured on both sides against Codex.
const CODEX_PROCS: [usize; 3] = [1, 2, 4];
/// Largest verified DB hit / raw verified hit ratio.
pub const DB_HIT_RATIO_GOAL: f64 = 2.0;
/// Largest all-ready time of N concurrent starts / that of the fewest.
pub const CONTENTION_RATIO_GOAL: f64 = 1.2;
/// Largest time from the owner's exit to the last waiter's, ms.
pub const WAKE_LAG_GOAL_MS: f64 = 50.0;
/// Largest peak RSS of one `init` process, MiB.
pub const RSS_GOAL_MB: f64 = 200.0;
/// Largest catalog wall time / its waits.
pub const HARNESS_OVERHEAD_GOAL: f64 = 1.3;
/// Largest growth (largest size / smallest size) still called "about flat".
pub const FLAT_GROWTH_LIMIT: f64 = 2.0;

/// What to measure and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Home sizes (rollouts), each generated once per run.
    pub sizes: Vec<usize>,
    /// Timed repeats of the expensive measurements (backfill, walks, contention).
    pub repeats: usize,
    /// Reported as the mode; the presets set the other fields.
    pub quick: bool,
    /// Parent of the temporary workspace (default: the system temp dir).
    pub work_dir: Option<PathBuf>,
    /// Samples of the cheap lookups (DB hit, day probe).
    pub lookup_samples: usize,
    /// Samples of the startup gate and of the bare open.
    pub gate_samples: usize,
    /// This crate's executable, for the families that spawn it (`init_process`);
    /// `None` skips them.
    pub binary: Option<PathBuf>,
    /// `None` skips the contention family.
    pub contention: Option<ContentionOptions>,
    /// Sizes at which the real Codex is measured side by side (`peers.codex`); empty skips.
    pub codex_sizes: Vec<usize>,
    /// Harness overhead, when the scenario runner has measured it.
    pub harness_overhead: Option<HarnessOverheadInput>,
    /// Progress lines on stderr.
    pub progress: bool,
}

impl BenchOptions {
    /// Sizes 1k, 10k, 100k; 5 repeats; no contention until a binary is given.
    pub fn full() -> Self {
        BenchOptions {
            sizes: vec![1_000, 10_000, 100_000],
            repeats: 5,
            quick: false,
            work_dir: None,
            lookup_samples: 100,
            gate_samples: 100,
            binary: None,
            contention: None,
            codex_sizes: vec![10_000],
            harness_overhead: None,
            progress: false,
        }
    }

    /// Sizes up to 10k and fewer samples: about a minute.
    pub fn quick() -> Self {
        BenchOptions {
            sizes: vec![1_000, 10_000],
            repeats: 3,
            quick: true,
            lookup_samples: 30,
            gate_samples: 30,
            ..BenchOptions::full()
        }
    }

    /// Enables the contention family: 1, 2, 4, 8 processes of `binary` on 10,000 rollouts.
    pub fn with_contention(mut self, binary: PathBuf) -> Self {
        self.binary = Some(binary.clone());
        self.contention = Some(ContentionOptions {
            binary,
            procs: vec![1, 2, 4, 8],
            size: 10_000,
        });
        self
    }

    fn walk_samples(&self) -> usize {
        self.repeats.max(3)
    }
}

/// Where and on what the run happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Environment {
    /// Built with optimizations (a debug build's figures mean little).
    pub optimized: bool,
    pub cores: usize,
    /// `/proc/loadavg` (1, 5, 15 min) at the start and at the end of the run.
    pub load_average_start: Option<[f64; 3]>,
    pub load_average_end: Option<[f64; 3]>,
}

/// Generation time of one home.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HomeFigures {
    pub size: usize,
    pub generate_secs: f64,
}

/// Other implementations measured side by side with the reference.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Peers {
    pub codex: codex_peer::CodexPeerReport,
}

/// A goal stated by the issue, and whether this run met it (`None`: not measured).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Goal {
    pub name: String,
    pub met: Option<bool>,
    pub detail: String,
}

/// Everything one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// `quick` or `full`.
    pub mode: String,
    pub sizes: Vec<usize>,
    pub repeats: usize,
    pub lookup_samples: usize,
    pub gate_samples: usize,
    pub environment: Environment,
    pub homes: Vec<HomeFigures>,
    pub backfill: Vec<BackfillFigures>,
    /// One real `init` process per size (peak RSS, DB size); empty without a binary.
    pub init_process: Vec<init_process::InitProcessFigures>,
    pub startup_gate: Vec<StartupGateFigures>,
    /// First and last page of a listing per size.
    pub pages: Vec<pages::PageFigures>,
    pub lookup: Vec<LookupFigures>,
    /// Smallest to largest size, when at least two sizes were measured.
    pub lookup_growth: Option<LookupGrowth>,
    pub contention: Option<ContentionFigures>,
    /// Why contention was not measured, when it was not.
    pub contention_skipped: Option<String>,
    pub harness_overhead: HarnessOverheadFigures,
    pub peers: Peers,
    pub goals: Vec<Goal>,
    /// Correctness checks that failed while measuring (never timing).
    pub check_failures: Vec<String>,
    /// Measurements that could not be made.
    pub errors: Vec<String>,
    pub total_secs: f64,
}

impl BenchReport {
    /// The human-readable tables.
    pub fn render_table(&self) -> String {
        table::render(self)
    }
}

/// Progress lines on stderr, with the time since the run started.
pub struct Progress {
    enabled: bool,
    started: Instant,
}

impl Progress {
    pub fn note(&self, what: impl std::fmt::Display) {
        if self.enabled {
            eprintln!("[{:7.1}s] {what}", self.started.elapsed().as_secs_f64());
        }
    }
}

/// Runs every family on every size and returns the report. Never panics on a failed
/// measurement: it is recorded in `errors` and the run goes on.
pub fn run_benchmarks(opts: &BenchOptions) -> BenchReport {
    let started = Instant::now();
    let progress = Progress {
        enabled: opts.progress,
        started,
    };
    let sizes: Vec<usize> = opts
        .sizes
        .iter()
        .copied()
        .filter(|&s| s > 0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let repeats = opts.repeats.max(1);
    let mut report = BenchReport {
        mode: if opts.quick { "quick" } else { "full" }.to_string(),
        sizes: sizes.clone(),
        repeats,
        lookup_samples: opts.lookup_samples.max(1),
        gate_samples: opts.gate_samples.max(1),
        environment: Environment {
            optimized: !cfg!(debug_assertions),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_average_start: load_average(),
            load_average_end: None,
        },
        homes: Vec::new(),
        backfill: Vec::new(),
        init_process: Vec::new(),
        startup_gate: Vec::new(),
        pages: Vec::new(),
        lookup: Vec::new(),
        lookup_growth: None,
        contention: None,
        contention_skipped: None,
        harness_overhead: overhead::figures(opts.harness_overhead.as_ref()),
        peers: Peers::default(),
        goals: Vec::new(),
        check_failures: Vec::new(),
        errors: Vec::new(),
        total_secs: 0.0,
    };
    let ws = match Workspace::new(opts.work_dir.as_deref()) {
        Ok(ws) => ws,
        Err(e) => {
            report.errors.push(format!(
                "cannot create the benchmark workspace under {}: {e}",
                opts.work_dir
                    .as_deref()
                    .unwrap_or(&std::env::temp_dir())
                    .display()
            ));
            return finish(report, started);
        }
    };
    progress.note(format!("workspace {}", ws.path().display()));
    let contention_size = opts.contention.as_ref().map(|c| c.size);
    let codex = codex_peers_setup(opts, &sizes, &mut report);
    let mut contended = false;

    let mut homes: Vec<BenchHome> = Vec::new();
    for &size in &sizes {
        let Some(mut home) = generate(&ws, size, &progress, &mut report) else {
            continue;
        };
        let record = |family: &str, errors: &mut Vec<String>, e: String| {
            errors.push(format!("{family} at {size} rollouts: {e}"));
        };
        match backfill::measure(&ws, &mut home, repeats, &progress) {
            Ok(f) => report.backfill.push(f),
            Err(e) => record("backfill", &mut report.errors, e),
        }
        if let Some(binary) = &opts.binary {
            progress.note(format!("init process: {size} rollouts"));
            match init_process::measure(&ws, &home, binary) {
                Ok(f) => report.init_process.push(f),
                Err(e) => record("init process", &mut report.errors, e),
            }
        }
        match startup::measure(&ws, &mut home, report.gate_samples, &progress) {
            Ok(f) => report.startup_gate.push(f),
            Err(e) => record("startup gate", &mut report.errors, e),
        }
        let page_samples = pages::PageSamples {
            pages: report.lookup_samples,
            handles: opts.walk_samples(),
        };
        match pages::measure(
            &ws,
            &mut home,
            page_samples,
            opts.binary.as_deref(),
            &progress,
        ) {
            Ok(f) => report.pages.push(f),
            Err(e) => record("pages", &mut report.errors, e),
        }
        if Some(size) == contention_size {
            // Right away, before a larger home's generation loads the disk.
            contention_on(&ws, &home, opts, repeats, &progress, &mut report);
            contended = true;
        }
        if let (Some((bin, _)), Some(binary)) = (&codex, &opts.binary) {
            if opts.codex_sizes.contains(&size) {
                match codex_peer::measure(&ws, &home, bin, binary, &CODEX_PROCS, &progress) {
                    Ok(f) => report.peers.codex.sizes.push(f),
                    Err(e) => report
                        .peers
                        .codex
                        .errors
                        .push(format!("at {size} rollouts: {e}")),
                }
            }
        }
        homes.push(home);
    }
    ws.settle();
    let lookups = lookup::measure_all(
        &ws,
        &mut homes,
        report.lookup_samples,
        opts.walk_samples(),
        &progress,
    );
    for (home, result) in homes.iter().zip(lookups) {
        match result {
            Ok(f) => report.lookup.push(f),
            Err(e) => report
                .errors
                .push(format!("lookup at {} rollouts: {e}", home.size)),
        }
    }
    for home in homes {
        progress.note(format!("removing the {}-rollout home", home.size));
        if let Some(db) = &home.complete_db {
            remove_dir(db);
        }
        remove_dir(&home.codex_home);
    }
    if let (Some(small), Some(large)) = (report.lookup.first(), report.lookup.last()) {
        if large.size > small.size {
            report.lookup_growth = Some(LookupGrowth::between(small, large));
        }
    }

    if !contended {
        match &opts.contention {
            None => {
                report.contention_skipped =
                    Some("not requested (no binary to spawn, or --no-contention)".to_string());
            }
            Some(c) => {
                if let Some(home) = generate(&ws, c.size, &progress, &mut report) {
                    contention_on(&ws, &home, opts, repeats, &progress, &mut report);
                    remove_dir(&home.codex_home);
                }
            }
        }
    }
    report.goals = goals(&report);
    progress.note("removing the workspace");
    drop(ws);
    progress.note("done");
    finish(report, started)
}

fn contention_on(
    ws: &Workspace,
    home: &BenchHome,
    opts: &BenchOptions,
    repeats: usize,
    progress: &Progress,
    report: &mut BenchReport,
) {
    let Some(c) = &opts.contention else {
        return;
    };
    if c.procs.is_empty() {
        report.contention_skipped = Some("no process counts were given".to_string());
        return;
    }
    ws.settle();
    match contention::measure(ws, home, c, repeats, progress) {
        Ok(f) => {
            for run in &f.runs {
                if !run.all_ready {
                    report.check_failures.push(format!(
                        "contention: with {} processes not every init became ready",
                        run.procs
                    ));
                }
                if !run.exactly_one_ran {
                    report.check_failures.push(format!(
                        "contention: with {} processes the backfill ran {:?} times per repeat (want exactly 1)",
                        run.procs, run.ran_counts
                    ));
                }
            }
            report.contention = Some(f);
        }
        Err(e) => report
            .errors
            .push(format!("contention at {} rollouts: {e}", c.size)),
    }
}

fn generate(
    ws: &Workspace,
    size: usize,
    progress: &Progress,
    report: &mut BenchReport,
) -> Option<BenchHome> {
    progress.note(format!("generating {size} rollouts"));
    match ws.generate(size) {
        Ok(home) => {
            ws.settle();
            report.homes.push(HomeFigures {
                size,
                generate_secs: home.generate_time.as_secs_f64(),
            });
            Some(home)
        }
        Err(e) => {
            report
                .errors
                .push(format!("cannot generate a home of {size} rollouts: {e}"));
            None
        }
    }
}

/// Finds Codex when some requested size is to be measured against it, or records why not.
fn codex_peers_setup(
    opts: &BenchOptions,
    sizes: &[usize],
    report: &mut BenchReport,
) -> Option<(crate::codex::CodexBin, String)> {
    let skip = |report: &mut BenchReport, why: String| {
        report.peers.codex.skipped = Some(why);
        None
    };
    if !opts.codex_sizes.iter().any(|s| sizes.contains(s)) {
        return skip(
            report,
            format!(
                "no Codex size among the run's sizes (Codex sizes: {:?})",
                opts.codex_sizes
            ),
        );
    }
    if opts.binary.is_none() {
        return skip(report, "no statedb-harness binary to spawn".to_string());
    }
    match codex_peer::locate() {
        Ok((bin, version)) => {
            report.peers.codex.codex_version = Some(version.clone());
            Some((bin, version))
        }
        Err(why) => skip(report, why),
    }
}

fn finish(mut report: BenchReport, started: Instant) -> BenchReport {
    report.environment.load_average_end = load_average();
    report.total_secs = started.elapsed().as_secs_f64();
    report
}

fn goals(report: &BenchReport) -> Vec<Goal> {
    let mut goals = Vec::new();
    let at_goal = report
        .backfill
        .iter()
        .find(|b| b.size == BACKFILL_GOAL_SIZE);
    goals.push(Goal {
        name: format!(
            "backfill throughput >= {BACKFILL_RATIO_GOAL} x same-work baseline at {BACKFILL_GOAL_SIZE} rollouts"
        ),
        met: at_goal
            .and_then(|b| b.same_work_ratio)
            .map(|r| r >= BACKFILL_RATIO_GOAL),
        detail: match at_goal.and_then(|b| b.same_work_ratio) {
            Some(r) => format!("ratio {r:.2}"),
            None => format!("not measured at {BACKFILL_GOAL_SIZE}"),
        },
    });
    let hit_ratios: Vec<(usize, f64)> = report
        .lookup
        .iter()
        .filter_map(|l| l.db_hit_ratio.map(|r| (l.size, r)))
        .collect();
    goals.push(worst_goal(
        format!("verified DB hit <= {DB_HIT_RATIO_GOAL} x the raw verified hit at every size"),
        &hit_ratios,
        DB_HIT_RATIO_GOAL,
        "rollouts",
    ));
    let ready_ratios: Vec<(usize, f64)> = report
        .contention
        .iter()
        .flat_map(|c| c.runs.iter())
        .filter_map(|r| r.ratio_to_fewest.map(|x| (r.procs, x)))
        .collect();
    goals.push(worst_goal(
        format!("all-ready time of N concurrent starts <= {CONTENTION_RATIO_GOAL} x the fewest"),
        &ready_ratios,
        CONTENTION_RATIO_GOAL,
        "processes",
    ));
    let lags: Vec<(usize, f64)> = report
        .contention
        .iter()
        .flat_map(|c| c.runs.iter())
        .filter(|r| r.procs > 1)
        .filter_map(|r| r.wake_lag_ms.as_ref().map(|l| (r.procs, l.median)))
        .collect();
    goals.push(worst_goal(
        format!("waiters ready within {WAKE_LAG_GOAL_MS} ms of the owner's exit"),
        &lags,
        WAKE_LAG_GOAL_MS,
        "processes",
    ));
    let rss: Vec<(usize, f64)> = report
        .init_process
        .iter()
        .map(|p| (p.size, p.rss_peak_mb))
        .collect();
    goals.push(worst_goal(
        format!("peak RSS of one init process <= {RSS_GOAL_MB} MB"),
        &rss,
        RSS_GOAL_MB,
        "rollouts",
    ));
    let overhead: Vec<(usize, f64)> = report
        .harness_overhead
        .ratio
        .map(|r| (0, r))
        .into_iter()
        .collect();
    goals.push(worst_goal(
        format!("catalog wall time <= {HARNESS_OVERHEAD_GOAL} x its waits"),
        &overhead,
        HARNESS_OVERHEAD_GOAL,
        "",
    ));
    let (met, detail) = codex_peer::ahead_of_codex(&report.peers.codex.sizes);
    goals.push(Goal {
        name: "the reference ahead of Codex on every side-by-side figure".to_string(),
        met,
        detail,
    });
    let sizes = |from: usize, to: usize| (from < to).then_some((from, to));
    let lookup_sizes = report
        .lookup_growth
        .as_ref()
        .and_then(|g| sizes(g.from_size, g.to_size));
    let page_sizes = match (report.pages.first(), report.pages.last()) {
        (Some(a), Some(b)) => sizes(a.size, b.size),
        _ => None,
    };
    let page_growth =
        |f: fn(&pages::PageFigures) -> f64| match (report.pages.first(), report.pages.last()) {
            (Some(a), Some(b)) if b.size > a.size => ratio(f(b), f(a)),
            _ => None,
        };
    for (name, growth, between) in [
        (
            "DB-hit lookup",
            report.lookup_growth.as_ref().and_then(|g| g.db_hit),
            lookup_sizes,
        ),
        (
            "day-probe lookup",
            report.lookup_growth.as_ref().and_then(|g| g.day_probe),
            lookup_sizes,
        ),
        (
            "first page",
            page_growth(|p| p.first_page_ms.median),
            page_sizes,
        ),
        (
            "last page",
            page_growth(|p| p.last_page_ms.median),
            page_sizes,
        ),
        (
            "new handle's first page per rollout directory",
            page_growth(|p| p.first_page_new_handle_us_per_dir),
            page_sizes,
        ),
    ] {
        goals.push(Goal {
            name: format!("{name} latency about flat (growth <= {FLAT_GROWTH_LIMIT})"),
            met: growth.map(|g| g <= FLAT_GROWTH_LIMIT),
            detail: match (growth, between) {
                (Some(g), Some((from, to))) => format!("{to}/{from}: x{g:.2}"),
                _ => "needs two sizes".to_string(),
            },
        });
    }
    goals
}

/// A goal met when the worst of `values` ((key, value), e.g. (size, ratio)) is <= `limit`.
fn worst_goal(name: String, values: &[(usize, f64)], limit: f64, unit: &str) -> Goal {
    let worst = values.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
    Goal {
        name,
        met: worst.map(|(_, v)| v <= limit),
        detail: match worst {
            Some((_, v)) if unit.is_empty() => format!("{v:.2}"),
            Some((k, v)) => format!("worst {v:.2} at {k} {unit}"),
            None => "not measured".to_string(),
        },
    }
}

fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}
