//! The lease checks judged from the DB's own write log (`observe::writes`, `observe::lease`)
//! fail on deliberately wrong implementations: the reference's startup bent by one wrong
//! write of the backfill or lease row each, made on the layer's own connection, so the
//! harness's triggers log it like any write of the code under test. Each base scenario
//! also runs unbent (`proves`), so a check that always fails would show.

mod broken_layer;
mod common;

use broken_layer::{init_then, proves};

/// `$rest` after a proper claim by a new owner: `backfill_state` set running and the lease
/// row passed to that owner with its fence, in one transaction (as the reference claims).
macro_rules! after_a_claim {
    ($rest:literal) => {
        concat!(
            "BEGIN;
             UPDATE backfill_state SET status = 'running', updated_at = updated_at + 1;
             UPDATE statedb_harness_lease SET owner_id = 'second',
                lease_expires_at_ms = 9000000000000,
                state_updated_at = (SELECT updated_at FROM backfill_state);
             COMMIT;",
            $rest
        )
    };
}

const BASE: &str = r#"
name = "lease writes"
[home]
threads = 3
db = "fresh"
[[step]]
do = "init"
"#;

fn with_one_backfill_run() -> String {
    format!("{BASE}[[check]]\noracle = \"one_backfill_run\"\n")
}

/// (a) A second write that marks the backfill complete.
#[test]
fn a_second_completion_fails_both_the_invariant_and_the_oracle() {
    let bend = || {
        init_then(|h| {
            broken_layer::sql(h, "UPDATE backfill_state SET status = 'complete', last_success_at = last_success_at + 1")
        })
    };
    proves(BASE, bend(), "a second write marked the backfill complete");
    proves(
        &with_one_backfill_run(),
        bend(),
        "expected exactly one completed backfill, got 2",
    );
}

/// (a) Progress written after completion without a new claim (a stale owner's checkpoint).
#[test]
fn a_checkpoint_after_completion_without_a_claim_fails() {
    proves(
        BASE,
        init_then(|h| {
            broken_layer::sql(
                h,
                "UPDATE backfill_state SET status = 'running', last_watermark = last_watermark || '~'",
            )
        }),
        "checkpoint written after the backfill was complete, without a new claim",
    );
}

/// (b) A takeover (a proper claim: status running and the lease row to a new owner with
/// its fence, in one transaction) that restarts from an earlier watermark.
#[test]
fn a_watermark_that_goes_backwards_across_a_takeover_fails() {
    proves(
        BASE,
        init_then(|h| {
            broken_layer::sql(
                h,
                after_a_claim!("UPDATE backfill_state SET last_watermark = 'sessions/0';"),
            )
        }),
        "went backwards from",
    );
}

/// (c) Progress by an owner that no longer holds the lease: someone moved the fence
/// (`backfill_state.updated_at`, as an unfenced claimer does) after the owner's claim.
#[test]
fn progress_past_a_moved_fence_fails() {
    proves(
        BASE,
        init_then(|h| {
            broken_layer::sql(
                h,
                after_a_claim!("UPDATE backfill_state SET updated_at = updated_at + 5; UPDATE backfill_state SET last_watermark = last_watermark || '~';"),
            )
        }),
        "no longer held the lease",
    );
}

/// (c) Progress while the lease row names no owner (released), and an owner change that is
/// no claim.
#[test]
fn progress_without_an_owner_and_a_lease_passed_without_a_claim_fail() {
    proves(
        BASE,
        init_then(|h| {
            broken_layer::sql(
                h,
                after_a_claim!("UPDATE statedb_harness_lease SET owner_id = NULL; UPDATE backfill_state SET last_watermark = last_watermark || '~';"),
            )
        }),
        "written while the lease row named no owner",
    );
    proves(
        BASE,
        init_then(|h| broken_layer::sql(h, "UPDATE statedb_harness_lease SET owner_id = 'thief'")),
        "the lease passed to owner thief without a claim",
    );
}
