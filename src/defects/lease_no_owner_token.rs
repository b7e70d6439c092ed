//! Seeded bug `lease-no-owner-token`: the lease has no owner token; a stale owner's checkpoint and completion are accepted.

use super::{Decisions, Defect, ExpectedKill};

pub struct LeaseNoOwnerToken;

impl Decisions for LeaseNoOwnerToken {
    fn lease_writes_fenced(&self) -> bool {
        false
    }
}

pub const DEFECT: Defect = Defect {
    description:
        "the lease has no owner token; a stale owner's checkpoint and completion are accepted",
    decisions: &LeaseNoOwnerToken,
    killed_by: &[
        ExpectedKill {
            scenario: "lease_clock_skew_fenced_takeover",
            failure: "expected exactly one completed backfill",
        },
        ExpectedKill {
            scenario: "lease_stale_owner_after_heartbeat_death",
            failure: "expected exactly one completed backfill",
        },
    ],
};
