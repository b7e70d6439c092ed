//! The `statedb-harness` command line: argument parsing (clap) and dispatch to one module
//! per command family. Exit codes: 0 success, 1 a negative answer (not ready, not found,
//! a scenario failed), 2 bad input or an I/O error.

mod args;
mod audit_cmd;
mod bench_cmd;
mod conformance_cmd;
mod db_creation;
mod mutants_cmd;
mod scenario_cmds;
mod state_cmds;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use args::{HomeArgs, TimingArgs};

/// Exit code for bad input and I/O errors.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "statedb-harness",
    version,
    about = "Reference Codex-compatible SQLite state-DB plumbing and a fault-injection harness around it",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the state DB, migrate it and run the startup backfill gate.
    Init(state_cmds::InitArgs),
    /// Write a realistic, deterministic codex home of rollout files.
    Fixture(state_cmds::FixtureArgs),
    /// Find a thread's rollout file (DB first, verified; filesystem fallback; read-repair).
    Lookup(state_cmds::LookupArgs),
    /// List a page of threads (DB-backed, stale rows reported, not deleted).
    List(state_cmds::ListArgs),
    /// Show the backfill state, the lease owner and the failed rollouts of a state DB (read-only).
    Status(state_cmds::StatusArgs),
    /// Audit a home's state DB against its rollout files (read-only; --repair to fix what
    /// Codex accepts, after a backup).
    Audit(audit_cmd::AuditArgs),
    /// Run the scenario catalog (the main job): fault injection, workers, checks, reports.
    Run(scenario_cmds::RunArgs),
    /// Re-run one scenario with the seed of a failing run, keeping its run directory.
    Replay(scenario_cmds::ReplayArgs),
    /// List scenarios with their tags and fault kinds.
    ListScenarios(scenario_cmds::ListScenariosArgs),
    /// Run the catalog against every seeded-bug variant and print the kill matrix.
    Mutants(mutants_cmd::MutantsArgs),
    /// Run the catalog on the reference and on the real Codex and print the matrix.
    Conformance(conformance_cmd::ConformanceArgs),
    /// Run one worker of a scenario (used by the runner for process workers).
    #[command(hide = true)]
    Worker(scenario_cmds::WorkerArgs),
    /// Benchmark the state layer: backfill throughput, startup gate, lookups, contention.
    Bench(bench_cmd::BenchArgs),
    /// Measure one home's listing pages in a fresh process (used by `bench`).
    #[command(hide = true)]
    BenchPages(bench_cmd::BenchPagesArgs),
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Scenario runs provoke errors on purpose; their logs belong in the event trace and
    // failure bundles, not on the terminal. The bench runs the catalog too (and measures the
    // layer, whose logs are not its findings): only its own warnings show.
    let filter = match cli.command {
        Command::Run(_) | Command::Replay(_) | Command::Mutants(_) | Command::Conformance(_) => {
            "off"
        }
        Command::Bench(_) | Command::BenchPages(_) => "off,statedb_harness::bench=warn",
        _ => "error",
    };
    init_tracing(filter);
    match cli.command {
        Command::Init(a) => state_cmds::init(a),
        Command::Fixture(a) => state_cmds::fixture(a),
        Command::Lookup(a) => state_cmds::lookup(a),
        Command::List(a) => state_cmds::list(a),
        Command::Status(a) => state_cmds::status(a),
        Command::Audit(a) => audit_cmd::run(a),
        Command::Run(a) => scenario_cmds::run(a),
        Command::Replay(a) => scenario_cmds::replay(a),
        Command::ListScenarios(a) => scenario_cmds::list_scenarios(a),
        Command::Worker(a) => scenario_cmds::worker(a),
        Command::Mutants(a) => mutants_cmd::mutants(a),
        Command::Conformance(a) => conformance_cmd::conformance(a),
        Command::Bench(a) => bench_cmd::bench(a),
        Command::BenchPages(a) => bench_cmd::bench_pages(a),
    }
}

/// Logs go to stderr, filtered by `STATEDB_LOG` (default: errors only — none for scenario
/// runs — so stdout stays machine-readable and stderr quiet unless something is wrong).
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STATEDB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Prints an error the way every command does and returns exit code 2.
pub fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}
