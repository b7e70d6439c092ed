//! The scenario file format (TOML), parsed with serde and validated before anything runs.
//!
//! A malformed file is rejected whole with file, line and column; unknown names (fault
//! kinds, roles, failpoints, threads, workers, expectation keys) list the valid values.
//! The format is documented field by field in `scenarios/README.md`. One concept per file:
//! timings, the home and its faults, workers, steps and checks, expectations.

mod expect;
mod home;
mod steps;
mod timing;
mod workers;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use expect::{Expect, ExpectedStatus, OrNone, RowExpect, PATH_OF_ROW};
pub use home::{DbSetup, ExtraFile, FaultDecl, FaultTime, HomeSpec};
pub use steps::{CheckSpec, Oracle, Step};
pub use timing::{parse_bound, TimingSpec};
pub use workers::{HandleMode, Role, WorkerKind, WorkerSpec};

use expect::check_expect;

/// A parsed, validated scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Why this scenario's event log may differ between two runs with one seed (it is then
    /// exempt from `--check-determinism`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing_dependent: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub timing: TimingSpec,
    #[serde(default)]
    pub home: HomeSpec,
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultDecl>,
    #[serde(default, rename = "worker", skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerSpec>,
    #[serde(default, rename = "step", skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    #[serde(default, rename = "check", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
}

