//! The decision points of the reference, as one typed seam, and the seeded bugs that
//! override them.
//!
//! [`Decisions`] names every place where a known defect of the modelled system could live;
//! its default methods *are* the reference's choices, so the reference modules ask
//! `ctx.decisions()` and read as the reference. Each seeded-bug variant overrides one
//! decision in its own file here, and those files exist only in a build with the cargo
//! feature `seeded-bugs` (on in the harness's own tests and CI), the way fail-rs compiles
//! its failpoints in only when asked.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::TransactionBehavior;

use std::sync::Arc;

use crate::process::ProcessContext;
use crate::state::{StateDbHandle, StateError};
use crate::thread::ThreadMetadata;

#[cfg(feature = "seeded-bugs")]
mod archive_overwrites;
#[cfg(feature = "seeded-bugs")]
mod consumer_lazy_open;
#[cfg(feature = "seeded-bugs")]
mod deferred_writes;
#[cfg(feature = "seeded-bugs")]
mod fuzzy_fallback;
#[cfg(feature = "seeded-bugs")]
mod gate_fixed_wait;
#[cfg(feature = "seeded-bugs")]
mod gate_gives_up_at_once;
#[cfg(feature = "seeded-bugs")]
mod gate_no_timeout;
#[cfg(feature = "seeded-bugs")]
mod handle_home_unchecked;
#[cfg(feature = "seeded-bugs")]
mod heartbeat_per_batch;
#[cfg(feature = "seeded-bugs")]
mod lease_no_owner_token;
#[cfg(feature = "seeded-bugs")]
mod list_deletes_stale;
#[cfg(feature = "seeded-bugs")]
mod list_files_duplicates;
#[cfg(feature = "seeded-bugs")]
mod list_timestamp_cursor;
#[cfg(feature = "seeded-bugs")]
mod list_trusts_index;
#[cfg(feature = "seeded-bugs")]
mod lookup_trusts_db_path;
#[cfg(feature = "seeded-bugs")]
mod open_only_migrates;
#[cfg(feature = "seeded-bugs")]
mod recovery_deletes_damaged;
#[cfg(feature = "seeded-bugs")]
mod recovery_drops_db_only;
#[cfg(feature = "seeded-bugs")]
mod repair_accepts_outside_home;
#[cfg(feature = "seeded-bugs")]
mod repair_whole_row_upsert;

/// Where the reference decides; the defaults are the reference's decisions.
pub trait Decisions: Send + Sync + 'static {
    /// How write transactions begin: IMMEDIATE, so a read-then-write never meets
    /// `SQLITE_BUSY_SNAPSHOT`.
    fn write_begin(&self) -> TransactionBehavior {
        TransactionBehavior::Immediate
    }

    /// Whether every lease write is fenced on the owner token.
    fn lease_writes_fenced(&self) -> bool {
        true
    }

    /// Whether the lease is refreshed only at each batch (and the claim) instead of by the
    /// timer thread.
    fn heartbeat_per_batch(&self) -> bool {
        false
    }

    /// That per-batch refresh, run at the claim and at each batch's checkpoint when
    /// [`Decisions::heartbeat_per_batch`] holds; the reference's timer thread needs none.
    fn refresh_at_batch(&self, _ctx: &ProcessContext) -> Result<(), StateError> {
        Ok(())
    }

    /// When the startup gate gives up on a live owner (`None`: never). The reference's
    /// deadline is progress-aware (`progress_deadline`, moved on while the owner advances);
    /// `started` is when this gate began waiting.
    fn gate_deadline(
        &self,
        _started: Instant,
        progress_deadline: Instant,
        _wait_timeout: Duration,
    ) -> Option<Instant> {
        Some(progress_deadline)
    }

    /// Whether the open-only path runs a full init (create, migrate, backfill) instead.
    fn open_only_runs_init(&self) -> bool {
        false
    }

    /// The handle a consumer works with: the one its entrypoint passed in.
    fn consumer_handle(
        &self,
        _ctx: &Arc<ProcessContext>,
        given: Option<&StateDbHandle>,
        _codex_home: &Path,
        _default_provider: &str,
    ) -> Option<StateDbHandle> {
        given.cloned()
    }

    /// Whether a DB answer's file head is read to check it names the thread.
    fn verify_db_path(&self) -> bool {
        true
    }

    /// A filesystem fallback that replaces the exact-UUID search of `dir` (`None`: use the
    /// exact search).
    fn replace_fallback_search(&self, _dir: &Path, _id_text: &str) -> Option<Option<PathBuf>> {
        None
    }

    /// A whole row to write back in place of the compare-and-swap repair of `row_read`
    /// (`None`: compare-and-swap).
    fn whole_row_repair(
        &self,
        _row_read: &ThreadMetadata,
        _hit: &Path,
        _archived_at_ms: Option<i64>,
    ) -> Option<ThreadMetadata> {
        None
    }

    /// Whether the listing cursor carries the id that breaks timestamp ties.
    fn list_cursor_breaks_ties(&self) -> bool {
        true
    }

    /// Whether listing deletes rows whose file is missing even without `--prune`.
    fn list_always_prunes(&self) -> bool {
        false
    }

    /// Whether listing and startup index rollouts the DB has not seen (instead of trusting
    /// the index alone).
    fn index_new_rollouts(&self) -> bool {
        true
    }

    /// Whether the listing built from the files shows each thread once, however many files
    /// claim its id.
    fn list_files_one_per_thread(&self) -> bool {
        true
    }

    /// Whether archiving may rename onto an existing archived file of the same name.
    fn archive_may_overwrite(&self) -> bool {
        false
    }

    /// Whether a handle is checked to serve the codex home it is asked about.
    fn handle_home_checked(&self) -> bool {
        true
    }

    /// Whether a row of thread `id` naming `path`, a file outside the codex home (a home
    /// moved or copied with its DB), may be answered. Never in the reference: such a row is
    /// stale however well that file's head verifies, and is repaired onto this home's
    /// rollout when there is one.
    fn accepts_outside_home_file(&self, path: &Path, id: uuid::Uuid) -> bool {
        let _ = (path, id);
        false
    }

    /// Whether recovery keeps the damaged DB as a backup (instead of deleting it).
    fn recovery_keeps_damaged(&self) -> bool {
        true
    }

    /// Whether recovery carries salvaged DB-only values (names, pins) onto the rebuilt rows.
    fn recovery_carries_over(&self) -> bool {
        true
    }
}

