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
    killed_by: &[ExpectedKill {
        scenario: "TODO",
        failure: "TODO",
    }],
};
