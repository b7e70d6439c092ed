//! Seeded bug `recovery-drops-db-only`: rebuilding a damaged DB loses thread names and other DB-only values.

use super::{Decisions, Defect, ExpectedKill};

pub struct RecoveryDropsDbOnly;

impl Decisions for RecoveryDropsDbOnly {
    fn recovery_carries_over(&self) -> bool {
        false
    }
}

pub const DEFECT: Defect = Defect {
    description: "rebuilding a damaged DB loses thread names and other DB-only values",
    decisions: &RecoveryDropsDbOnly,
    killed_by: &[ExpectedKill {
        scenario: "db_torn_page_rebuilt_names_kept",
        failure: "step 2 (expect_row t0): expected row title = release notes (pinned)",
    }],
};