/// The reference: every decision at its default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

impl Decisions for Reference {}

/// A scenario a seeded bug is expected to be killed by, and why: `failure` is a substring
/// of the scenario's first failure line under the bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExpectedKill {
    /// The scenario's file stem (`scenarios/<scenario>.toml`).
    pub scenario: &'static str,
    pub failure: &'static str,
}

/// One seeded bug: what it breaks, the decision it overrides, and who must catch it.
pub struct Defect {
    pub description: &'static str,
    pub decisions: &'static dyn Decisions,
    pub killed_by: &'static [ExpectedKill],
}

/// The reference as a [`Defect`] row (nothing expected to kill it).
pub const REFERENCE: Defect = Defect {
    description: "the reference implementation",
    decisions: &Reference,
    killed_by: &[],
};

#[cfg(feature = "seeded-bugs")]
pub(crate) use seeded::defect_of;

#[cfg(feature = "seeded-bugs")]
mod seeded {
    use super::*;
    use crate::variant::Variant;

    /// The defect behind a variant.
    pub(crate) fn defect_of(v: Variant) -> &'static Defect {
        match v {
            Variant::Reference => &REFERENCE,
            Variant::ConsumerLazyOpen => &consumer_lazy_open::DEFECT,
            Variant::LookupTrustsDbPath => &lookup_trusts_db_path::DEFECT,
            Variant::FuzzyFallback => &fuzzy_fallback::DEFECT,
            Variant::RepairWholeRowUpsert => &repair_whole_row_upsert::DEFECT,
            Variant::GateNoTimeout => &gate_no_timeout::DEFECT,
            Variant::GateGivesUpAtOnce => &gate_gives_up_at_once::DEFECT,
            Variant::GateFixedWait => &gate_fixed_wait::DEFECT,
            Variant::LeaseNoOwnerToken => &lease_no_owner_token::DEFECT,
            Variant::HeartbeatPerBatch => &heartbeat_per_batch::DEFECT,
            Variant::OpenOnlyMigrates => &open_only_migrates::DEFECT,
            Variant::ListDeletesStale => &list_deletes_stale::DEFECT,
            Variant::ListTimestampCursor => &list_timestamp_cursor::DEFECT,
            Variant::DeferredWrites => &deferred_writes::DEFECT,
            Variant::ListTrustsIndex => &list_trusts_index::DEFECT,
            Variant::ListFilesDuplicates => &list_files_duplicates::DEFECT,
            Variant::ArchiveOverwrites => &archive_overwrites::DEFECT,
            Variant::HandleHomeUnchecked => &handle_home_unchecked::DEFECT,
            Variant::RecoveryDropsDbOnly => &recovery_drops_db_only::DEFECT,
            Variant::RecoveryDeletesDamaged => &recovery_deletes_damaged::DEFECT,
            Variant::RepairAcceptsOutsideHome => &repair_accepts_outside_home::DEFECT,
        }
    }
}
