//! What one scenario says about one seeded-bug variant, as a typed verdict.
//!
//! A failing scenario is a kill only when the reference passes it with the same seed, the
//! failure reproduces on a second run, the scenario is one the variant names as a killer,
//! and the first failing expectation carries the failure the variant names. Everything
//! else is reported for what it is and never counted as a kill.

use serde::Serialize;

pub use crate::defects::ExpectedKill;
use crate::scenario::runner::{ScenarioOutcome, Status};

/// The verdict of one scenario on one variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Killed as expected, for the expected reason, reproduced.
    Killed { failure: String },
    /// Failed, but the reference fails this scenario too: it tells nothing about the variant.
    ReferenceFailed { failure: String },
    /// Failed once, then passed or failed differently on the second run.
    Flaky {
        failure: String,
        second: Option<String>,
    },
    /// A scenario that declares its outcome depends on scheduling (`timing_dependent`),
    /// which the variant does not name, failed once and not again: scheduling noise. Shown,
    /// never a kill and never a problem (an expected killer that flakes stays `Flaky`).
    Noise {
        failure: String,
        second: Option<String>,
    },
    /// Failed reproducibly, but the variant does not name this scenario as a killer.
    Unexpected { failure: String },
    /// An expected killer that failed for another reason than the one expected.
    WrongReason { expected: String, failure: String },
    /// An expected killer that passed.
    Missed { expected: String },
}

impl Verdict {
    /// Whether this counts as a kill.
    pub fn is_kill(&self) -> bool {
        matches!(self, Verdict::Killed { .. })
    }

    /// Whether this verdict fails the matrix run (everything but a kill or noise).
    pub fn is_problem(&self) -> bool {
        !matches!(self, Verdict::Killed { .. } | Verdict::Noise { .. })
    }

    /// A short label for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Killed { .. } => "killed",
            Verdict::ReferenceFailed { .. } => "reference fails too",
            Verdict::Flaky { .. } => "flaky",
            Verdict::Noise { .. } => "noise (timing-dependent, not reproduced)",
            Verdict::Unexpected { .. } => "unexpected kill",
            Verdict::WrongReason { .. } => "wrong reason",
            Verdict::Missed { .. } => "missed",
        }
    }

    /// The failure line behind the verdict, if any.
    pub fn failure(&self) -> Option<&str> {
        match self {
            Verdict::Killed { failure }
            | Verdict::ReferenceFailed { failure }
            | Verdict::Flaky { failure, .. }
            | Verdict::Noise { failure, .. }
            | Verdict::Unexpected { failure }
            | Verdict::WrongReason { failure, .. } => Some(failure),
            Verdict::Missed { .. } => None,
        }
    }
}

/// The first failure line of a failed outcome (`None` when it did not fail).
pub fn first_failure(o: &ScenarioOutcome) -> Option<String> {
    (o.status == Status::Fail).then(|| {
        o.failures
            .first()
            .cloned()
            .unwrap_or_else(|| "(failed without a message)".into())
    })
}

