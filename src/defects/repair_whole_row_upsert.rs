//! Seeded bug `repair-whole-row-upsert`: read-repair writes back the whole row it read instead of a compare-and-swap of the path.

use super::{Decisions, Defect, ExpectedKill};
use std::path::Path;

use crate::thread::ThreadMetadata;

pub struct RepairWholeRowUpsert;

impl Decisions for RepairWholeRowUpsert {
    fn whole_row_repair(
        &self,
        row_read: &ThreadMetadata,
        hit: &Path,
        archived_at_ms: Option<i64>,
    ) -> Option<ThreadMetadata> {
        // The row as the lookup read it (perhaps stale), with only the path and archive
        // state changed: whatever a concurrent writer stored meanwhile is overwritten.
        let mut copy = row_read.clone();
        copy.rollout_path = hit.to_path_buf();
        copy.archived_at_ms = archived_at_ms;
        Some(copy)
    }
}

pub const DEFECT: Defect = Defect {
    description:
        "read-repair writes back the whole row it read instead of a compare-and-swap of the path",
    decisions: &RepairWholeRowUpsert,
    killed_by: &[ExpectedKill {
        scenario: "repair_cas_keeps_concurrent_write",
        failure: "step 7 (expect_row t0): expected row tokens_used = 4242",
    }],
};
