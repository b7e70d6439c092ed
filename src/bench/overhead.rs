//! Harness overhead: how much longer the scenario catalog takes than the waits its
//! scenarios declare (sleeps, timeouts, leases they deliberately wait out).
//!
//! This module is only the hook: the scenario runner measures the catalog's wall time and
//! sums its declared waits, then passes both in [`HarnessOverheadInput`] (or calls
//! [`harness_overhead_ratio`] directly). Without an input the report says "not measured".

use std::time::Duration;

use super::stats::{millis, ratio};

/// What the scenario runner measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HarnessOverheadInput {
    /// Wall time of running the whole scenario catalog.
    pub catalog_wall: Duration,
    /// Sum of the waits the scenarios declare.
    pub declared_waits: Duration,
}

/// The figure as reported.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HarnessOverheadFigures {
    pub measured: bool,
    pub catalog_wall_ms: Option<f64>,
    pub declared_waits_ms: Option<f64>,
    /// `catalog_wall / declared_waits`: 1.0 means the harness adds nothing to the waits.
    pub ratio: Option<f64>,
    pub note: String,
}

/// `catalog_wall / declared_waits`; `None` when nothing is declared (no meaningful ratio).
pub fn harness_overhead_ratio(catalog_wall: Duration, declared_waits: Duration) -> Option<f64> {
    ratio(catalog_wall.as_secs_f64(), declared_waits.as_secs_f64())
}

/// The report entry for `input`, or "not measured".
pub fn figures(input: Option<&HarnessOverheadInput>) -> HarnessOverheadFigures {
    match input {
        None => HarnessOverheadFigures {
            measured: false,
            catalog_wall_ms: None,
            declared_waits_ms: None,
            ratio: None,
            note: "not measured (filled in by the scenario runner)".to_string(),
        },
        Some(i) => {
            let ratio = harness_overhead_ratio(i.catalog_wall, i.declared_waits);
            HarnessOverheadFigures {
                measured: true,
                catalog_wall_ms: Some(millis(i.catalog_wall)),
                declared_waits_ms: Some(millis(i.declared_waits)),
                ratio,
                note: match ratio {
                    Some(_) => "catalog wall time / declared waits".to_string(),
                    None => "no declared waits; no ratio".to_string(),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_wall_over_declared_waits() {
        let r = harness_overhead_ratio(Duration::from_secs(3), Duration::from_secs(2));
        assert_eq!(r, Some(1.5));
        assert_eq!(
            harness_overhead_ratio(Duration::from_secs(3), Duration::ZERO),
            None
        );
    }

    #[test]
    fn without_input_it_is_not_measured() {
        let f = figures(None);
        assert!(!f.measured && f.ratio.is_none());
        assert!(f.note.starts_with("not measured"));
        let given = figures(Some(&HarnessOverheadInput {
            catalog_wall: Duration::from_millis(1200),
            declared_waits: Duration::from_millis(1000),
        }));
        assert!(given.measured);
        assert_eq!(given.ratio, Some(1.2));
    }
}
