//! `conformance`: the catalog on the reference and on the real Codex, printed as a matrix;
//! `--check FILE` compares it with a committed snapshot and fails on any changed verdict.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use super::usage_error;
use crate::codex::CodexBin;
use crate::scenario::catalog::{self, Entry};
use crate::scenario::runner::{Bundles, RunOptions};
use crate::target::conformance::{self, Matrix};
use crate::target::{run_all, CodexTarget, Target};

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
    /// The Codex binary (default: env CODEX_BIN, else the pinned install under tools/codex).
    #[arg(long, env = "CODEX_BIN")]
    pub codex_bin: Option<PathBuf>,
    /// Print JSON (the snapshot format) instead of Markdown.
    #[arg(long)]
    pub json: bool,
    /// Also run scenarios that wait out Codex's 30 s startup wait.
    #[arg(long)]
    pub slow: bool,
    /// Seed of both runs (fixed so the snapshot is reproducible).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scenarios run at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Compare with this committed matrix (JSON) and exit 1 on any changed verdict.
    #[arg(long)]
    pub check: Option<PathBuf>,
}

pub fn conformance(args: ConformanceArgs) -> ExitCode {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        args.paths.clone()
    };
    let entries: Vec<Entry> = match catalog::load(&paths) {
        Ok(e) => e,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return usage_error(format!(
                "{} scenario file(s) rejected; nothing was run",
                errors.len()
            ));
        }
    };
    let codex = match CodexBin::locate(args.codex_bin.as_deref())
        .and_then(|b| CodexTarget::new(b, args.slow))
    {
        Ok(c) => Arc::new(c),
        Err(e) => return usage_error(e.to_string()),
    };
    // The matrix records every failure line; a failing Codex cell's run directory is one
    // `run <file> --target codex --seed N --keep` away, so none is left behind here.
    let opts = RunOptions {
        seed: args.seed,
        worker_binary: std::env::current_exe().ok(),
        bundles: Bundles::Never,
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
    let started = Instant::now();
    let reference = rt.block_on(run_all(
        &Target::Reference,
        &entries,
        &opts,
        args.jobs,
        |_| {},
    ));
    let ref_ms = started.elapsed().as_millis();
    let codex_started = Instant::now();
    let on_codex = rt.block_on(run_all(
        &Target::Codex(codex.clone()),
        &entries,
        &opts,
        args.jobs,
        |_| {},
    ));
    eprintln!(
        "reference run {ref_ms} ms, Codex {} run {} ms",
        codex.version,
        codex_started.elapsed().as_millis()
    );
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    let matrix = conformance::build(&entries, &reference, &on_codex, &codex.version);
    let text = if args.json {
        serde_json::to_string_pretty(&matrix).unwrap_or_default() + "\n"
    } else {
        conformance::markdown(&matrix)
    };
    print!("{text}");
    let mut code = ExitCode::SUCCESS;
    if matrix.rows.iter().any(|r| r.reference != "pass") {
        eprintln!("the reference column is not all pass: a scenario is broken on the reference");
        code = ExitCode::FAILURE;
    }
    if let Some(file) = &args.check {
        let committed: Matrix = match std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => {
                return usage_error(format!(
                    "cannot read the committed matrix {}: {e}",
                    file.display()
                ))
            }
        };
        let changes = conformance::verdict_changes(&committed, &matrix);
        if !changes.is_empty() {
            eprintln!("the matrix differs from {} (review, then regenerate it with `statedb-harness conformance --json > {}`):", file.display(), file.display());
            for c in &changes {
                eprintln!("  {c}");
            }
            code = ExitCode::FAILURE;
        } else {
            eprintln!("the matrix matches {}", file.display());
        }
    }
    code
}
