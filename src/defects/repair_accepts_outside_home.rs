//! Seeded bug `repair-accepts-outside-home`: a row naming a file outside the codex home (a
//! home moved or copied with its DB) is accepted when that file's head names the thread, so
//! lookups and listings answer the other home's file and the row is never repaired onto
//! this home's rollout (Codex's behaviour: it only checks the head).

use super::{Decisions, Defect, ExpectedKill};

pub struct RepairAcceptsOutsideHome;

impl Decisions for RepairAcceptsOutsideHome {
    fn outside_home_path_is_stale(&self) -> bool {
        false
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
