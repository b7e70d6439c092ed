//! Seeded bug `open-only-migrates`: the open-only path creates, migrates and backfills.

use super::{Decisions, Defect, ExpectedKill};

pub struct OpenOnlyMigrates;

impl Decisions for OpenOnlyMigrates {
    fn open_only_runs_init(&self) -> bool {
        true
    }
}

pub const DEFECT: Defect = Defect {
    description: "the open-only path creates, migrates and backfills",
    decisions: &OpenOnlyMigrates,
    killed_by: &[
        ExpectedKill {
            scenario: "backfill_state_row_deleted_recreated",
            failure: "step 1 (lookup t1 open-only): expected source = filesystem",
        },
        ExpectedKill {
            scenario: "backfill_unknown_status_reruns",
            failure: "step 1 (lookup t0 open-only): expected source = filesystem",
        },
        ExpectedKill {
            scenario: "open_only_creates_nothing",
            failure: "step 1 (lookup t2 open-only): expected source = filesystem",
        },
    ],
};
