//! What a scenario run produces, whatever the target: the run options, each scenario's
//! outcome (status, failures, fault coverage, what could not be observed) and its replay
//! command.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::model::Scenario;
use crate::events::Event;
use crate::variant::Variant;

/// How to run scenarios.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub seed: u64,
    pub variant: Variant,
    /// The binary process workers re-invoke (`<binary> worker --plan FILE`); `None` skips
    /// scenarios that need process workers.
    pub worker_binary: Option<PathBuf>,
    /// Which run directories stay behind as bundles.
    pub bundles: Bundles,
    /// Where run directories are created (default: the system temp dir).
    pub work_dir: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: 0,
            variant: Variant::Reference,
            worker_binary: None,
            bundles: Bundles::OnFailure,
            work_dir: None,
        }
    }
}

/// Which run directories a run keeps (with its events, outcome and replay command) instead
/// of removing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bundles {
    /// A failing scenario's: what `run` does, so a failure can be inspected.
    OnFailure,
    /// Every scenario's (`run --keep`, `replay`).
    Always,
    /// None: runs whose failures are expected and reported by other means (the kill
    /// matrix, the conformance matrix), which would otherwise leave a directory per
    /// expected failure behind on every run.
    Never,
}

impl Bundles {
    /// Whether a run that ended in `status` keeps its directory.
    pub fn keeps(self, status: Status) -> bool {
        match self {
            Bundles::OnFailure => status == Status::Fail,
            Bundles::Always => true,
            Bundles::Never => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// Whether a declared fault or failpoint fired.
#[derive(Debug, Clone, Serialize)]
pub struct FaultCoverage {
    pub id: String,
    pub kind: String,
    pub fired: bool,
    pub detail: String,
}

impl FaultCoverage {
    /// The coverage of one injection (`Ok`: fired, with its detail), and the failure line
    /// a fault that did not fire adds to the scenario.
    pub fn of_injection(
        id: String,
        kind: &str,
        result: Result<String, String>,
    ) -> (FaultCoverage, Option<String>) {
        let (fired, detail) = match result {
            Ok(d) => (true, d),
            Err(e) => (false, e),
        };
        let failure = (!fired).then(|| format!("fault '{id}' did not fire: {detail}"));
        let coverage = FaultCoverage {
            id,
            kind: kind.to_string(),
            fired,
            detail,
        };
        (coverage, failure)
    }
}

/// The result of one scenario run.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioOutcome {
    pub name: String,
    pub file: PathBuf,
    pub status: Status,
    pub seed: u64,
    /// What ran it; in the JSON report, the `variant` string (`reference`, a seeded-bug
    /// variant's name, or `codex-<version>`).
    #[serde(rename = "variant", serialize_with = "ran_on_as_text")]
    pub ran_on: RanOn,
    pub duration_ms: u64,
    /// Waiting the scenario declares on purpose (sleeps, expected timeouts, failpoint sleeps).
    pub declared_wait_ms: u64,
    pub failures: Vec<String>,
    pub faults: Vec<FaultCoverage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_reason: Option<String>,
    /// Expectations the target cannot show, removed and named (never passed silently).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_observed: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<PathBuf>,
    #[serde(skip)]
    pub events: Vec<Event>,
}

/// What ran a scenario: the reference (or one of its seeded-bug variants), which `replay`
/// re-runs, or the real Codex, which only `run --target codex` drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RanOn {
    Reference(Variant),
    Codex {
        /// The Codex version, as its binary reports it.
        version: String,
        /// The run included the scenarios that wait out Codex's startup wait.
        slow: bool,
    },
}

impl std::fmt::Display for RanOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RanOn::Reference(variant) => write!(f, "{variant}"),
            RanOn::Codex { version, .. } => write!(f, "codex-{version}"),
        }
    }
}

fn ran_on_as_text<S: serde::Serializer>(ran_on: &RanOn, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(ran_on)
}

impl ScenarioOutcome {
    /// The one command that replays this run.
    pub fn replay_command(&self) -> String {
        let variant = match &self.ran_on {
            RanOn::Codex { slow, .. } => {
                return format!(
                    "statedb-harness run {} --target codex --seed {} --keep{}",
                    self.file.display(),
                    self.seed,
                    if *slow { " --slow" } else { "" }
                )
            }
            RanOn::Reference(variant) if variant.is_reference() => String::new(),
            RanOn::Reference(variant) => format!(" --variant {variant}"),
        };
        format!(
            "statedb-harness replay {} --seed {}{variant}",
            self.file.display(),
            self.seed
        )
    }
}

impl ScenarioOutcome {
    /// A not-yet-run outcome of `sc` (status pass until something fails).
    pub fn start(sc: &Scenario, file: &Path, opts: &RunOptions) -> ScenarioOutcome {
        Self::named(&sc.name, file, opts.seed, RanOn::Reference(opts.variant))
    }

    fn named(name: &str, file: &Path, seed: u64, ran_on: RanOn) -> ScenarioOutcome {
        ScenarioOutcome {
            name: name.to_string(),
            file: file.to_path_buf(),
            status: Status::Pass,
            seed,
            ran_on,
            duration_ms: 0,
            declared_wait_ms: 0,
            failures: Vec::new(),
            faults: Vec::new(),
            skipped_reason: None,
            not_observed: Vec::new(),
            bundle: None,
            events: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ran_on: RanOn) -> ScenarioOutcome {
        ScenarioOutcome::named("s", Path::new("scenarios/s.toml"), 9, ran_on)
    }

    /// Each kind of run replays with the command that accepts it, and the JSON report names
    /// it with the same `variant` text as before the field was typed.
    #[test]
    fn what_ran_decides_the_replay_command_and_the_reported_variant() {
        let cases = [
            (
                RanOn::Reference(Variant::Reference),
                "statedb-harness replay scenarios/s.toml --seed 9",
                "reference",
            ),
            (
                RanOn::Codex {
                    version: "0.169.0".into(),
                    slow: true,
                },
                "statedb-harness run scenarios/s.toml --target codex --seed 9 --keep --slow",
                "codex-0.169.0",
            ),
            #[cfg(feature = "seeded-bugs")]
            (
                RanOn::Reference(Variant::DeferredWrites),
                "statedb-harness replay scenarios/s.toml --seed 9 --variant deferred-writes",
                "deferred-writes",
            ),
        ];
        for (ran_on, command, text) in cases {
            let o = outcome(ran_on);
            assert_eq!(o.replay_command(), command);
            assert_eq!(serde_json::to_value(&o).unwrap()["variant"], text);
        }
    }
}
