//! The scenario engine: scenario files (`model`), the run directory and home they describe
//! (`run_dir`), the worker roles (`roles`) run as tasks or real processes (`workers`), the
//! step runner for the reference (`runner`; other targets live in `crate::target`), what a
//! run produces (`outcome`), checks and oracles (`checks`), reports (`report`), and
//! scenarios written from recorded operation sequences (`record`).

pub mod catalog;
pub mod checks;
pub mod file_expect;
pub mod lease_waits;
pub mod model;
pub mod outcome;
pub mod record;
pub mod report;
pub mod roles;
pub mod run_dir;
pub mod runner;
pub mod waits;
pub mod workers;
