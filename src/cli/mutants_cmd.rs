//! `statedb-harness mutants`: the kill matrix of the seeded-bug variants.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::usage_error;
use crate::mutants::{kill_matrix, render};
use crate::scenario::catalog;
use crate::scenario::runner::RunOptions;
use crate::variant::Variant;

#[derive(Debug, Args)]
pub struct MutantsArgs {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
    /// Print the matrix as JSON.
    #[arg(long)]
    pub json: bool,
    /// Only list the variants.
    #[arg(long)]
    pub list: bool,
    /// Only these variants (comma-separated names).
    #[arg(long, value_delimiter = ',', value_parser = |s: &str| s.parse::<Variant>())]
    pub only: Vec<Variant>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
}

pub fn mutants(args: MutantsArgs) -> ExitCode {
    if !cfg!(feature = "seeded-bugs") {
        return usage_error(
            "this build has no seeded-bug variants; build the kill matrix with \
             `cargo build --release --features seeded-bugs`"
                .to_string(),
        );
    }
    if args.list {
        for v in Variant::all().into_iter().filter(|v| !v.is_reference()) {
            println!("{:<26} {}", v.name(), v.description());
        }
        return ExitCode::SUCCESS;
    }
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        args.paths.clone()
    };
    let entries = match catalog::load(&paths) {
        Ok(e) => e,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    let variants: Vec<Variant> = if args.only.is_empty() {
        Variant::all()
    } else {
        args.only.clone()
    };
    let base = RunOptions {
        seed: args.seed,
        worker_binary: std::env::current_exe().ok(),
        ..RunOptions::default()
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage_error(format!("cannot start the async runtime: {e}")),
    };
    eprintln!(
        "running {} scenarios against the reference and {} variants (seed {})",
        entries.len(),
        variants.iter().filter(|v| !v.is_reference()).count(),
        args.seed
    );
    let matrix = rt.block_on(kill_matrix(&entries, &base, &variants, args.jobs));
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    if args.json {
        match serde_json::to_string_pretty(&matrix) {
            Ok(text) => println!("{text}"),
            Err(e) => return usage_error(format!("cannot write the matrix as JSON: {e}")),
        }
    } else {
        print!("{}", render(&matrix));
    }
    if matrix.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
