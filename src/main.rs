//! The `statedb-harness` binary: all logic lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    statedb_harness::cli::main()
}
