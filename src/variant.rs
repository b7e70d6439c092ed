//! Which implementation of the state layer a process runs: the reference, or one of the
//! seeded-bug variants used to prove that the scenario catalog catches known failure
//! classes (see `mutants`).
//!
//! The variant is a value carried by the `ProcessContext` and checked at the few sites each
//! defect lives in. It is never a global and never the default.

use std::fmt;
use std::str::FromStr;

/// The reference (`Reference`) or one deliberate defect taken from the modelled system's history.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum Variant {
    #[default]
    Reference,
    /// A consumer opens its own DB handle lazily instead of using the one passed in.
    ConsumerLazyOpen,
    /// Lookup returns the DB path without verifying the file's `session_meta.id`.
    LookupTrustsDbPath,
    /// The filesystem fallback takes the first fuzzy/partial file-name match, unverified.
    FuzzyFallback,
    /// Read-repair upserts the whole row from a stale read instead of compare-and-swap.
    RepairWholeRowUpsert,
    /// The startup gate waits for a live owner without any timeout.
    GateNoTimeout,
    /// The startup gate gives up at once instead of waiting for a live owner.
    GateGivesUpAtOnce,
    /// The startup gate waits a fixed time, however steadily the owner makes progress.
    GateFixedWait,
    /// The lease has no owner token: a stale owner's checkpoint and completion are accepted.
    LeaseNoOwnerToken,
    /// The lease heartbeat happens only per batch, so a slow batch loses the lease.
    HeartbeatPerBatch,
    /// The open-only path creates/migrates the DB and runs a backfill.
    OpenOnlyMigrates,
    /// Listing deletes rows whose file is (perhaps briefly) missing.
    ListDeletesStale,
    /// Listing pages with a timestamp-only cursor and loses rows that tie on it.
    ListTimestampCursor,
    /// Write transactions begin DEFERRED (the `SQLITE_BUSY_SNAPSHOT` trap).
    DeferredWrites,
    /// Listing and startup trust the index alone: rollouts added after the backfill are
    /// never indexed, so no DB listing shows them.
    ListTrustsIndex,
    /// The listing built from the files shows a thread once per file claiming its id.
    ListFilesDuplicates,
    /// Archive renames onto an existing archived file of the same name (losing it).
    ArchiveOverwrites,
    /// Lookup and listing use a handle opened for another codex home (Codex only warns).
    HandleHomeUnchecked,
    /// Recovery from a damaged DB rebuilds without carrying over names and other DB-only values.
    RecoveryDropsDbOnly,
    /// Recovery deletes the damaged DB instead of keeping it as a backup.
    RecoveryDeletesDamaged,
}

impl Variant {
    pub const ALL: [Variant; 20] = [
        Variant::Reference,
        Variant::ConsumerLazyOpen,
        Variant::LookupTrustsDbPath,
        Variant::FuzzyFallback,
        Variant::RepairWholeRowUpsert,
        Variant::GateNoTimeout,
        Variant::GateGivesUpAtOnce,
        Variant::GateFixedWait,
        Variant::LeaseNoOwnerToken,
        Variant::HeartbeatPerBatch,
        Variant::OpenOnlyMigrates,
        Variant::ListDeletesStale,
        Variant::ListTimestampCursor,
        Variant::DeferredWrites,
        Variant::ListTrustsIndex,
        Variant::ListFilesDuplicates,
        Variant::ArchiveOverwrites,
        Variant::HandleHomeUnchecked,
        Variant::RecoveryDropsDbOnly,
        Variant::RecoveryDeletesDamaged,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Reference => "reference",
            Variant::ConsumerLazyOpen => "consumer-lazy-open",
            Variant::LookupTrustsDbPath => "lookup-trusts-db-path",
            Variant::FuzzyFallback => "fuzzy-fallback",
            Variant::RepairWholeRowUpsert => "repair-whole-row-upsert",
            Variant::GateNoTimeout => "gate-no-timeout",
            Variant::GateGivesUpAtOnce => "gate-gives-up-at-once",
            Variant::GateFixedWait => "gate-fixed-wait",
            Variant::LeaseNoOwnerToken => "lease-no-owner-token",
            Variant::HeartbeatPerBatch => "heartbeat-per-batch",
            Variant::OpenOnlyMigrates => "open-only-migrates",
            Variant::ListDeletesStale => "list-deletes-stale",
            Variant::ListTimestampCursor => "list-timestamp-cursor",
            Variant::DeferredWrites => "deferred-writes",
            Variant::ListTrustsIndex => "list-trusts-index",
            Variant::ListFilesDuplicates => "list-files-duplicates",
            Variant::ArchiveOverwrites => "archive-overwrites",
            Variant::HandleHomeUnchecked => "handle-home-unchecked",
            Variant::RecoveryDropsDbOnly => "recovery-drops-db-only",
            Variant::RecoveryDeletesDamaged => "recovery-deletes-damaged",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Variant::Reference => "the reference implementation",
            Variant::ConsumerLazyOpen => "a consumer opens its own DB handle lazily (double open)",
            Variant::LookupTrustsDbPath => {
                "lookup trusts the DB path without verifying session_meta.id"
            }
            Variant::FuzzyFallback => {
                "filesystem fallback takes the first fuzzy/partial name match"
            }
            Variant::RepairWholeRowUpsert => {
                "read-repair upserts the whole row without compare-and-swap"
            }
            Variant::GateNoTimeout => "startup gate waits without a timeout",
            Variant::GateGivesUpAtOnce => {
                "startup gate gives up at once instead of waiting for a live owner"
            }
            Variant::GateFixedWait => {
                "startup gate waits a fixed time even while the owner makes progress"
            }
            Variant::LeaseNoOwnerToken => {
                "lease has no owner token; stale owner writes are accepted"
            }
            Variant::HeartbeatPerBatch => {
                "lease heartbeat only per batch; a slow batch loses the lease"
            }
            Variant::OpenOnlyMigrates => "open-only path creates, migrates and backfills",
            Variant::ListDeletesStale => "listing deletes rows whose file is missing",
            Variant::ListTimestampCursor => "listing uses a timestamp-only cursor and loses ties",
            Variant::DeferredWrites => {
                "write transactions begin DEFERRED (SQLITE_BUSY_SNAPSHOT trap)"
            }
            Variant::ListTrustsIndex => {
                "listing trusts the index alone; rollouts added after the backfill stay unlisted"
            }
            Variant::ListFilesDuplicates => {
                "file listing shows a thread once per file that claims its id"
            }
            Variant::ArchiveOverwrites => {
                "archive renames onto an existing archived file of the same name"
            }
            Variant::HandleHomeUnchecked => {
                "lookup and listing use a handle opened for another codex home"
            }
            Variant::RecoveryDropsDbOnly => {
                "rebuilding a damaged DB loses thread names and other DB-only values"
            }
            Variant::RecoveryDeletesDamaged => {
                "recovery deletes the damaged DB instead of keeping it"
            }
        }
    }

    pub fn is_reference(self) -> bool {
        self == Variant::Reference
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
                format!("unknown variant '{text}' (valid: {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>().unwrap(), v);
        }
    }

    #[test]
    fn unknown_name_lists_valid_names() {
        let err = "nope".parse::<Variant>().unwrap_err();
        assert!(err.contains("deferred-writes"));
    }
}
