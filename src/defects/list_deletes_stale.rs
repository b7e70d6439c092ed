//! Seeded bug `list-deletes-stale`: listing deletes rows whose file is (perhaps briefly) missing.

use super::{Decisions, Defect, ExpectedKill};

pub struct ListDeletesStale;

impl Decisions for ListDeletesStale {
    fn list_always_prunes(&self) -> bool {
        true
    }
}

pub const DEFECT: Defect = Defect {
    description: "listing deletes rows whose file is (perhaps briefly) missing",
    decisions: &ListDeletesStale,
    killed_by: &[
        ExpectedKill {
            scenario: "list_pages_prune_stale",
            failure: "step 2 (expect_row t3): expected row exists = true",
        },
        ExpectedKill {
            scenario: "list_stale_rows_kept",
            failure: "step 2 (expect_row t1): expected row exists = true",
        },
    ],
};
