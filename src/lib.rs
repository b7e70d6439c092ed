//! statedb-harness: a reference implementation of Codex-compatible SQLite state-DB handle
//! plumbing, and a fault-injection harness around it.

pub mod fixture;
pub mod rollout;
pub mod thread;
