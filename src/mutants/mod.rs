//! The kill matrix: run the scenario catalog against the reference and against every
//! seeded-bug variant, and judge each failing scenario (see [`verdict`]): a kill counts
//! only when it is expected, for the expected reason, on a scenario the reference passes,
//! and reproduced. A variant without a kill is a gap in the catalog; any other verdict
//! (reference failure, flaky, unexpected, wrong reason, missed) fails the run, except a
//! one-off failure of a scenario declared `timing_dependent` that the variant does not
//! name: that is shown as noise.

mod render;
pub mod verdict;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

pub use render::render;
pub use verdict::{judge, ExpectedKill, Verdict};

use crate::layer::ReferenceLayer;
use crate::scenario::catalog::{run_all, Entry};
use crate::scenario::runner::{Bundles, RunOptions, ScenarioOutcome, Status};
use crate::variant::Variant;

/// One scenario's verdict on one variant.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioVerdict {
    /// The scenario's file stem.
    pub scenario: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// One variant's row of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct VariantRow {
    pub name: String,
    pub description: String,
    /// Confirmed kills (verdict `killed`).
    pub kills: usize,
    /// Every scenario with something to say about the variant: kills and problems.
    pub verdicts: Vec<ScenarioVerdict>,
    /// Expected killers that are not in the catalog being run (nothing is judged there).
    pub not_in_catalog: Vec<String>,
    pub wall_ms: u64,
}

impl VariantRow {
    pub fn survived(&self) -> bool {
        self.kills == 0
    }

    pub fn problems(&self) -> impl Iterator<Item = &ScenarioVerdict> {
        self.verdicts.iter().filter(|v| v.verdict.is_problem())
    }
}

/// A scenario the reference itself fails, with its first failure line.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceFailure {
    pub scenario: String,
    pub failure: String,
}

/// The whole matrix.
#[derive(Debug, Clone, Serialize)]
pub struct KillMatrix {
    pub variants: Vec<VariantRow>,
    pub survivors: Vec<String>,
    /// Scenarios the reference itself failed (must be empty).
    pub reference_failures: Vec<ReferenceFailure>,
    pub wall_ms: u64,
}

impl KillMatrix {
    pub fn killed(&self) -> usize {
        self.variants.iter().filter(|v| !v.survived()).count()
    }

    pub fn problems(&self) -> usize {
        self.variants.iter().map(|v| v.problems().count()).sum()
    }

    pub fn is_clean(&self) -> bool {
        self.survivors.is_empty() && self.reference_failures.is_empty() && self.problems() == 0
    }
}

/// The file stem naming a scenario in expected-kill lists.
pub fn scenario_key(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

async fn run_with(
    entries: &[Entry],
    base: &RunOptions,
    variant: Variant,
    jobs: usize,
) -> Vec<ScenarioOutcome> {
    let opts = RunOptions {
        variant,
        bundles: Bundles::Never,
        ..base.clone()
    };
    run_all(Arc::new(ReferenceLayer), entries, &opts, jobs, |_| {}).await
}

/// Runs `entries` against the reference and each of `variants` (in that order), re-running
/// every scenario a variant fails to see whether the failure reproduces.
pub async fn kill_matrix(
    entries: &[Entry],
    base: &RunOptions,
    variants: &[Variant],
    jobs: usize,
) -> KillMatrix {
    let started = Instant::now();
    let reference = run_with(entries, base, Variant::Reference, jobs).await;
    let reference_failures = reference
        .iter()
        .filter_map(|o| {
            verdict::first_failure(o).map(|failure| ReferenceFailure {
                scenario: scenario_key(&o.file),
                failure,
            })
        })
        .collect();
    let in_catalog: Vec<String> = entries.iter().map(|e| scenario_key(&e.file)).collect();
    let mut rows = Vec::new();
    for v in variants.iter().copied().filter(|v| !v.is_reference()) {
        let t = Instant::now();
        let first = run_with(entries, base, v, jobs).await;
        let failed: Vec<Entry> = entries
            .iter()
            .zip(&first)
            .filter(|(_, o)| o.status == Status::Fail)
            .map(|(e, _)| e.clone())
            .collect();
        let second: BTreeMap<String, ScenarioOutcome> = run_with(&failed, base, v, jobs)
            .await
            .into_iter()
            .map(|o| (scenario_key(&o.file), o))
            .collect();
        let expected = v.expected_kills();
        let mut verdicts = Vec::new();
        for ((entry, r), o) in entries.iter().zip(&reference).zip(&first) {
            let key = scenario_key(&o.file);
            let wanted = expected.iter().find(|e| e.scenario == key);
            let timing_dependent = entry.scenario.timing_dependent.is_some();
            if let Some(verdict) = judge(wanted, r, o, second.get(&key), timing_dependent) {
                verdicts.push(ScenarioVerdict {
                    scenario: key,
                    verdict,
                });
            }
        }
        rows.push(VariantRow {
            name: v.name().to_string(),
            description: v.description().to_string(),
            kills: verdicts.iter().filter(|s| s.verdict.is_kill()).count(),
            verdicts,
            not_in_catalog: expected
                .iter()
                .filter(|e| !in_catalog.iter().any(|k| k == e.scenario))
                .map(|e| e.scenario.to_string())
                .collect(),
            wall_ms: t.elapsed().as_millis() as u64,
        });
    }
    KillMatrix {
        survivors: rows
            .iter()
            .filter(|r| r.survived())
            .map(|r| r.name.clone())
            .collect(),
        variants: rows,
        reference_failures,
        wall_ms: started.elapsed().as_millis() as u64,
    }
}
