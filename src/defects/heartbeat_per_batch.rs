//! Seeded bug `heartbeat-per-batch`: the lease heartbeat happens only per batch, so a slow batch loses the lease.

use super::{Decisions, Defect, ExpectedKill};
use crate::failpoints::{Failpoint, FailpointError};
use crate::process::ProcessContext;
use crate::state::StateError;

pub struct HeartbeatPerBatch;

impl Decisions for HeartbeatPerBatch {
    fn heartbeat_per_batch(&self) -> bool {
        true
    }

    /// The heartbeat's failpoint fires where this refresh lives (each batch's checkpoint),
    /// so scenarios that inject into the heartbeat meet this variant too. An injected
    /// error ends only the refresh, as it ends the reference's timer thread; a kill kills.
    fn refresh_at_batch(&self, ctx: &ProcessContext) -> Result<(), StateError> {
        match ctx.failpoint(Failpoint::BackfillHeartbeat) {
            Err(e @ FailpointError::Killed { .. }) => Err(e.into()),
            _ => Ok(()),
        }
    }
}

pub const DEFECT: Defect = Defect {
    description: "the lease heartbeat happens only per batch, so a slow batch loses the lease",
    decisions: &HeartbeatPerBatch,
    killed_by: &[
        ExpectedKill {
            scenario: "gate_stuck_lease_times_out",
            failure: "step 4 (join waiter): expected ok = false",
        },
        ExpectedKill {
            scenario: "lease_heartbeat_outlives_slow_batch",
            failure: "step 4 (join second): expected backfill_ran = false",
        },
        ExpectedKill {
            scenario: "gate_wedged_owner_gives_up_early",
            failure:
                "expected an error containing 'alive (heartbeat advancing) but made no progress'",
        },
    ],
};
