//! Checks: per-step expectations (`expect`), the invariants every scenario is held to
//! (`invariants`), and the oracles that judge the DB against the files and its own write
//! log (`oracles`).

mod expect;
mod invariants;
mod oracles;

pub use expect::{check_expect, check_row};
pub use invariants::{event_invariants, write_invariants};
pub use oracles::run_oracle;
