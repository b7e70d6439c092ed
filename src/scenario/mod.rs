//! The scenario engine: scenario files (`model`), the homes they describe (`home`), the
//! worker roles (`roles`) run as tasks or real processes (`workers`), the step runner
//! (`runner`), checks and oracles (`checks`), and reports (`report`).

pub mod catalog;
pub mod checks;
pub mod model;
pub mod report;
pub mod roles;
pub mod runner;
pub mod workers;
