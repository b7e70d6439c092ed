//! Checks judged from outside the code under test: what is on disk and in `/proc`, never
//! what the implementation says about itself. Independent of `crate::rollout` on purpose:
//! its own walker (`census`) and head reader (`head`), so a bug in the reference's file
//! layer cannot hide from the checks that judge it.
//!
//! - `census`: every file under `sessions/` and `archived_sessions/` with its claimed id,
//!   scope and content digest.
//! - `files`: "files are the truth": a digest multiset before/after, each injected fault's
//!   own changes accounted for exactly; moves are allowed, lost bytes are not.
//! - `answers`: every path an answer or a listing returns is verified by reading its head.
//! - `handles`: open descriptors on the DB file per process, from `/proc/<pid>/fd`.
//! - `writes`: a log of every write of the backfill and lease rows, kept by SQL triggers
//!   the harness installs in a scenario's DB; `lease`: the lease checks derived from it.

pub mod answers;
pub mod census;
pub mod files;
pub mod handles;
pub mod head;
pub mod lease;
pub mod writes;

pub use answers::{check_answer_path, check_listing};
pub use census::{Census, CensusEntry, ObservedScope};
pub use files::FilesLedger;
pub use handles::{db_descriptors, FdSampler};
