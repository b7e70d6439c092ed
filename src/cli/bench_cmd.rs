//! `statedb-harness bench`: runs the state-layer benchmarks (`crate::bench`) and prints a
//! table, or with `--json` one JSON object holding every figure and ratio.
//!
//! Exit codes: 0 measured, 1 a correctness check failed while measuring (for example not
//! exactly one backfill under contention), 2 bad arguments or a measurement that could not
//! be made. Timing never decides the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::bench::HarnessOverheadInput;

use super::usage_error;
use crate::bench::{run_benchmarks, BenchOptions, ContentionOptions};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Sizes up to 10,000 rollouts and fewer repeats (about a minute).
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON object (every figure and ratio) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Home sizes in rollouts, comma-separated [default: 1000,10000,100000; quick: 1000,10000].
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    pub sizes: Option<Vec<usize>>,
    /// Timed repeats of backfills, walks and contention runs [default: 5; quick: 3].
    #[arg(long, value_name = "N")]
    pub repeats: Option<usize>,
    /// Existing directory to put the temporary homes and DBs in [default: the system temp dir].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Numbers of concurrent `init` processes for the contention measurement.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "N,N,...",
        default_value = "1,2,4,8"
    )]
    pub procs: Vec<usize>,
    /// Skip the contention measurement (which spawns this binary).
    #[arg(long)]
    pub no_contention: bool,
    /// Sizes at which the pinned Codex (or CODEX_BIN) runs side by side (`peers.codex`);
    /// a Codex start on 100,000 rollouts takes minutes.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "N,N,...",
        default_value = "10000"
    )]
    pub codex_sizes: Vec<usize>,
    /// Skip the side-by-side Codex measurement.
    #[arg(long)]
    pub no_codex: bool,
    /// Scenario catalog whose harness overhead to measure (run one scenario at a time).
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    pub catalog: PathBuf,
    /// Skip the harness-overhead measurement.
    #[arg(long)]
    pub no_catalog: bool,
}

/// The listing pages of one home, measured in a fresh process (spawned by `bench`).
#[derive(Debug, Args)]
pub struct BenchPagesArgs {
    /// The generated home whose rollouts the DB indexes.
    #[arg(long, value_name = "DIR")]
    pub codex_home: PathBuf,
    /// The directory holding that home's complete `state_5.sqlite`.
    #[arg(long, value_name = "DIR")]
    pub sqlite_home: PathBuf,
    /// Timed first and last pages on one handle.
    #[arg(long, value_name = "N", default_value = "100")]
    pub page_samples: usize,
    /// Timed first listings of new handles (each walks the home).
    #[arg(long, value_name = "N", default_value = "5")]
    pub handle_samples: usize,
}

/// Prints one home's page figures as JSON (exit 0), or the error (exit 2).
pub fn bench_pages(args: BenchPagesArgs) -> ExitCode {
    if !args.codex_home.is_dir() {
        return usage_error(format!(
            "--codex-home {} is not a directory; pass a generated home",
            args.codex_home.display()
        ));
    }
    let samples = crate::bench::pages::PageSamples {
        pages: args.page_samples,
        handles: args.handle_samples,
    };
    match crate::bench::pages::measure_here(&args.codex_home, &args.sqlite_home, samples)
        .and_then(|f| serde_json::to_string(&f).map_err(|e| e.to_string()))
    {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

/// Runs the catalog one scenario at a time against the reference and returns its wall
/// time and the waits its scenarios declare.
fn measure_catalog(dir: &std::path::Path) -> Result<HarnessOverheadInput, String> {
    let entries = crate::scenario::catalog::load(&[dir.to_path_buf()]).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let opts = crate::scenario::runner::RunOptions {
        seed: 7,
        worker_binary: std::env::current_exe().ok(),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let started = std::time::Instant::now();
    let outcomes = rt.block_on(crate::scenario::catalog::run_all(
        std::sync::Arc::new(crate::layer::ReferenceLayer),
        &entries,
        &opts,
        1,
        |_| {},
    ));
    let catalog_wall = started.elapsed();
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.status != crate::scenario::runner::Status::Pass)
        .map(|o| o.name.as_str())
        .collect();
    if !failed.is_empty() {
        return Err(format!("catalog did not pass: {}", failed.join("; ")));
    }
    Ok(HarnessOverheadInput {
        catalog_wall,
        declared_waits: std::time::Duration::from_millis(
            outcomes.iter().map(|o| o.declared_wait_ms).sum(),
        ),
    })
}

pub fn bench(args: BenchArgs) -> ExitCode {
    let mut opts = if args.quick {
        BenchOptions::quick()
    } else {
        BenchOptions::full()
    };
    if let Some(sizes) = args.sizes {
        if sizes.is_empty() || sizes.contains(&0) {
            return usage_error("--sizes needs positive rollout counts, e.g. --sizes 1000,10000");
        }
        opts.sizes = sizes;
    }
    if let Some(repeats) = args.repeats {
        if repeats == 0 {
            return usage_error("--repeats must be at least 1");
        }
        opts.repeats = repeats;
    }
    if let Some(dir) = &args.work_dir {
        if !dir.is_dir() {
            return usage_error(format!(
                "--work-dir {} is not an existing directory; create it or pick another",
                dir.display()
            ));
        }
        opts.work_dir = Some(dir.clone());
    }
    opts.binary = std::env::current_exe().ok();
    opts.codex_sizes = if args.no_codex {
        Vec::new()
    } else {
        args.codex_sizes.clone()
    };
    if !args.no_contention {
        if args.procs.contains(&0) {
            return usage_error("--procs needs positive process counts, e.g. --procs 1,2,4,8");
        }
        let binary = match std::env::current_exe() {
            Ok(b) => b,
            Err(e) => return usage_error(format!("cannot locate this executable to spawn: {e}")),
        };
        let size = if opts.sizes.contains(&10_000) {
            10_000
        } else {
            // Reuse a generated home: the largest size not above 10,000, else the smallest.
            opts.sizes
                .iter()
                .copied()
                .filter(|&s| s <= 10_000)
                .max()
                .or_else(|| opts.sizes.iter().copied().min())
                .unwrap_or(10_000)
        };
        opts.contention = Some(ContentionOptions {
            binary,
            procs: args.procs,
            size,
        });
    }
    if !args.no_catalog {
        if !args.catalog.is_dir() {
            return usage_error(format!(
                "--catalog {} is not a directory of scenarios; pass one or use --no-catalog",
                args.catalog.display()
            ));
        }
        eprintln!(
            "measuring harness overhead: catalog {} one scenario at a time",
            args.catalog.display()
        );
        match measure_catalog(&args.catalog) {
            Ok(input) => opts.harness_overhead = Some(input),
            Err(e) => return usage_error(format!("harness overhead: {e}")),
        }
    }
    opts.progress = true;
    let report = run_benchmarks(&opts);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return usage_error(format!("cannot serialize the report: {e}")),
        }
    } else {
        print!("{}", report.render_table());
    }
    if !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!("error: {e}");
        }
        ExitCode::from(super::EXIT_USAGE)
    } else if !report.check_failures.is_empty() {
        for f in &report.check_failures {
            eprintln!("check failed: {f}");
        }
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
