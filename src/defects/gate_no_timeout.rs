//! Seeded bug `gate-no-timeout`: the startup gate waits for a live owner without any timeout.

use super::{Decisions, Defect, ExpectedKill};
use std::time::{Duration, Instant};

pub struct GateNoTimeout;

impl Decisions for GateNoTimeout {
    fn gate_deadline(
        &self,
        _started: Instant,
        _progress_deadline: Instant,
        _wait_timeout: Duration,
    ) -> Option<Instant> {
        None
    }
}

pub const DEFECT: Defect = Defect {
    description: "the startup gate waits for a live owner without any timeout",
    decisions: &GateNoTimeout,
    killed_by: &[
        ExpectedKill {
            scenario: "gate_stuck_lease_lookup_uses_files",
            failure: "step 1 (init): worker step1 did not finish within",
        },
        ExpectedKill {
            scenario: "gate_stuck_lease_times_out",
            failure: "step 4 (join waiter): worker waiter did not finish within",
        },
        ExpectedKill {
            scenario: "gate_progressing_owner_past_cap_times_out",
            failure: "expected ok = false, got true",
        },
        ExpectedKill {
            scenario: "gate_wedged_owner_gives_up_early",
            failure: "did not finish within",
        },
    ],
};
