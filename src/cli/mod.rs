//! The `statedb-harness` command line: argument parsing (clap) and dispatch to one module
//! per command family. Exit codes: 0 success, 1 a negative answer (not ready, not found,
//! a scenario failed), 2 bad input or an I/O error.

mod args;
mod bench_cmd;
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
    /// Benchmark the state layer: backfill throughput, startup gate, lookups, contention.
    Bench(bench_cmd::BenchArgs),
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Init(a) => state_cmds::init(a),
        Command::Fixture(a) => state_cmds::fixture(a),
        Command::Lookup(a) => state_cmds::lookup(a),
        Command::List(a) => state_cmds::list(a),
        Command::Status(a) => state_cmds::status(a),
        Command::Bench(a) => bench_cmd::bench(a),
    }
}

/// Logs go to stderr, filtered by `STATEDB_LOG` (default: errors only, so stdout stays
/// machine-readable and stderr stays quiet unless something is wrong).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STATEDB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
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
