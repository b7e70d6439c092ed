//! Seeded bug `gate-gives-up-at-once`: the startup gate gives up at once instead of waiting for a live owner.

use super::{Decisions, Defect, ExpectedKill};
use std::time::{Duration, Instant};

pub struct GateGivesUpAtOnce;

impl Decisions for GateGivesUpAtOnce {
    fn gate_deadline(
        &self,
        started: Instant,
        _progress_deadline: Instant,
        _wait_timeout: Duration,
    ) -> Option<Instant> {
        Some(started)
    }
}

pub const DEFECT: Defect = Defect {
    description: "the startup gate gives up at once instead of waiting for a live owner",
    decisions: &GateGivesUpAtOnce,
    killed_by: &[
        ExpectedKill {
            // Which of the six concurrent processes gives up depends on scheduling.
            scenario: "contention_init_processes_one_backfill",
            failure: "expected ok = true, got false (timed out waiting for state db backfill",
        },
        ExpectedKill {
            scenario: "gate_stuck_lease_lookup_uses_files",
            failure: "step 1 (init): expected elapsed >= wait_timeout (1s)",
        },
        ExpectedKill {
            scenario: "gate_stuck_lease_times_out",
            failure: "step 4 (join waiter): expected elapsed >= wait_timeout (1s)",
        },
        ExpectedKill {
            scenario: "gate_waiter_killed_while_polling",
            failure: "step 4 (join waiter): expected killed = true",
        },
        ExpectedKill {
            scenario: "gate_waits_for_owner_completion",
            failure: "step 4 (wait_for waiter gate_waiting): worker waiter ended without emitting 'gate_waiting'",
        },
        ExpectedKill {
            scenario: "journal_delete_mode_full_cycle",
            failure: "step 5 (wait_for p2 gate_waiting): worker p2 ended without emitting 'gate_waiting'",
        },
        ExpectedKill {
            scenario: "lease_heartbeat_outlives_slow_batch",
            failure: "step 4 (join second): expected ok = true",
        },
        ExpectedKill {
            scenario: "lease_kill_failpoint_resumes_from_checkpoint",
            failure: "step 4 (init): expected ok = true",
        },
        ExpectedKill {
            scenario: "lease_killed_holder_taken_over",
            failure: "step 6 (init): expected ok = true",
        },
        ExpectedKill {
            scenario: "lease_stale_owner_after_heartbeat_death",
            failure: "step 4 (join next): expected ok = true",
        },
        ExpectedKill {
            scenario: "gate_progressing_owner_outlasts_wait",
            failure: "expected ok = true, got false (timed out waiting for state db backfill",
        },
        ExpectedKill {
            scenario: "gate_progressing_owner_past_cap_times_out",
            failure: "expected an error containing 'after 900ms (status: running); lease held by owner', got 'timed out",
        },
        ExpectedKill {
            scenario: "gate_wedged_owner_gives_up_early",
            failure: "expected an error containing 'alive (heartbeat advancing) but made no progress', got 'timed out",
        },
        ExpectedKill {
            scenario: "lease_chain_of_killed_claimers",
            failure: "expected killed = true, got false",
        },
    ],
};
