//! Seeded bug `archive-overwrites`: archive renames onto an existing archived file of the same name, losing it.

use super::{Decisions, Defect, ExpectedKill};

pub struct ArchiveOverwrites;

impl Decisions for ArchiveOverwrites {
    fn archive_may_overwrite(&self) -> bool {
        true
    }
}

pub const DEFECT: Defect = Defect {
    description: "archive renames onto an existing archived file of the same name, losing it",
    decisions: &ArchiveOverwrites,
    killed_by: &[ExpectedKill {
        scenario: "archive_duplicate_never_overwrites",
        failure: "step 2 (archive t0): expected ok = false, got true",
    }],
};
