//! The backfill's scan of both rollout roots as a stream, in watermark order, holding one
//! directory listing per level of the walk — never one path per rollout of the home.
//!
//! The order is the one the backfill always had: every rollout (as
//! [`collect_rollout_files`] finds them: regular `rollout-*` files, symlinks ignored, a
//! compressed twin of a plain rollout skipped) sorted by its watermark string
//! ([`watermark_for`]), ties by path, only those strictly after the last checkpoint.
//!
//! Why a depth-first walk yields that order: every watermark under a directory starts with
//! that directory's watermark plus `/`, and the strings sharing a prefix are contiguous in
//! string order. So the walk sorts each directory's entries by the piece they add to the
//! watermark (a file: its name; a directory: its name plus `/`) and descends in that
//! order. The one case this misses is a piece that itself contains `/` after the
//! watermark's `\` → `/` rewrite, or two directories whose names read the same once made
//! UTF-8: their subtrees interleave. A directory where that happens is collected whole and
//! sorted, exactly as before (bounded by that directory, and no codex home has one).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::rollout::layout::{is_rollout_file_name, plain_sibling, watermark_for, Root};
use crate::rollout::search::{collect_rollout_files, list_dir, root_exists};

/// One rollout to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub path: PathBuf,
    pub watermark: String,
    pub root: Root,
}

/// Something still to visit, with the piece it adds to its parent's watermark.
enum Item {
    File(Entry),
    Dir { path: PathBuf, root: Root },
}

/// The rollouts of a codex home after a watermark, in watermark order.
pub(super) struct RolloutScan {
    home: PathBuf,
    after: Option<String>,
    /// Items still to visit, the next one last.
    stack: Vec<Item>,
}

impl RolloutScan {
    /// The scan of `home`'s two roots, yielding only watermarks greater than `after`.
    pub fn new(home: &Path, after: Option<String>) -> Self {
        let mut roots: Vec<(String, Item)> = Root::ALL
            .into_iter()
            .filter(|root| root_exists(&root.dir(home)))
            .map(|root| {
                let key = format!("{}/", root.subdir());
                let item = Item::Dir {
                    path: root.dir(home),
                    root,
                };
                (key, item)
            })
            .collect();
        roots.sort_by(|a, b| a.0.cmp(&b.0));
        RolloutScan {
            home: home.to_path_buf(),
            after,
            stack: roots.into_iter().rev().map(|(_, item)| item).collect(),
        }
    }

    /// Up to `n` next rollouts; fewer only when the scan is over.
    pub fn next_batch(&mut self, n: usize) -> Vec<Entry> {
        self.by_ref().take(n).collect()
    }

    fn entry(&self, path: PathBuf, root: Root) -> Entry {
        Entry {
            watermark: watermark_for(&self.home, &path),
            path,
            root,
        }
    }

    /// Lists `dir` and pushes its entries, sorted, onto the stack.
    fn expand(&mut self, dir: &Path, root: Root) {
        let mut warnings = Vec::new();
        let listing = list_dir(dir, &mut warnings);
        for w in &warnings {
            tracing::warn!("backfill scan: {w}");
        }
        let listing = match listing {
            Ok(listing) => listing,
            Err(warning) => {
                tracing::warn!("backfill scan: {warning}");
                return;
            }
        };
        let rollouts: Vec<PathBuf> = listing
            .files
            .into_iter()
            .filter(|(_, name)| is_rollout_file_name(name))
            .map(|(path, _)| path)
            .collect();
        // Where Codex left both a plain rollout and its compressed copy, the plain one is read.
        let names: HashSet<&Path> = rollouts.iter().map(PathBuf::as_path).collect();
        let twinned =
            |f: &PathBuf| plain_sibling(f).is_some_and(|plain| names.contains(plain.as_path()));
        let kept: Vec<PathBuf> = rollouts.iter().filter(|f| !twinned(f)).cloned().collect();
        drop(names);
        let mut items: Vec<(String, Item)> = kept
            .into_iter()
            .map(|path| (piece(&path, false), Item::File(self.entry(path, root))))
            .chain(
                listing
                    .subdirs
                    .into_iter()
                    .map(|path| (piece(&path, true), Item::Dir { path, root })),
            )
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let interleaved = items
            .windows(2)
            .any(|w| matches!(w[0].1, Item::Dir { .. }) && w[1].0.starts_with(&w[0].0));
        if interleaved {
            self.stack
                .extend(self.collect_whole(items).into_iter().rev());
        } else {
            self.stack
                .extend(items.into_iter().rev().map(|(_, item)| item));
        }
    }

    /// The fallback for a directory whose subtrees interleave: every rollout below it,
    /// sorted by watermark then path.
    fn collect_whole(&self, items: Vec<(String, Item)>) -> Vec<Item> {
        let mut entries = Vec::new();
        for (_, item) in items {
            match item {
                Item::File(entry) => entries.push(entry),
                Item::Dir { path, root } => {
                    let (files, warnings) = collect_rollout_files(&path);
                    for w in warnings {
                        tracing::warn!("backfill scan: {w}");
                    }
                    entries.extend(files.into_iter().map(|f| self.entry(f, root)));
                }
            }
        }
        entries.sort_by(|a, b| (&a.watermark, &a.path).cmp(&(&b.watermark, &b.path)));
        entries.into_iter().map(Item::File).collect()
    }
}

