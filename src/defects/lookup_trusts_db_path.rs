//! Seeded bug `lookup-trusts-db-path`: lookup returns the DB path without verifying the file's session_meta.id.

use super::{Decisions, Defect, ExpectedKill};

pub struct LookupTrustsDbPath;

impl Decisions for LookupTrustsDbPath {
    fn verify_db_path(&self) -> bool {
        false
    }
}

pub const DEFECT: Defect = Defect {
    description: "lookup returns the DB path without verifying the file's session_meta.id",
    decisions: &LookupTrustsDbPath,
    killed_by: &[
        ExpectedKill {
            scenario: "lock_held_past_busy_timeout_lookup_answers",
            failure: "whose head claims",
        },
        ExpectedKill {
            scenario: "lookup_damaged_rollouts_never_foreign",
            failure: "as verified, but its head is unreadable",
        },
        ExpectedKill {
            scenario: "lookup_stale_row_other_thread",
            failure: "whose head claims",
        },
        ExpectedKill {
            scenario: "lookup_unverifiable_row_last_resort",
            failure: "as verified, but its head is unreadable",
        },
        ExpectedKill {
            scenario: "lookup_unverifiable_row_prefers_real_file",
            failure: "as verified, but its head is unreadable",
        },
        ExpectedKill {
            scenario: "repair_cas_keeps_concurrent_write",
            failure: "whose head claims",
        },
        // Trusting the stale row, the lookup never starts the repair the scenario waits on.
        ExpectedKill {
            scenario: "repair_immediate_vs_busy_snapshot",
            failure: "step 2 (wait_for repairer failpoint:repair.after_read): worker repairer ended without emitting 'failpoint:repair.after_read'",
        },
    ],
};
