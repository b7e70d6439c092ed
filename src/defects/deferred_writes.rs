//! Seeded bug `deferred-writes`: write transactions begin DEFERRED (the SQLITE_BUSY_SNAPSHOT trap).

use super::{Decisions, Defect, ExpectedKill};

pub struct DeferredWrites;

impl Decisions for DeferredWrites {
    fn write_begin(&self) -> rusqlite::TransactionBehavior {
        rusqlite::TransactionBehavior::Deferred
    }
}

pub const DEFECT: Defect = Defect {
    description: "write transactions begin DEFERRED (the SQLITE_BUSY_SNAPSHOT trap)",
    decisions: &DeferredWrites,
    killed_by: &[ExpectedKill {
        scenario: "repair_immediate_vs_busy_snapshot",
        failure: "SQLITE_BUSY_SNAPSHOT",
    }],
};