/// Serialisation leaves out values equal to their default, so a written scenario shows
/// only what it sets.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// A scenario load error: the file and what is wrong, with line and column when known.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}{}: {message}", .location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ScenarioError {
    pub file: PathBuf,
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl Scenario {
    /// The declared worker named `name`.
    pub fn worker(&self, name: &str) -> Option<&WorkerSpec> {
        self.workers.iter().find(|w| w.name == name)
    }

    /// Reads, parses and validates one scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_path_buf(),
            location: None,
            message: format!("cannot read scenario: {e}"),
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let location = e.span().map(|span| line_col(text, span.start));
            ScenarioError {
                file: path.to_path_buf(),
                location,
                message: e.message().trim().to_string(),
            }
        })?;
        scenario.validate().map_err(|message| ScenarioError {
            file: path.to_path_buf(),
            location: None,
            message,
        })?;
        Ok(scenario)
    }

    /// Aliases the home provides.
    pub fn aliases(&self) -> BTreeSet<String> {
        (0..self.home.threads)
            .map(|i| format!("t{i}"))
            .chain((0..self.home.archived).map(|i| format!("a{i}")))
            .collect()
    }

    pub fn fault_id(&self, index: usize) -> String {
        let decl = &self.faults[index];
        decl.id.clone().unwrap_or_else(|| {
            let kind = decl.fault.kind();
            let same = self
                .faults
                .iter()
                .filter(|f| f.fault.kind() == kind)
                .count();
            if same > 1 {
                format!("{kind}#{index}")
            } else {
                kind.to_string()
            }
        })
    }

    fn validate(&self) -> Result<(), String> {
        let aliases = self.aliases();
        let check_alias = |alias: &str, at: &str| -> Result<(), String> {
            let bare = alias.strip_prefix("other:").unwrap_or(alias);
            if bare == "none" || aliases.contains(bare) {
                Ok(())
            } else {
                Err(format!(
                    "{at}: unknown thread '{alias}' (this home has: {})",
                    aliases.iter().cloned().collect::<Vec<_>>().join(", ")
                ))
            }
        };
        let fault_ids: Vec<String> = (0..self.faults.len()).map(|i| self.fault_id(i)).collect();
        for (i, decl) in self.faults.iter().enumerate() {
            for alias in decl.fault.thread_aliases() {
                check_alias(alias, &format!("fault '{}'", fault_ids[i]))?;
            }
        }
        let mut names = BTreeSet::new();
        for w in &self.workers {
            if !names.insert(w.name.clone()) {
                return Err(format!("worker '{}' is declared twice", w.name));
            }
            w.parsed_failpoints()
                .map_err(|e| format!("worker '{}': {e}", w.name))?;
            w.skew_ms()
                .map_err(|e| format!("worker '{}': clock_skew: {e}", w.name))?;
            for t in &w.threads {
                check_alias(t, &format!("worker '{}'", w.name))?;
            }
            match w.role {
                Role::Lookup if w.threads.is_empty() => {
                    return Err(format!("worker '{}': role lookup needs `threads`", w.name))
                }
                Role::LockHolder if w.hold.is_none() => {
                    return Err(format!(
                        "worker '{}': role lock_holder needs `hold`",
                        w.name
                    ))
                }
                Role::Entrypoint if w.entrypoint.is_none() => {
                    return Err(format!(
                        "worker '{}': role entrypoint needs `entrypoint` (cli, exec, app_server, mcp_server)",
                        w.name
                    ))
                }
                _ => {}
            }
        }
        let worker = |name: &str, at: usize| -> Result<&WorkerSpec, String> {
            self.workers.iter().find(|w| w.name == name).ok_or_else(|| {
                format!(
                    "step {}: unknown worker '{name}' (declared: {})",
                    at + 1,
                    self.workers
                        .iter()
                        .map(|w| w.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        };
        let mut started = BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("step {}", i + 1);
            match step {
                Step::Start { worker: w } => {
                    worker(w, i)?;
                    if !started.insert(w.clone()) {
                        return Err(format!("{at}: worker '{w}' is started twice"));
                    }
                }
                Step::WaitFor {
                    worker: w, event, ..
                } => {
                    worker(w, i)?;
                    if let Some(fp) = event.strip_prefix("failpoint:") {
                        crate::failpoints::validate_name(fp).map_err(|e| format!("{at}: {e}"))?;
                    }
                }
                Step::Release {
                    worker: w,
                    failpoint,
                } => {
                    worker(w, i)?;
                    crate::failpoints::validate_name(failpoint)
                        .map_err(|e| format!("{at}: {e}"))?;
                }
                Step::Kill { worker: w } => {
                    if worker(w, i)?.kind != WorkerKind::Process {
                        return Err(format!(
                            "{at}: kill needs a process worker; '{w}' is a task"
                        ));
                    }
                }
                Step::Join {
                    worker: w, expect, ..
                } => {
                    worker(w, i)?;
                    check_expect(expect, &at, &check_alias)?;
                }
                Step::Inject { fault } => {
                    let idx = fault_ids.iter().position(|f| f == fault).ok_or_else(|| {
                        format!(
                            "{at}: unknown fault '{fault}' (declared: {})",
                            fault_ids.join(", ")
                        )
                    })?;
                    if self.faults[idx].at != FaultTime::Step {
                        return Err(format!("{at}: fault '{fault}' is applied at setup; declare it with at = \"step\""));
                    }
                }
                Step::Lookup { thread, expect, .. } | Step::Archive { thread, expect, .. } => {
                    check_alias(thread, &at)?;
                    check_expect(expect, &at, &check_alias)?;
                }
                Step::Init { expect } | Step::List { expect, .. } => {
                    check_expect(expect, &at, &check_alias)?
                }
                Step::Entrypoint { expect, .. } => {
                    check_expect(expect, &at, &check_alias)?;
                }
                Step::ExpectRow { thread, expect } => {
                    check_alias(thread, &at)?;
                    if let Some(p) = &expect.path {
                        check_alias(p, &at)?;
                    }
                }
                Step::ExpectFiles { present, absent } => {
                    if let Some(bad) = present.iter().chain(absent).find(|n| {
                        let p = std::path::Path::new(n.as_str());
                        p.is_absolute()
                            || p.components().any(|c| c == std::path::Component::ParentDir)
                    }) {
                        return Err(format!(
                            "{at}: file {bad} must be relative and inside the sqlite home"
                        ));
                    }
                }
                Step::Sleep { .. } | Step::ExpectBackfill { .. } | Step::Check { .. } => {}
            }
        }
        Ok(())
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(Path::new("s.toml"), text)
    }

    #[test]
    fn a_minimal_scenario_parses_with_defaults() {
        let s = parse("name = \"x\"\n[[step]]\ndo = \"lookup\"\nthread = \"t0\"\nexpect = { source = \"db\" }\n").unwrap();
        assert_eq!(s.home.threads, 3);
        assert_eq!(s.timing.wait_timeout, Duration::from_secs(1));
    }

    #[test]
    fn an_unknown_fault_kind_is_reported_with_line_and_valid_kinds() {
        let err = parse("name = \"x\"\n\n[[fault]]\nkind = \"explode\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("s.toml:3:"), "{text}");
        assert!(text.contains("stale_row"), "{text}");
    }

    #[test]
    fn an_unknown_thread_alias_lists_the_home() {
        let err = parse("name = \"x\"\n[[step]]\ndo = \"lookup\"\nthread = \"t9\"\n").unwrap_err();
        assert!(err.to_string().contains("t0, t1, t2"), "{err}");
    }

    #[test]
    fn an_unknown_step_key_is_rejected() {
        let err = parse("name = \"x\"\n[[step]]\ndo = \"lookup\"\nthread = \"t0\"\nexpect = { sorce = \"db\" }\n").unwrap_err();
        assert!(err.to_string().contains("sorce"), "{err}");
    }

    #[test]
    fn bounds_resolve_against_timings() {
        let t = TimingSpec::default();
        assert_eq!(
            parse_bound("wait_timeout+slack", &t).unwrap(),
            t.wait_timeout + t.slack
        );
        assert_eq!(
            parse_bound("200ms", &t).unwrap(),
            Duration::from_millis(200)
        );
        assert!(parse_bound("soon", &t).is_err());
    }

    /// Serialising a scenario gives TOML that parses back to the same scenario, leaving
    /// out what is default: checked on every file of the catalog.
    #[test]
    fn catalog_scenarios_serialise_and_parse_back() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let sc = Scenario::load(&path).unwrap();
            let text = toml::to_string_pretty(&sc).unwrap();
            let again = Scenario::parse(&path, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(
                toml::to_string_pretty(&again).unwrap(),
                text,
                "{}",
                path.display()
            );
            assert!(
                !text.contains("prune = false"),
                "defaults are left out:\n{text}"
            );
            seen += 1;
        }
        assert!(seen > 10, "only {seen} scenarios under {}", dir.display());
    }

    #[test]
    fn kill_of_a_task_worker_is_rejected() {
        let err = parse(
            "name = \"x\"\n[[worker]]\nname = \"w\"\nrole = \"init\"\n[[step]]\ndo = \"kill\"\nworker = \"w\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("process worker"), "{err}");
    }

    #[test]
    fn unknown_sources_reasons_statuses_and_entrypoints_are_parse_errors_naming_the_file() {
        let step = |expect: &str| {
            format!("name = \"x\"\n[[step]]\ndo = \"lookup\"\nthread = \"t0\"\nexpect = {expect}\n")
        };
        for (text, needle) in [
            (step("{ source = \"disk\" }"), "`filesystem`"),
            (step("{ fallback_reason = \"gone\" }"), "`missing_row`"),
            (
                step("{ source = \"none\", fallback_reason = \"none\" }"),
                "",
            ),
            (
                "name = \"x\"\n[[step]]\ndo = \"init\"\nexpect = { status = \"complet\" }\n"
                    .to_string(),
                "`complete`",
            ),
            (
                "name = \"x\"\n[[step]]\ndo = \"entrypoint\"\nentrypoint = \"tui\"\n".to_string(),
                "`app_server`",
            ),
        ] {
            match parse(&text) {
                Ok(_) => assert!(needle.is_empty(), "accepted: {text}"),
                Err(err) => {
                    let err = err.to_string();
                    assert!(!needle.is_empty(), "rejected: {err}");
                    assert!(err.starts_with("s.toml:"), "{err}");
                    assert!(err.contains(needle), "{err}");
                }
            }
        }
    }
}
