//! `cargo bench`: the state-layer benchmarks (`statedb_harness::bench`) in quick mode, or
//! the full sizes with `STATEDB_BENCH_FULL=1`; prints the same tables as
//! `statedb-harness bench`.
//!
//! The contention family spawns the crate's binary, located through
//! `CARGO_BIN_EXE_statedb-harness` (set by Cargo for benches and integration tests only).
//! `cargo test --benches` runs this target without `--bench`; it then only says so and
//! exits, so a test run never spends a minute benchmarking.

use std::path::PathBuf;
use std::process::ExitCode;

use statedb_harness::bench::{run_benchmarks, BenchOptions};

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("state_layer: skipped (run it with `cargo bench`)");
        return ExitCode::SUCCESS;
    }
    let full = std::env::var("STATEDB_BENCH_FULL").is_ok_and(|v| v == "1");
    let opts = if full {
        BenchOptions::full()
    } else {
        BenchOptions::quick()
    };
    let mut opts = opts.with_contention(PathBuf::from(env!("CARGO_BIN_EXE_statedb-harness")));
    opts.progress = true;
    let report = run_benchmarks(&opts);
    print!("{}", report.render_table());
    if report.errors.is_empty() && report.check_failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
