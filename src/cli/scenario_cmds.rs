//! Commands of the scenario engine: `run`, `replay`, `list-scenarios`, and the hidden
//! `worker` command that process workers run.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use super::usage_error;
use crate::codex::CodexBin;
use crate::layer::ReferenceLayer;
use crate::scenario::catalog::{self, Entry, Shard};
use crate::scenario::report::{self, first_difference, normalized_events, Format};
use crate::scenario::roles::worker_main;
use crate::scenario::runner::{Bundles, RunOptions, ScenarioOutcome, Status};
use crate::target::{CodexTarget, Target};
use crate::variant::Variant;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
    /// Only scenarios whose name or file contains this.
    #[arg(long)]
    pub filter: Option<String>,
    /// Seed of the run (default: random, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run shard K of N (1-based) of the sorted catalog.
    #[arg(long, value_parser = |s: &str| s.parse::<Shard>())]
    pub shard: Option<Shard>,
    /// Scenarios run at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Write the report here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep every run directory, not only failing ones.
    #[arg(long)]
    pub keep: bool,
    /// Where run directories go (default: the system temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Run the catalog against a seeded-bug variant instead of the reference.
    #[arg(long, default_value = "reference", value_parser = |s: &str| s.parse::<Variant>())]
    pub variant: Variant,
    /// Run each scenario twice with the same seed and fail if the event logs differ.
    #[arg(long)]
    pub check_determinism: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Which implementation a run drives.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// `reference` (this crate) or `codex` (the real Codex CLI's app-server).
    #[arg(long, value_enum, default_value = "reference")]
    pub target: TargetKind,
    /// The Codex binary (default: env CODEX_BIN, else the pinned install under tools/codex).
    #[arg(long, env = "CODEX_BIN")]
    pub codex_bin: Option<PathBuf>,
    /// Also run scenarios that wait out Codex's 30 s startup wait.
    #[arg(long)]
    pub slow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    Reference,
    Codex,
}