/// Judges one scenario on one variant. `expected` is the variant's entry for this scenario
/// (if it names it), `reference` the reference's run with the same seed, `first` the
/// variant's run and `second` its re-run (made only when `first` failed);
/// `timing_dependent` whether the scenario declares that scheduling decides its outcome.
pub fn judge(
    expected: Option<&ExpectedKill>,
    reference: &ScenarioOutcome,
    first: &ScenarioOutcome,
    second: Option<&ScenarioOutcome>,
    timing_dependent: bool,
) -> Option<Verdict> {
    let Some(failure) = first_failure(first) else {
        return expected.map(|e| Verdict::Missed {
            expected: e.failure.to_string(),
        });
    };
    if reference.status == Status::Fail {
        return Some(Verdict::ReferenceFailed { failure });
    }
    let again = second.and_then(first_failure);
    let reproduced = match (expected, &again) {
        (Some(e), Some(line)) => failure.contains(e.failure) == line.contains(e.failure),
        (None, Some(_)) => true,
        (_, None) => false,
    };
    if !reproduced {
        return Some(if expected.is_none() && timing_dependent {
            Verdict::Noise {
                failure,
                second: again,
            }
        } else {
            Verdict::Flaky {
                failure,
                second: again,
            }
        });
    }
    Some(match expected {
        None => Verdict::Unexpected { failure },
        Some(e) if failure.contains(e.failure) => Verdict::Killed { failure },
        Some(e) => Verdict::WrongReason {
            expected: e.failure.to_string(),
            failure,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(failures: &[&str]) -> ScenarioOutcome {
        ScenarioOutcome {
            name: "s".into(),
            file: "s.toml".into(),
            status: if failures.is_empty() {
                Status::Pass
            } else {
                Status::Fail
            },
            seed: 7,
            duration_ms: 0,
            declared_wait_ms: 0,
            failures: failures.iter().map(|f| f.to_string()).collect(),
            faults: vec![],
            skipped_reason: None,
            bundle: None,
            events: vec![],
            not_observed: vec![],
            ran_on: crate::scenario::runner::RanOn::Reference(crate::variant::Variant::Reference),
        }
    }

    const EXPECT: ExpectedKill = ExpectedKill {
        scenario: "s",
        failure: "expected source = filesystem",
    };
    const WHY: &str = "step 1 (lookup t0): expected source = filesystem, got db";

    #[test]
    fn an_expected_reproduced_failure_on_a_passing_reference_is_a_kill() {
        let v = judge(
            Some(&EXPECT),
            &outcome(&[]),
            &outcome(&[WHY]),
            Some(&outcome(&[WHY])),
            false,
        );
        assert_eq!(
            v,
            Some(Verdict::Killed {
                failure: WHY.into()
            })
        );
    }

    #[test]
    fn a_failure_the_reference_shares_is_not_a_kill() {
        let v = judge(
            Some(&EXPECT),
            &outcome(&[WHY]),
            &outcome(&[WHY]),
            Some(&outcome(&[WHY])),
            false,
        );
        assert!(matches!(v, Some(Verdict::ReferenceFailed { .. })), "{v:?}");
        assert!(!v.unwrap().is_kill());
    }

    #[test]
    fn a_failure_that_does_not_reproduce_is_flaky() {
        let v = judge(
            Some(&EXPECT),
            &outcome(&[]),
            &outcome(&[WHY]),
            Some(&outcome(&[])),
            false,
        );
        assert_eq!(
            v,
            Some(Verdict::Flaky {
                failure: WHY.into(),
                second: None
            })
        );
        let v = judge(None, &outcome(&[]), &outcome(&["x"]), None, false);
        assert!(matches!(v, Some(Verdict::Flaky { .. })), "{v:?}");
    }

    /// A timing-dependent scenario that no variant names, failing once and not again, is
    /// noise: shown, not a problem. The same flake of an expected killer stays flaky.
    #[test]
    fn a_timing_dependent_flake_nobody_expected_is_noise() {
        let v = judge(
            None,
            &outcome(&[]),
            &outcome(&["x"]),
            Some(&outcome(&[])),
            true,
        );
        assert!(matches!(v, Some(Verdict::Noise { .. })), "{v:?}");
        assert!(!v.as_ref().unwrap().is_problem() && !v.unwrap().is_kill());
        let v = judge(
            Some(&EXPECT),
            &outcome(&[]),
            &outcome(&[WHY]),
            Some(&outcome(&[])),
            true,
        );
        assert!(matches!(v, Some(Verdict::Flaky { .. })), "{v:?}");
        let v = judge(
            None,
            &outcome(&[]),
            &outcome(&["x"]),
            Some(&outcome(&["x"])),
            true,
        );
        assert!(matches!(v, Some(Verdict::Unexpected { .. })), "{v:?}");
    }

    #[test]
    fn a_kill_nobody_expected_is_reported_as_unexpected() {
        let v = judge(
            None,
            &outcome(&[]),
            &outcome(&["boom"]),
            Some(&outcome(&["boom"])),
            false,
        );
        assert_eq!(
            v,
            Some(Verdict::Unexpected {
                failure: "boom".into()
            })
        );
        assert!(v.unwrap().is_problem());
    }

    #[test]
    fn an_expected_killer_failing_for_another_reason_is_a_wrong_reason() {
        let v = judge(
            Some(&EXPECT),
            &outcome(&[]),
            &outcome(&["fault coverage: never fired"]),
            Some(&outcome(&["fault coverage: never fired"])),
            false,
        );
        assert!(matches!(v, Some(Verdict::WrongReason { .. })), "{v:?}");
    }

    #[test]
    fn an_expected_killer_that_passes_is_missed_and_a_pass_is_no_verdict() {
        let v = judge(Some(&EXPECT), &outcome(&[]), &outcome(&[]), None, false);
        assert!(matches!(v, Some(Verdict::Missed { .. })), "{v:?}");
        assert_eq!(judge(None, &outcome(&[]), &outcome(&[]), None, false), None);
    }
}
