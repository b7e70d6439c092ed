//! Seeded bug `repair-accepts-outside-home`: a row naming a file outside the codex home (a
//! home moved or copied with its DB) is accepted when that file's head names the thread, so
//! lookups and listings answer the other home's file and the row is never repaired onto
//! this home's rollout (Codex's behaviour: it only checks the head).

use std::path::Path;

use uuid::Uuid;

use super::{Decisions, Defect, ExpectedKill};
use crate::rollout::head::read_session_meta_head;

pub struct RepairAcceptsOutsideHome;

impl Decisions for RepairAcceptsOutsideHome {
    /// Accepted when the file exists and its head names the thread.
    fn accepts_outside_home_file(&self, path: &Path, id: Uuid) -> bool {
        matches!(read_session_meta_head(path), Ok(head) if head.thread_id() == Some(id))
    }
}

pub const DEFECT: Defect = Defect {
    description: "a row naming a file outside the home (a home moved or copied with its DB) is accepted when its head verifies: lookups and listings answer the other home's file and the row is never repaired into this home",
    decisions: &RepairAcceptsOutsideHome,
    killed_by: &[ExpectedKill {
        scenario: "lookup_copied_home_never_reads_original",
        failure: "step 1 (lookup t0): expected source = filesystem, got db",
    }],
};