impl Iterator for RolloutScan {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        loop {
            match self.stack.pop()? {
                Item::File(entry) => {
                    if self
                        .after
                        .as_deref()
                        .is_none_or(|mark| entry.watermark.as_str() > mark)
                    {
                        return Some(entry);
                    }
                }
                Item::Dir { path, root } => self.expand(&path, root),
            }
        }
    }
}

/// The piece `path`'s last component adds to its parent's watermark.
fn piece(path: &Path, is_dir: bool) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut piece = name.replace('\\', "/");
    if is_dir {
        piece.push('/');
    }
    piece
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{generate_home, FixtureOptions};
    use std::fs;

    /// The order the backfill had before it streamed: collect everything, sort, filter.
    fn collected(home: &Path, after: Option<&str>) -> Vec<Entry> {
        let mut entries = Vec::new();
        for root in Root::ALL {
            let (files, _) = collect_rollout_files(&root.dir(home));
            entries.extend(files.into_iter().map(|path| Entry {
                watermark: watermark_for(home, &path),
                path,
                root,
            }));
        }
        entries.sort_by(|a, b| a.watermark.cmp(&b.watermark));
        entries.retain(|e| after.is_none_or(|m| e.watermark.as_str() > m));
        entries
    }

    /// Writes a placeholder file at each of `names` under `dir` (the scan never reads them).
    fn touch(dir: &Path, names: &[&str]) {
        for name in names {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
    }

    fn generated(threads: usize, archived: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let opts = FixtureOptions {
            threads,
            archived,
            ..FixtureOptions::default()
        };
        generate_home(dir.path(), &opts).unwrap();
        dir
    }

    #[test]
    fn a_generated_home_streams_in_the_collected_order() {
        let dir = generated(40, 9);
        let all = collected(dir.path(), None);
        assert_eq!(all.len(), 49);
        assert_eq!(RolloutScan::new(dir.path(), None).collect::<Vec<_>>(), all);
        let mark = all[20].watermark.clone();
        let rest: Vec<_> = RolloutScan::new(dir.path(), Some(mark.clone())).collect();
        assert_eq!(rest, collected(dir.path(), Some(&mark)));
        assert_eq!(rest.len(), 28);
    }

    /// The scan streams: when it hands out the oldest rollout of a home of many day
    /// directories, it holds the path down to it and the unlisted directories beside it,
    /// not every rollout of the home. Catches a scan that collects whole subtrees where
    /// nothing interleaves (memory growing with the home).
    #[test]
    fn the_first_rollout_comes_before_the_home_is_listed() {
        let dir = generated(300, 0);
        let mut scan = RolloutScan::new(dir.path(), None);
        assert!(scan.next().is_some());
        assert!(
            scan.stack.len() < 60,
            "{} items held after the first of 300 rollouts",
            scan.stack.len()
        );
    }

    #[test]
    fn batches_cover_the_scan_once() {
        let dir = generated(11, 0);
        let mut scan = RolloutScan::new(dir.path(), None);
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let b = scan.next_batch(4);
            (!b.is_empty()).then_some(b.len())
        })
        .collect();
        assert_eq!(sizes, [4, 4, 3]);
    }

    #[test]
    fn odd_names_keep_the_string_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Root::Active.dir(dir.path());
        // `-` sorts before `/`: the file `2025-x/…` comes before the directory `2025/`'s files.
        // A compressed twin is skipped, a lone compressed rollout is kept.
        touch(
            &s,
            &[
                "2025/rollout-a.jsonl",
                "2025-x/rollout-b.jsonl",
                "2025.jsonl/rollout-c.jsonl",
                "rollout-2025.jsonl",
                "a/rollout-z.jsonl",
                "a/rollout-z.jsonl.zst",
                "a/rollout-y.jsonl.zst",
                "a/notes.txt",
            ],
        );
        touch(&Root::Archived.dir(dir.path()), &["rollout-q.jsonl"]);
        let streamed: Vec<_> = RolloutScan::new(dir.path(), None).collect();
        assert_eq!(streamed, collected(dir.path(), None));
        assert_eq!(streamed.len(), 7);
        assert_eq!(streamed[0].root, Root::Archived);
    }

    #[test]
    fn a_backslash_name_that_reads_as_a_subdirectory_falls_back_to_the_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Root::Active.dir(dir.path());
        // Its watermark `sessions/rollout-d/rollout-m.jsonl` sorts between the two files of
        // the directory `rollout-d/`.
        touch(
            &s,
            &[
                "rollout-d\\rollout-m.jsonl",
                "rollout-d/rollout-a.jsonl",
                "rollout-d/rollout-z.jsonl",
                "rollout-e.jsonl",
            ],
        );
        let streamed: Vec<_> = RolloutScan::new(dir.path(), None).collect();
        let expected = collected(dir.path(), None);
        assert_eq!(streamed, expected);
        assert!(expected[1].path.ends_with("rollout-d\\rollout-m.jsonl"));
    }

    #[test]
    fn missing_roots_and_unreadable_entries_yield_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(RolloutScan::new(dir.path(), None).count(), 0);
        // A root that is a file cannot be listed: a warning, no rollouts.
        fs::write(Root::Active.dir(dir.path()), "x").unwrap();
        assert_eq!(RolloutScan::new(dir.path(), None).count(), 0);
    }
}
