//! The scenario engine: scenario files (`model`), the homes they describe (`home`), the
//! worker roles (`roles`) run as tasks or real processes (`workers`), the step runner
//! (`runner`), checks and oracles (`checks`), reports (`report`), and scenarios written
//! from recorded operation sequences (`record`).

pub mod catalog;
pub mod checks;
pub mod model;
pub mod record;
pub mod report;
pub mod roles;
pub mod runner;
pub mod waits;
pub mod workers;
