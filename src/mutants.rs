//! The kill matrix: run the scenario catalog against the reference and against every
//! seeded-bug variant, and report which scenarios caught (killed) each variant. A variant
//! no scenario kills is a gap in the catalog; the reference must pass everything.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::layer::ReferenceLayer;
use crate::scenario::catalog::{run_all, Entry};
use crate::scenario::runner::{RunOptions, Status};
use crate::variant::Variant;

/// One variant's row of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct VariantRow {
    pub name: String,
    pub description: String,
    pub killed_by: Vec<String>,
    pub wall_ms: u64,
}

/// The whole matrix.
#[derive(Debug, Clone, Serialize)]
pub struct KillMatrix {
    pub variants: Vec<VariantRow>,
    pub survivors: Vec<String>,
    /// Scenarios the reference itself failed (must be empty).
    pub reference_failures: Vec<String>,
    pub wall_ms: u64,
}

impl KillMatrix {
    pub fn is_clean(&self) -> bool {
        self.survivors.is_empty() && self.reference_failures.is_empty()
    }
}

/// Runs `entries` against the reference and each of `variants` (in that order).
pub async fn kill_matrix(
    entries: &[Entry],
    base: &RunOptions,
    variants: &[Variant],
    jobs: usize,
) -> KillMatrix {
    let started = Instant::now();
    let run = |variant: Variant| {
        let opts = RunOptions {
            variant,
            keep: false,
            ..base.clone()
        };
        async move {
            let t = Instant::now();
            let outcomes = run_all(Arc::new(ReferenceLayer), entries, &opts, jobs, |_| {}).await;
            let failed: Vec<String> = outcomes
                .iter()
                .filter(|o| o.status == Status::Fail)
                .map(|o| o.name.clone())
                .collect();
            // Failing runs keep their directories as bundles; for mutants they are expected.
            for o in &outcomes {
                if let Some(b) = &o.bundle {
                    let _ = std::fs::remove_dir_all(b);
                }
            }
            (failed, t.elapsed().as_millis() as u64)
        }
    };
    let (reference_failures, _) = run(Variant::Reference).await;
    let mut rows = Vec::new();
    for v in variants.iter().copied().filter(|v| !v.is_reference()) {
        let (killed_by, wall_ms) = run(v).await;
        rows.push(VariantRow {
            name: v.name().to_string(),
            description: v.description().to_string(),
            killed_by,
            wall_ms,
        });
    }
    KillMatrix {
        survivors: rows
            .iter()
            .filter(|r| r.killed_by.is_empty())
            .map(|r| r.name.clone())
            .collect(),
        variants: rows,
        reference_failures,
        wall_ms: started.elapsed().as_millis() as u64,
    }
}

/// The matrix as a terminal table.
pub fn render(m: &KillMatrix) -> String {
    let mut s = String::new();
    let width = m.variants.iter().map(|v| v.name.len()).max().unwrap_or(10);
    s.push_str(&format!(
        "{:<width$}  {:>6}  {:>8}  killed by\n",
        "variant", "kills", "time"
    ));
    for v in &m.variants {
        let by = if v.killed_by.is_empty() {
            "SURVIVED — add a scenario that catches it".to_string()
        } else {
            v.killed_by.join("; ")
        };
        s.push_str(&format!(
            "{:<width$}  {:>6}  {:>6.1} s  {by}\n",
            v.name,
            v.killed_by.len(),
            v.wall_ms as f64 / 1000.0
        ));
    }
    s.push('\n');
    if m.reference_failures.is_empty() {
        s.push_str("reference: passes every scenario\n");
    } else {
        s.push_str(&format!(
            "reference FAILED: {}\n",
            m.reference_failures.join("; ")
        ));
    }
    s.push_str(&format!(
        "{} variants, {} killed, {} survived; wall time {} ms\n",
        m.variants.len(),
        m.variants.len() - m.survivors.len(),
        m.survivors.len(),
        m.wall_ms
    ));
    s
}
