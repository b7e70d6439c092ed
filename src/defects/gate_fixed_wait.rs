//! Seeded bug `gate-fixed-wait`: the startup gate waits a fixed time from its start, however
//! steadily the owner makes progress.

use super::{Decisions, Defect, ExpectedKill};
use std::time::{Duration, Instant};

pub struct GateFixedWait;

impl Decisions for GateFixedWait {
    fn gate_deadline(
        &self,
        started: Instant,
        _progress_deadline: Instant,
        wait_timeout: Duration,
    ) -> Option<Instant> {
        Some(started + wait_timeout)
    }
}

pub const DEFECT: Defect = Defect {
    description: "the startup gate waits a fixed time even while the owner makes progress",
    decisions: &GateFixedWait,
    killed_by: &[
        ExpectedKill {
            scenario: "gate_progressing_owner_outlasts_wait",
            failure: "step 4 (join waiter): expected ok = true, got false (timed out waiting for state db backfill",
        },
        ExpectedKill {
            scenario: "gate_progressing_owner_past_cap_times_out",
            failure: "step 4 (join waiter): expected elapsed >= wait_cap",
        },
        ExpectedKill {
            scenario: "gate_wedged_owner_gives_up_early",
            failure: "step 4 (join waiter): expected elapsed <= stall+slack",
        },
    ],
};
