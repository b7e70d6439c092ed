//! Seeded bug `recovery-deletes-damaged`: recovery deletes the damaged DB instead of keeping it as a backup.

use super::{Decisions, Defect, ExpectedKill};

pub struct RecoveryDeletesDamaged;

impl Decisions for RecoveryDeletesDamaged {
    fn recovery_keeps_damaged(&self) -> bool {
        false
    }
}

pub const DEFECT: Defect = Defect {
    description: "recovery deletes the damaged DB instead of keeping it as a backup",
    decisions: &RecoveryDeletesDamaged,
    killed_by: &[ExpectedKill {
        scenario: "TODO",
        failure: "TODO",
    }],
};