impl TargetArgs {
    /// The target, or a message naming the install command when Codex is missing.
    pub fn resolve(&self) -> Result<Target, String> {
        match self.target {
            TargetKind::Reference => Ok(Target::Reference),
            TargetKind::Codex => {
                let bin = CodexBin::locate(self.codex_bin.as_deref()).map_err(|e| e.to_string())?;
                let t = CodexTarget::new(bin, self.slow).map_err(|e| e.to_string())?;
                Ok(Target::Codex(Arc::new(t)))
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn worker_binary() -> Option<PathBuf> {
    std::env::current_exe().ok()
}

fn load(paths: &[PathBuf]) -> Result<Vec<Entry>, ExitCode> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        paths.to_vec()
    };
    catalog::load(&paths).map_err(|errors| {
        for e in &errors {
            eprintln!("error: {e}");
        }
        eprintln!(
            "{} scenario file(s) rejected; nothing was run",
            errors.len()
        );
        ExitCode::from(super::EXIT_USAGE)
    })
}

pub fn run(args: RunArgs) -> ExitCode {
    let entries = match load(&args.paths) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let entries = catalog::select(entries, args.filter.as_deref(), args.shard);
    if entries.is_empty() {
        return usage_error("no scenario matches the filter/shard");
    }
    let target = match args.target.resolve() {
        Ok(t) => t,
        Err(e) => return usage_error(e),
    };
    if matches!(target, Target::Codex(_))
        && (args.variant != Variant::Reference || args.check_determinism)
    {
        return usage_error("--variant and --check-determinism apply to the reference target only");
    }
    let seed: u64 = args
        .seed
        .unwrap_or_else(|| u64::from(rand::random::<u32>()));
    eprintln!(
        "running {} scenario(s) on {}, seed {seed}, variant {}, {} at a time",
        entries.len(),
        match &target {
            Target::Codex(c) => format!("codex {} ({})", c.version, c.bin.path().display()),
            Target::Reference => "the reference".to_string(),
        },
        args.variant,
        args.jobs
    );
    let opts = RunOptions {
        seed,
        variant: args.variant,
        worker_binary: worker_binary(),
        bundles: if args.keep {
            Bundles::Always
        } else {
            Bundles::OnFailure
        },
        work_dir: args.work_dir.clone(),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return usage_error(e),
    };
    let bar = if std::io::stderr().is_terminal() && args.format == Format::Human {
        indicatif::ProgressBar::new(entries.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut outcomes = rt.block_on(crate::target::run_all(
        &target,
        &entries,
        &opts,
        args.jobs,
        |o| {
            bar.inc(1);
            bar.set_message(o.name.clone());
        },
    ));
    bar.finish_and_clear();
    if args.check_determinism {
        determinism_pass(&rt, &entries, &opts, &mut outcomes);
    }
    let wall = started.elapsed();
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    let totals = report::totals(&outcomes, wall);
    let text = match args.format {
        Format::Human => report::human(&outcomes, &totals),
        Format::Json => with_target(
            report::json(&outcomes, &totals, seed, args.variant.name()),
            &target,
            &outcomes,
        ),
        Format::Junit => match report::junit(&outcomes, &totals) {
            Ok(x) => x,
            Err(e) => return usage_error(format!("cannot write JUnit XML: {e}")),
        },
    };
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                return usage_error(format!("cannot write report {}: {e}", path.display()));
            }
            eprintln!("report written to {}", path.display());
            eprintln!(
                "{} passed, {} failed, {} skipped",
                totals.passed, totals.failed, totals.skipped
            );
        }
        None => print!("{text}"),
    }
    if totals.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The JSON report with `"target"` (and Codex's version), and what each scenario could
/// not observe on it.
fn with_target(text: String, target: &Target, outcomes: &[ScenarioOutcome]) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return text;
    };
    v["target"] = target.name().into();
    if let Target::Codex(c) = target {
        v["codex_version"] = c.version.clone().into();
    }
    if let Some(list) = v.get_mut("scenarios").and_then(|s| s.as_array_mut()) {
        for (s, o) in list.iter_mut().zip(outcomes) {
            if !o.not_observed.is_empty() {
                s["not_observed"] = serde_json::json!(o.not_observed);
            }
        }
    }
    serde_json::to_string_pretty(&v).unwrap_or(text) + "\n"
}

/// Re-runs every passing scenario with the same seed and compares normalized event logs;
/// the two runs are paired by scenario file and name.
fn determinism_pass(
    rt: &tokio::runtime::Runtime,
    entries: &[Entry],
    opts: &RunOptions,
    outcomes: &mut [ScenarioOutcome],
) {
    let passed: Vec<(&PathBuf, &str)> = outcomes
        .iter()
        .filter(|o| o.status == Status::Pass)
        .map(|o| (&o.file, o.name.as_str()))
        .collect();
    let mut again = Vec::new();
    for entry in entries {
        if !passed.contains(&(&entry.file, entry.scenario.name.as_str())) {
            continue;
        }
        match &entry.scenario.timing_dependent {
            Some(reason) => eprintln!(
                "determinism: {} exempt (timing-dependent: {reason})",
                entry.scenario.name
            ),
            None => again.push(entry.clone()),
        }
    }
    let second = rt.block_on(catalog::run_all(
        Arc::new(ReferenceLayer),
        &again,
        opts,
        1,
        |_| {},
    ));
    for (first, second) in catalog::pair_runs(outcomes, second) {
        if let Some(diff) = first_difference(
            &normalized_events(&first.events),
            &normalized_events(&second.events),
        ) {
            first.status = Status::Fail;
            first
                .failures
                .push(format!("not deterministic for seed {}: {diff}", opts.seed));
        }
    }
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// The seed printed by the failing run.
    #[arg(long)]
    pub seed: u64,
    #[arg(long, default_value = "reference", value_parser = |s: &str| s.parse::<Variant>())]
    pub variant: Variant,
    /// Where run directories go (default: the system temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

pub fn replay(args: ReplayArgs) -> ExitCode {
    let entries = match load(std::slice::from_ref(&args.file)) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let opts = RunOptions {
        seed: args.seed,
        variant: args.variant,
        worker_binary: worker_binary(),
        bundles: Bundles::Always,
        work_dir: args.work_dir,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return usage_error(e),
    };
    let started = Instant::now();
    let outcomes = rt.block_on(catalog::run_all(
        Arc::new(ReferenceLayer),
        &entries,
        &opts,
        1,
        |_| {},
    ));
    let totals = report::totals(&outcomes, started.elapsed());
    print!("{}", report::human(&outcomes, &totals));
    for o in &outcomes {
        if let Some(b) = &o.bundle {
            println!("run directory kept at {}", b.display());
        }
    }
    if totals.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[derive(Debug, Args)]
pub struct ListScenariosArgs {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// Fault kinds a scenario exercises: injectors, failpoints, and worker-made faults.
pub fn fault_kinds(entry: &Entry) -> Vec<String> {
    use crate::scenario::model::{Role, Step};
    let sc = &entry.scenario;
    let mut kinds: Vec<String> = sc
        .faults
        .iter()
        .map(|f| f.fault.kind().to_string())
        .collect();
    for w in &sc.workers {
        for fp in w.parsed_failpoints().unwrap_or_default() {
            kinds.push(format!("failpoint:{}={}", fp.name, fp.action));
        }
        if w.clock_skew.is_some() {
            kinds.push("clock_skew".into());
        }
        if w.role == Role::LockHolder {
            kinds.push("write_lock".into());
        }
        if w.role == Role::Commit {
            kinds.push("racing_writer".into());
        }
    }
    if sc.steps.iter().any(|s| matches!(s, Step::Kill { .. })) {
        kinds.push("sigkill".into());
    }
    kinds.sort();
    kinds.dedup();
    kinds
}

pub fn list_scenarios(args: ListScenariosArgs) -> ExitCode {
    let entries = match load(&args.paths) {
        Ok(e) => e,
        Err(code) => return code,
    };
    if args.json {
        let items: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.scenario.name,
                    "file": e.file,
                    "tags": e.scenario.tags,
                    "faults": fault_kinds(e),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
    } else {
        for e in &entries {
            println!("{}", e.scenario.name);
            println!("  file:   {}", e.file.display());
            println!("  tags:   {}", e.scenario.tags.join(", "));
            println!("  faults: {}", fault_kinds(e).join(", "));
        }
        println!("{} scenarios", entries.len());
    }
    ExitCode::SUCCESS
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The worker plan (JSON) written by the runner.
    #[arg(long)]
    pub plan: PathBuf,
}

pub fn worker(args: WorkerArgs) -> ExitCode {
    worker_main(ReferenceLayer, &args.plan)
}
