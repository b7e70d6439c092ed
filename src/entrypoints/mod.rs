//! Entrypoints: the main-like places that own the state DB's lifetime. Each kind
//! initialises the handle exactly once, the way its counterpart in the modelled system
//! does, wires it into the consumers, and drives them over a workload.
//!
//! This module only declares the submodules and re-exports their main items:
//! - [`kind`]: which entrypoint (`cli`, `exec`, `app_server`, `mcp_server`);
//! - [`startup`]: how each kind obtains its handle (fatal or not);
//! - [`wiring`]: the consumer set built from one handle, and driving it;
//! - [`report`]: the workload and the serialisable report;
//! - [`run`]: [`run_entrypoint`], composing the above.

pub mod kind;
pub mod report;
pub mod run;
pub mod startup;
pub mod wiring;

pub use kind::EntrypointKind;
pub use report::{ConsumerResult, EntrypointReport, Workload};
pub use run::run_entrypoint;
pub use startup::{start_state_db, Startup};
pub use wiring::{ConsumerSet, CONSUMERS};
