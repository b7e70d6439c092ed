//! Seeded bug `list-trusts-index`: listing and startup trust the index alone: rollouts added after the backfill are never indexed, so no DB listing shows them.

use super::{Decisions, Defect, ExpectedKill};

pub struct ListTrustsIndex;

impl Decisions for ListTrustsIndex {
    fn index_new_rollouts(&self) -> bool {
        false
    }
}

pub const DEFECT: Defect = Defect {
    description: "listing and startup trust the index alone: rollouts added after the backfill are never indexed, so no DB listing shows them",
    decisions: &ListTrustsIndex,
    killed_by: &[
        ExpectedKill {
            scenario: "init_reconciles_rollouts_added_after_backfill",
            failure: "(expect_backfill): expected 4 rows, got 3",
        },
        ExpectedKill {
            scenario: "list_rollouts_added_after_backfill",
            failure: "every rollout listed: 0193f29c-8b7a-7000-8002-6c6174650000",
        },
        ExpectedKill {
            scenario: "sqlite_home_separate_every_role",
            failure: "every rollout listed: 0193f29c-8b7a-7000-8001-6c6174650000",
        },
    ],
};
