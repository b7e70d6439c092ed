//! The scenario catalog: loading every scenario under the given paths (all or nothing),
//! selecting by filter and shard, and running a selection with bounded concurrency.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::{Scenario, ScenarioError};
use super::runner::{run_scenario, RunOptions, ScenarioOutcome};
use crate::layer::StateLayer;

/// One loaded scenario and its file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: PathBuf,
    pub scenario: Scenario,
}

/// Loads every `*.toml` under `paths` (files or directories), sorted by path. Any error
/// rejects the whole catalog, listing every bad file, so nothing runs half-parsed.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Entry>, Vec<ScenarioError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|f| {
                            f.extension().and_then(|e| e.to_str()) == Some("toml") && f.is_file()
                        })
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => errors.push(err(p, format!("cannot read directory: {e}"))),
            }
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            errors.push(err(
                p,
                "no such file or directory; pass scenario files or directories".to_string(),
            ));
        }
    }
    let mut entries = Vec::new();
    for file in files {
        match Scenario::load(&file) {
            Ok(scenario) => entries.push(Entry { file, scenario }),
            Err(e) => errors.push(e),
        }
    }
    if entries.is_empty() && errors.is_empty() {
        errors.push(err(
            paths
                .first()
                .map(PathBuf::as_path)
                .unwrap_or(Path::new(".")),
            "no scenario files (*.toml) found".to_string(),
        ));
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

fn err(path: &Path, message: String) -> ScenarioError {
    ScenarioError {
        file: path.to_path_buf(),
        location: None,
        message,
    }
}

/// A shard `K/N` (1-based): scenario `i` of the sorted catalog belongs to shard `i % N + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid shard '{s}' (expected K/N with 1 <= K <= N, e.g. 1/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Keeps the entries matching `filter` (substring of name or file) and `shard`.
pub fn select(entries: Vec<Entry>, filter: Option<&str>, shard: Option<Shard>) -> Vec<Entry> {
    entries
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|s| i % s.count + 1 == s.index))
        .map(|(_, e)| e)
        .filter(|e| {
            filter
                .is_none_or(|f| e.scenario.name.contains(f) || e.file.to_string_lossy().contains(f))
        })
        .collect()
}

/// Runs `entries` with at most `jobs` at a time; `on_done` is called as each finishes.
pub async fn run_all<L: StateLayer>(
    layer: Arc<L>,
    entries: &[Entry],
    opts: &RunOptions,
    jobs: usize,
    on_done: impl Fn(&ScenarioOutcome),
) -> Vec<ScenarioOutcome> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, e) in entries.iter().enumerate() {
        let (layer, opts, e, sem) = (layer.clone(), opts.clone(), e.clone(), semaphore.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, run_scenario(layer, &e.scenario, &e.file, &opts).await)
        });
    }
    let mut results: Vec<Option<ScenarioOutcome>> = vec![None; entries.len()];
    while let Some(done) = set.join_next().await {
        if let Ok((i, outcome)) = done {
            on_done(&outcome);
            results[i] = Some(outcome);
        }
    }
    results.into_iter().flatten().collect()
}
