//! Seeded bug `fuzzy-fallback`: the filesystem fallback takes the first fuzzy/partial
//! file-name match, unverified.

use std::path::{Path, PathBuf};

use super::{Decisions, Defect, ExpectedKill};
use crate::rollout::search::collect_rollout_files;

pub struct FuzzyFallback;

impl Decisions for FuzzyFallback {
    fn replace_fallback_search(&self, dir: &Path, id_text: &str) -> Option<Option<PathBuf>> {
        Some(fuzzy_search(dir, id_text))
    }
}

pub const DEFECT: Defect = Defect {
    description:
        "the filesystem fallback takes the first fuzzy/partial file-name match, unverified",
    decisions: &FuzzyFallback,
    killed_by: &[
        ExpectedKill {
            scenario: "list_pages_prune_stale",
            failure: "whose head claims",
        },
        ExpectedKill {
            scenario: "lookup_damaged_rollouts_never_foreign",
            failure: "as verified, but its head is unreadable",
        },
        ExpectedKill {
            scenario: "lookup_fuzzy_name_never_used",
            failure: "whose head claims",
        },
        ExpectedKill {
            scenario: "lookup_gitignore_never_hides_rollout",
            failure: "whose head claims",
        },
        ExpectedKill {
            scenario: "lookup_moved_rollout_follows_root",
            failure: "whose head claims",
        },
        ExpectedKill {
            scenario: "lookup_race_file_moved_after_db_read",
            failure: "whose head claims",
        },
        ExpectedKill {
            scenario: "lookup_scopes_and_open_only",
            failure: "whose head claims",
        },
        ExpectedKill {
            scenario: "lookup_unverifiable_row_last_resort",
            failure: "whose head claims",
        },
    ],
};

/// **Deliberately wrong.** Models the fuzzy file-name lookup of the system under study, which
/// could return another thread's rollout: the first rollout (in path order) whose name
/// contains the id's first 8 characters, else the rollout whose name's UUID part shares the
/// longest prefix with `id_str` (at least one character). No UUID check on `id_str`, no head
/// verification. Never use it for real lookups.
fn fuzzy_search(root: &Path, id_str: &str) -> Option<PathBuf> {
    let (files, _warnings) = collect_rollout_files(root);
    let name_of = |path: &PathBuf| {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let prefix: String = id_str.chars().take(8).collect();
    if !prefix.is_empty() {
        if let Some(hit) = files.iter().find(|path| name_of(path).contains(&prefix)) {
            return Some(hit.clone());
        }
    }
    let mut best: Option<(usize, &PathBuf)> = None;
    for path in &files {
        let name = name_of(path);
        let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
        let tail_start = stem
            .char_indices()
            .rev()
            .nth(35)
            .map_or(0, |(index, _)| index);
        let shared = stem[tail_start..]
            .chars()
            .zip(id_str.chars())
            .take_while(|(a, b)| a == b)
            .count();
        let better = match best {
            None => shared > 0,
            Some((len, _)) => shared > len,
        };
        if better {
            best = Some((shared, path));
        }
    }
    best.map(|(_, path)| path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::layout::Root;
    use crate::rollout::writer::{write_rollout, RolloutSpec};
    use chrono::{TimeZone, Utc};

    #[test]
    fn prefers_any_name_sharing_the_first_eight_chars() {
        let home = tempfile::tempdir().unwrap();
        let created = Utc.timestamp_opt(1_769_515_200, 0).unwrap();
        let v7 = |fill: u8| {
            uuid::Builder::from_unix_timestamp_millis(
                u64::try_from(created.timestamp_millis()).unwrap(),
                &[fill; 10],
            )
            .into_uuid()
        };
        let (id, sibling) = (v7(1), v7(2));
        let wrong = write_rollout(home.path(), &RolloutSpec::new(sibling, created)).unwrap();
        let sessions = Root::Active.dir(home.path());
        assert_eq!(fuzzy_search(&sessions, &id.to_string()), Some(wrong));
        assert_eq!(
            fuzzy_search(&home.path().join("none"), &id.to_string()),
            None
        );
    }
}
