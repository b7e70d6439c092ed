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
    killed_by: &[
        ExpectedKill {
            scenario: "db_lost_schema_rebuilt",
            failure: "the damaged DB was not kept",
        },
        ExpectedKill {
            scenario: "db_not_a_database_kept_aside_rebuilt",
            failure: "the damaged DB was not kept",
        },
        // Nothing is salvaged from a deleted file, so the pinned name is lost too.
        ExpectedKill {
            scenario: "db_torn_page_rebuilt_names_kept",
            failure: "step 2 (expect_row t0): expected row title = release notes (pinned)",
        },
    ],
};
