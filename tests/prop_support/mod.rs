//! The state machine behind `tests/prop_state_machine.rs`.
//!
//! - [`ModelMachine`] is the pure model (`ReferenceStateMachine`): which rollout file each
//!   thread slot has on disk (root, present or not, full or truncated), whether a write
//!   lock is armed for the next read, and whether the current process has a handle.
//! - [`StateDbMachine`] drives the real system (`StateMachineTest`): a temporary codex home,
//!   a real `state_5.sqlite`, and one `ProcessContext` + handle from `try_init`. It checks
//!   the invariants as postconditions of each lookup and listing, and after every
//!   transition compares the rollout files with the model.
//!
//! The implementation variant is a type parameter, so the same machine runs against the
//! reference and against seeded-bug variants.

mod model;
mod recording;
mod sut;

pub use model::*;
pub use recording::*;
pub use sut::*;
