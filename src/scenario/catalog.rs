//! The scenario catalog: loading every scenario under the given paths (all or nothing),
//! selecting by filter and shard, and running a selection with bounded concurrency.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::{Scenario, ScenarioError};
use super::runner::{run_scenario, RunOptions, ScenarioOutcome, Status};
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
/// Returns one outcome per entry, in entry order: a scenario whose run panicked or was
/// cancelled is a failure carrying that message, never a missing row.
pub async fn run_all<L: StateLayer>(
    layer: Arc<L>,
    entries: &[Entry],
    opts: &RunOptions,
    jobs: usize,
    on_done: impl Fn(&ScenarioOutcome),
) -> Vec<ScenarioOutcome> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let mut index_of = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let (layer, opts, e, sem) = (layer.clone(), opts.clone(), e.clone(), semaphore.clone());
        let task = set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            run_scenario(layer, &e.scenario, &e.file, &opts).await
        });
        index_of.insert(task.id(), i);
    }
    let mut results: Vec<Option<ScenarioOutcome>> = vec![None; entries.len()];
    while let Some(done) = set.join_next_with_id().await {
        let (id, outcome) = match done {
            Ok((id, outcome)) => (id, outcome),
            Err(e) => {
                let id = e.id();
                let message = if e.is_panic() {
                    format!(
                        "the scenario run panicked: {}",
                        panic_message(e.into_panic())
                    )
                } else {
                    "the scenario run was cancelled before it finished".to_string()
                };
                match index_of.get(&id) {
                    Some(&i) => (id, crashed(&entries[i], opts, message)),
                    None => continue,
                }
            }
        };
        on_done(&outcome);
        if let Some(&i) = index_of.get(&id) {
            results[i] = Some(outcome);
        }
    }
    results
        .into_iter()
        .zip(entries)
        .map(|(r, e)| {
            r.unwrap_or_else(|| crashed(e, opts, "the scenario run never reported".to_string()))
        })
        .collect()
}

/// The outcome of a run that ended without reporting: a failure with `message`.
fn crashed(entry: &Entry, opts: &RunOptions, message: String) -> ScenarioOutcome {
    let mut outcome = ScenarioOutcome::start(&entry.scenario, &entry.file, opts);
    outcome.status = Status::Fail;
    outcome.failures.push(message);
    outcome
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => s.to_string(),
            Err(_) => "(a non-text panic payload)".to_string(),
        },
    }
}

/// Pairs two runs of the same catalog by scenario file and name (never by position, which
/// a missing or reordered outcome would shift). Outcomes of `second` without a partner in
/// `first` are dropped; each pair is `(first, second)`.
pub fn pair_runs(
    first: &mut [ScenarioOutcome],
    second: Vec<ScenarioOutcome>,
) -> Vec<(&mut ScenarioOutcome, ScenarioOutcome)> {
    let mut by_key: HashMap<(PathBuf, String), ScenarioOutcome> = second
        .into_iter()
        .map(|o| ((o.file.clone(), o.name.clone()), o))
        .collect();
    first
        .iter_mut()
        .filter_map(|f| {
            let partner = by_key.remove(&(f.file.clone(), f.name.clone()))?;
            Some((f, partner))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(file: &str, name: &str, detail: &str) -> ScenarioOutcome {
        let entry = Entry {
            file: PathBuf::from(file),
            scenario: Scenario::parse(
                Path::new(file),
                &format!("name = \"{name}\"\n[[step]]\ndo = \"sleep\"\nfor = \"1ms\"\n"),
            )
            .expect("scenario"),
        };
        crashed(&entry, &RunOptions::default(), detail.to_string())
    }

    #[test]
    fn runs_pair_by_file_and_name_not_position() {
        let mut first = vec![
            outcome("a.toml", "a", "first a"),
            outcome("b.toml", "b", "first b"),
            outcome("c.toml", "c", "first c"),
        ];
        // The second run lost `a` and came back in another order.
        let second = vec![
            outcome("c.toml", "c", "second c"),
            outcome("b.toml", "b", "second b"),
        ];
        let pairs: Vec<(String, String)> = pair_runs(&mut first, second)
            .into_iter()
            .map(|(f, s)| (f.failures[0].clone(), s.failures[0].clone()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("first b".to_string(), "second b".to_string()),
                ("first c".to_string(), "second c".to_string()),
            ]
        );
    }

    #[test]
    fn same_name_in_two_files_is_two_scenarios() {
        let mut first = vec![outcome("x/a.toml", "a", "x"), outcome("y/a.toml", "a", "y")];
        let second = vec![outcome("y/a.toml", "a", "y again")];
        let pairs = pair_runs(&mut first, second);
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].0.failures[0], "y");
    }
}
