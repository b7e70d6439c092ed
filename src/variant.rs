//! Which implementation of the state layer a process runs: the reference, or (in a build
//! with the `seeded-bugs` feature) one of the seeded-bug variants used to prove that the
//! scenario catalog catches known failure classes (see `mutants` and `defects`).
//!
//! The variant is a value carried by the `ProcessContext`; the reference code never
//! branches on it, it asks the variant's [`Decisions`]. Names are derived once (strum).

use std::str::FromStr;

use strum::IntoEnumIterator;

use crate::defects::{Decisions, Defect, ExpectedKill};

/// The reference, or one deliberate defect taken from the modelled system's history.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::Display,
)]
#[strum(serialize_all = "kebab-case")]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    #[default]
    Reference,
    #[cfg(feature = "seeded-bugs")]
    ConsumerLazyOpen,
    #[cfg(feature = "seeded-bugs")]
    LookupTrustsDbPath,
    #[cfg(feature = "seeded-bugs")]
    FuzzyFallback,
    #[cfg(feature = "seeded-bugs")]
    RepairWholeRowUpsert,
    #[cfg(feature = "seeded-bugs")]
    GateNoTimeout,
    #[cfg(feature = "seeded-bugs")]
    GateGivesUpAtOnce,
    #[cfg(feature = "seeded-bugs")]
    GateFixedWait,
    #[cfg(feature = "seeded-bugs")]
    LeaseNoOwnerToken,
    #[cfg(feature = "seeded-bugs")]
    HeartbeatPerBatch,
    #[cfg(feature = "seeded-bugs")]
    OpenOnlyMigrates,
    #[cfg(feature = "seeded-bugs")]
    ListDeletesStale,
    #[cfg(feature = "seeded-bugs")]
    ListTimestampCursor,
    #[cfg(feature = "seeded-bugs")]
    DeferredWrites,
    #[cfg(feature = "seeded-bugs")]
    ListTrustsIndex,
    #[cfg(feature = "seeded-bugs")]
    ListFilesDuplicates,
    #[cfg(feature = "seeded-bugs")]
    ArchiveOverwrites,
    #[cfg(feature = "seeded-bugs")]
    HandleHomeUnchecked,
    #[cfg(feature = "seeded-bugs")]
    RecoveryDropsDbOnly,
    #[cfg(feature = "seeded-bugs")]
    RecoveryDeletesDamaged,
    #[cfg(feature = "seeded-bugs")]
    RepairAcceptsOutsideHome,
}

impl Variant {
    /// Every variant this build has, the reference first.
    pub fn all() -> Vec<Variant> {
        Variant::iter().collect()
    }

    pub fn name(self) -> &'static str {
        self.into()
    }

    fn defect(self) -> &'static Defect {
        #[cfg(feature = "seeded-bugs")]
        {
            crate::defects::defect_of(self)
        }
        #[cfg(not(feature = "seeded-bugs"))]
        {
            &crate::defects::REFERENCE
        }
    }

    pub fn description(self) -> &'static str {
        self.defect().description
    }

    /// The decision points this variant runs with.
    pub fn decisions(self) -> &'static dyn Decisions {
        self.defect().decisions
    }

    /// The scenarios expected to kill this variant, and the failure each must show.
    pub fn expected_kills(self) -> &'static [ExpectedKill] {
        self.defect().killed_by
    }

    pub fn is_reference(self) -> bool {
        self == Variant::Reference
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Variant::iter().find(|v| v.name() == text).ok_or_else(|| {
            let names: Vec<&str> = Variant::iter().map(Variant::name).collect();
            let hint = if cfg!(feature = "seeded-bugs") {
                ""
            } else {
                "; seeded-bug variants need a build with `--features seeded-bugs`"
            };
            format!(
                "unknown variant '{text}' (valid: {}){hint}",
                names.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for v in Variant::iter() {
            assert_eq!(v.name().parse::<Variant>().unwrap(), v);
        }
    }

    #[test]
    fn unknown_name_lists_valid_names() {
        let err = "nope".parse::<Variant>().unwrap_err();
        assert!(err.contains("reference"), "{err}");
    }

    #[cfg(feature = "seeded-bugs")]
    #[test]
    fn every_seeded_bug_names_its_killers() {
        for v in Variant::iter().filter(|v| !v.is_reference()) {
            assert!(!v.expected_kills().is_empty(), "{v} names no killer");
        }
        assert_eq!(
            "deferred-writes".parse::<Variant>(),
            Ok(Variant::DeferredWrites)
        );
    }
}
