//! Filesystem search over a rollout root: collecting every rollout for backfill, and finding
//! one thread's rollout by exact UUID for lookups that cannot trust the database.
//!
//! Owns plain `std::fs` walks (explicit stack, never following symlinks, never honouring
//! `.gitignore`). Every match is verified through the head reader; this module never
//! writes. It also keeps, clearly fenced, the deliberately wrong fuzzy lookup that the
//! modelled system used, for a seeded-bug variant.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta};
use uuid::Uuid;

use super::head::read_session_meta_head;
use super::layout::{
    is_compressed_rollout, is_rollout_file_name, parse_rollout_file_name, plain_sibling,
    uuid_v7_unix_ms,
};

/// One directory's entries, split the way walks need them (each list sorted by path).
pub(crate) struct DirListing {
    /// Regular files whose name is valid UTF-8.
    pub files: Vec<(PathBuf, String)>,
    /// Real sub-directories (symlinks excluded).
    pub subdirs: Vec<PathBuf>,
}

/// Lists `dir`, appending a warning (naming the path) for each entry it cannot classify.
/// Returns `Err` with a warning when the directory itself cannot be read.
pub(crate) fn list_dir(dir: &Path, warnings: &mut Vec<String>) -> Result<DirListing, String> {
    let entries =
        fs::read_dir(dir).map_err(|err| format!("failed to read dir {}: {err}", dir.display()))?;
    let mut listing = DirListing {
        files: Vec::new(),
        subdirs: Vec::new(),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                warnings.push(format!("failed to read entry in {}: {err}", dir.display()));
                continue;
            }
        };
        let path = entry.path();
        // `DirEntry::file_type` does not follow symlinks, so links are neither files nor dirs.
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => listing.subdirs.push(path),
            Ok(kind) if kind.is_file() => {
                if let Some(name) = entry.file_name().to_str() {
                    listing.files.push((path, name.to_string()));
                }
            }
            Ok(_) => {}
            Err(err) => warnings.push(format!(
                "failed to read file type of {}: {err}",
                path.display()
            )),
        }
    }
    listing.files.sort();
    listing.subdirs.sort();
    Ok(listing)
}

/// Whether `root` exists (following a symlinked root, as `read_dir` does).
pub(crate) fn root_exists(root: &Path) -> bool {
    !matches!(fs::metadata(root), Err(err) if err.kind() == io::ErrorKind::NotFound)
}

/// Every regular `rollout-*.jsonl` (or `.jsonl.zst`, unless its plain twin is there) file
/// under `root`, recursively, sorted by path, plus a
/// warning for each directory or entry that could not be read (those are skipped).
/// Symlinks are ignored. A missing root yields two empty vectors.
pub fn collect_rollout_files(root: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    if !root_exists(root) {
        return (files, warnings);
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        match list_dir(&dir, &mut warnings) {
            Ok(listing) => {
                files.extend(
                    listing
                        .files
                        .into_iter()
                        .filter(|(_, name)| is_rollout_file_name(name))
                        .map(|(path, _)| path),
                );
                // Reversed so the depth-first walk visits sub-directories in sorted order.
                stack.extend(listing.subdirs.into_iter().rev());
            }
            Err(warning) => warnings.push(warning),
        }
    }
    files.sort();
    // Where Codex left both a plain rollout and its compressed copy, the plain one is read.
    let all: std::collections::HashSet<PathBuf> = files.iter().cloned().collect();
    files.retain(|f| plain_sibling(f).is_none_or(|plain| !all.contains(&plain)));
    (files, warnings)
}

/// Which phase of [`find_rollout_by_id`] found the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SearchVia {
    /// Listing the `YYYY/MM/DD` directories around a UUIDv7's embedded time.
    DayProbe,
    /// Listing the flat root and/or walking the whole tree.
    Walk,
}

/// What [`find_rollout_by_id`] found and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchOutcome {
    /// The verified rollout, if any.
    pub found: Option<PathBuf>,
    pub via: Option<SearchVia>,
    /// Files whose name carries the id but whose head does not verify, with the reason:
    /// `mismatch:<id in the head>` or a [`super::head::HeadError::reason`].
    pub rejected: Vec<(PathBuf, String)>,
    /// Directories listed.
    pub dirs_probed: usize,
    /// Regular files seen in the listed directories.
    pub files_examined: usize,
}

/// Finds the rollout of thread `id` under `root` by exact file-name UUID, verified by head.
///
/// Only files whose parsed name UUID equals `id` are candidates (never fuzzy, never a
/// substring); a candidate is accepted only if its `session_meta.id` is `id` too. Phases, each
/// stopping the search if it verified at least one file:
/// 1. not `flat` and `id` is a UUIDv7: list `root/YYYY/MM/DD` for the UTC day of its time
///    and the days before and after (the directories use local time);
/// 2. `flat`: list `root` itself (reported as [`SearchVia::Walk`], being the walk's first
///    level);
/// 3. walk the whole root, not re-listing directories already seen.
///
/// Among several verified files in the deciding phase, the greatest path in byte order wins.
/// A missing root is simply "not found".
pub fn find_rollout_by_id(root: &Path, id: Uuid, flat: bool) -> SearchOutcome {
    let mut search = Search {
        id,
        outcome: SearchOutcome::default(),
        verified: Vec::new(),
        listed: HashMap::new(),
    };
    if !root_exists(root) {
        return search.outcome;
    }

    if !flat {
        for day in probe_days(id) {
            let dir = root
                .join(format!("{:04}", day.year()))
                .join(format!("{:02}", day.month()))
                .join(format!("{:02}", day.day()));
            let is_real_dir = fs::symlink_metadata(&dir).is_ok_and(|meta| meta.is_dir());
            if is_real_dir {
                search.examine_dir(&dir);
            }
        }
        if search.settle(SearchVia::DayProbe) {
            return search.outcome;
        }
    }

    if flat {
        search.examine_dir(root);
        if search.settle(SearchVia::Walk) {
            return search.outcome;
        }
    }

    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let subdirs = match search.listed.get(&dir) {
            Some(cached) => cached.clone(),
            None => search.examine_dir(&dir),
        };
        stack.extend(subdirs.into_iter().rev());
    }
    search.settle(SearchVia::Walk);
    search.outcome
}

/// The UTC days around a UUIDv7's timestamp (its day first), or nothing for other ids.
fn probe_days(id: Uuid) -> Vec<NaiveDate> {
    let Some(day) = uuid_v7_unix_ms(&id)
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| t.date_naive())
    else {
        return Vec::new();
    };
    let one = TimeDelta::days(1);
    [
        day.checked_sub_signed(one),
        Some(day),
        day.checked_add_signed(one),
    ]
    .into_iter()
    .flatten()
    .collect()
}

struct Search {
    id: Uuid,
    outcome: SearchOutcome,
    verified: Vec<PathBuf>,
    /// Directories already listed, with their sub-directories (so the walk can descend
    /// without listing them again).
    listed: HashMap<PathBuf, Vec<PathBuf>>,
}

impl Search {
    /// Lists `dir` once, verifies its candidates, and returns its sub-directories.
    fn examine_dir(&mut self, dir: &Path) -> Vec<PathBuf> {
        let mut warnings = Vec::new();
        let listing = list_dir(dir, &mut warnings);
        let subdirs = match listing {
            Ok(listing) => {
                self.outcome.dirs_probed += 1;
                self.outcome.files_examined += listing.files.len();
                for (path, name) in &listing.files {
                    let named_for_us =
                        parse_rollout_file_name(name).is_some_and(|parsed| parsed.id == self.id);
                    if named_for_us {
                        self.verify(path);
                    }
                }
                listing.subdirs
            }
            Err(warning) => {
                warnings.push(warning);
                Vec::new()
            }
        };
        for warning in warnings {
            tracing::warn!("rollout search for {}: {warning}", self.id);
        }
        self.listed.insert(dir.to_path_buf(), subdirs.clone());
        subdirs
    }

    fn verify(&mut self, path: &Path) {
        match read_session_meta_head(path) {
            Ok(head) if head.thread_id() == Some(self.id) => self.verified.push(path.to_path_buf()),
            Ok(head) => self
                .outcome
                .rejected
                .push((path.to_path_buf(), format!("mismatch:{}", head.id))),
            Err(err) => self
                .outcome
                .rejected
                .push((path.to_path_buf(), err.reason().to_string())),
        }
    }

    /// Records the winner among verified files, if any; returns whether there was one.
    fn settle(&mut self, via: SearchVia) -> bool {
        let best = self
            .verified
            .iter()
            // A plain rollout wins over its compressed twin; then the greatest path.
            .max_by(|a, b| {
                (!is_compressed_rollout(a))
                    .cmp(&!is_compressed_rollout(b))
                    .then_with(|| {
                        a.as_os_str()
                            .as_encoded_bytes()
                            .cmp(b.as_os_str().as_encoded_bytes())
                    })
            })
            .cloned();
        match best {
            Some(path) => {
                self.outcome.found = Some(path);
                self.outcome.via = Some(via);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::layout::{rollout_file_name, Root};
    use crate::rollout::writer::{rollout_path_for, write_rollout, RolloutSpec};
    use chrono::{TimeZone, Utc};

    fn v7_at(secs: i64, fill: u8) -> (Uuid, DateTime<Utc>) {
        let created = Utc.timestamp_opt(secs, 0).unwrap();
        let id = uuid::Builder::from_unix_timestamp_millis(
            u64::try_from(created.timestamp_millis()).unwrap(),
            &[fill; 10],
        )
        .into_uuid();
        (id, created)
    }

    /// 2026-01-27T12:00:00Z
    const BASE: i64 = 1_769_515_200;

    fn sessions(home: &tempfile::TempDir) -> PathBuf {
        Root::Active.dir(home.path())
    }

    /// Writes a valid rollout for `id` at an arbitrary path.
    fn write_at(path: &Path, id: Uuid, created: DateTime<Utc>) {
        let spec = RolloutSpec::new(id, created);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, crate::rollout::writer::render_rollout(&spec)).unwrap();
    }

    #[test]
    fn collect_is_recursive_and_skips_non_rollouts_and_symlinks() {
        let home = tempfile::tempdir().unwrap();
        let (a, ta) = v7_at(BASE, 1);
        let (b, tb) = v7_at(BASE - 86_400 * 40, 2);
        let pa = write_rollout(home.path(), &RolloutSpec::new(a, ta)).unwrap();
        let pb = write_rollout(home.path(), &RolloutSpec::new(b, tb)).unwrap();
        let root = sessions(&home);
        fs::write(root.join("notes.txt"), "x").unwrap();
        fs::write(root.join("rollout-x.zst"), "x").unwrap();
        // A compressed rollout is collected; a compressed twin of a plain one is not.
        let packed = root.join("rollout-y.jsonl.zst");
        fs::write(&packed, "x").unwrap();
        fs::write(format!("{}.zst", pb.display()), "x").unwrap();
        std::os::unix::fs::symlink(&pa, root.join("rollout-link.jsonl")).unwrap();
        std::os::unix::fs::symlink(pa.parent().unwrap(), root.join("linked-dir")).unwrap();

        let (files, warnings) = collect_rollout_files(&root);
        let mut expected = vec![pa, pb, packed];
        expected.sort();
        assert_eq!(files, expected);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn collect_of_missing_root_is_empty_and_unreadable_root_warns() {
        let home = tempfile::tempdir().unwrap();
        assert_eq!(
            collect_rollout_files(&home.path().join("missing")),
            (vec![], vec![])
        );
        let not_a_dir = home.path().join("file");
        fs::write(&not_a_dir, "x").unwrap();
        let (files, warnings) = collect_rollout_files(&not_a_dir);
        assert!(files.is_empty());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains(&not_a_dir.display().to_string()));
    }

    #[test]
    fn day_probe_finds_a_file() {
        let home = tempfile::tempdir().unwrap();
        let (id, created) = v7_at(BASE, 1);
        let mut spec = RolloutSpec::new(id, created);
        spec.utc_offset = chrono::FixedOffset::east_opt(13 * 3600).unwrap();
        let path = write_rollout(home.path(), &spec).unwrap();
        // Distractors elsewhere that a walk would have had to list.
        let (other, t) = v7_at(BASE - 86_400 * 100, 2);
        write_rollout(home.path(), &RolloutSpec::new(other, t)).unwrap();

        let out = find_rollout_by_id(&sessions(&home), id, false);
        assert_eq!(out.found, Some(path));
        assert_eq!(out.via, Some(SearchVia::DayProbe));
        assert_eq!(
            out.dirs_probed, 1,
            "only the next-day local directory exists"
        );
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn walk_finds_a_file_in_a_non_date_dir() {
        let home = tempfile::tempdir().unwrap();
        let (id, created) = v7_at(BASE, 1);
        let name = rollout_file_name(created.naive_utc(), id);
        let path = sessions(&home).join("imported/old").join(&name);
        write_at(&path, id, created);

        let out = find_rollout_by_id(&sessions(&home), id, false);
        assert_eq!(out.found, Some(path));
        assert_eq!(out.via, Some(SearchVia::Walk));
    }

    #[test]
    fn impostor_named_with_the_id_is_rejected_and_search_continues() {
        let home = tempfile::tempdir().unwrap();
        let (id, created) = v7_at(BASE, 1);
        let (other, _) = v7_at(BASE, 9);
        // Named for `id` in the probed day directory, but the head belongs to `other`.
        let impostor = rollout_path_for(home.path(), &RolloutSpec::new(id, created));
        write_at(&impostor, other, created);
        // The real one lives outside the dated layout.
        let real = sessions(&home)
            .join("moved")
            .join(rollout_file_name(created.naive_utc(), id));
        write_at(&real, id, created);

        let out = find_rollout_by_id(&sessions(&home), id, false);
        assert_eq!(out.found, Some(real));
        assert_eq!(out.via, Some(SearchVia::Walk));
        assert_eq!(out.rejected, vec![(impostor, format!("mismatch:{other}"))]);
    }

    #[test]
    fn unverifiable_candidate_is_rejected_with_head_reason() {
        let home = tempfile::tempdir().unwrap();
        let (id, created) = v7_at(BASE, 1);
        let empty = rollout_path_for(home.path(), &RolloutSpec::new(id, created));
        fs::create_dir_all(empty.parent().unwrap()).unwrap();
        fs::write(&empty, "").unwrap();

        let out = find_rollout_by_id(&sessions(&home), id, false);
        assert_eq!(out.found, None);
        assert_eq!(out.via, None);
        assert_eq!(out.rejected, vec![(empty, "empty".to_string())]);
    }

    #[test]
    fn gitignore_does_not_hide_rollouts() {
        let home = tempfile::tempdir().unwrap();
        let (id, created) = v7_at(BASE, 1);
        // Not UUIDv7-probed: force the walk by using a non-date directory.
        let path = sessions(&home)
            .join("x")
            .join(rollout_file_name(created.naive_utc(), id));
        write_at(&path, id, created);
        fs::write(sessions(&home).join(".gitignore"), "*.jsonl\n").unwrap();
        fs::write(home.path().join(".gitignore"), "sessions/\n").unwrap();

        let out = find_rollout_by_id(&sessions(&home), id, false);
        assert_eq!(out.found, Some(path.clone()));
        assert_eq!(collect_rollout_files(&sessions(&home)).0, vec![path]);
    }

    #[test]
    fn substring_and_prefix_names_never_match() {
        let home = tempfile::tempdir().unwrap();
        let (id, created) = v7_at(BASE, 1);
        let id_text = id.to_string();
        let dir = rollout_path_for(home.path(), &RolloutSpec::new(id, created))
            .parent()
            .unwrap()
            .to_path_buf();
        // Same first 8 chars (same millisecond), different thread.
        let (sibling, _) = v7_at(BASE, 2);
        assert_eq!(&sibling.to_string()[..8], &id_text[..8]);
        write_at(
            &dir.join(rollout_file_name(created.naive_utc(), sibling)),
            sibling,
            created,
        );
        // Names that merely contain or truncate the id.
        for name in [
            format!("rollout-2026-01-27T12-00-00-{}.jsonl", &id_text[..35]),
            format!("rollout-2026-01-27T12-00-00-{id_text}-copy.jsonl"),
            format!("rollout-2026-01-27T12-00-00-x{id_text}.jsonl"),
            format!("backup-{id_text}.jsonl"),
        ] {
            write_at(&dir.join(name), id, created);
        }

        let out = find_rollout_by_id(&sessions(&home), id, false);
        assert_eq!(out.found, None);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert!(out.files_examined >= 5);
    }

    #[test]
    fn two_verified_files_pick_the_greatest_path() {
        let home = tempfile::tempdir().unwrap();
        let (id, created) = v7_at(BASE, 1);
        let spec = RolloutSpec::new(id, created);
        let first = write_rollout(home.path(), &spec).unwrap();
        let mut shifted = spec.clone();
        shifted.utc_offset = chrono::FixedOffset::east_opt(14 * 3600).unwrap();
        let second = write_rollout(home.path(), &shifted).unwrap();
        assert!(second.as_os_str().as_encoded_bytes() > first.as_os_str().as_encoded_bytes());

        for _ in 0..3 {
            let out = find_rollout_by_id(&sessions(&home), id, false);
            assert_eq!(out.found.as_ref(), Some(&second));
            assert_eq!(out.via, Some(SearchVia::DayProbe));
        }
    }

    #[test]
    fn flat_archived_root_is_listed_first() {
        let home = tempfile::tempdir().unwrap();
        let (id, created) = v7_at(BASE, 1);
        let mut spec = RolloutSpec::new(id, created);
        spec.root = Root::Archived;
        let path = write_rollout(home.path(), &spec).unwrap();
        let (other, t) = v7_at(BASE - 3_600, 2);
        let mut other_spec = RolloutSpec::new(other, t);
        other_spec.root = Root::Archived;
        write_rollout(home.path(), &other_spec).unwrap();
        fs::create_dir_all(Root::Archived.dir(home.path()).join("nested")).unwrap();

        let out = find_rollout_by_id(&Root::Archived.dir(home.path()), id, true);
        assert_eq!(out.found, Some(path));
        assert_eq!(out.via, Some(SearchVia::Walk));
        assert_eq!(out.dirs_probed, 1, "the nested dir is never listed");
        assert_eq!(out.files_examined, 2);
    }

    #[test]
    fn non_v7_id_is_found_by_walk_and_missing_root_is_not_found() {
        let home = tempfile::tempdir().unwrap();
        let id = Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef);
        let created = Utc.timestamp_opt(BASE, 0).unwrap();
        let path = write_rollout(home.path(), &RolloutSpec::new(id, created)).unwrap();
        let out = find_rollout_by_id(&sessions(&home), id, false);
        assert_eq!(out.found, Some(path));
        assert_eq!(out.via, Some(SearchVia::Walk));

        let missing = find_rollout_by_id(&home.path().join("nope"), id, false);
        assert_eq!(missing, SearchOutcome::default());
    }

    #[test]
    fn walk_does_not_relist_probed_day_dirs() {
        let home = tempfile::tempdir().unwrap();
        let (id, created) = v7_at(BASE, 1);
        // A different thread in the probed day dir, and the target far away.
        let (other, _) = v7_at(BASE, 2);
        write_rollout(home.path(), &RolloutSpec::new(other, created)).unwrap();
        let far = sessions(&home)
            .join("2020/01/01")
            .join(rollout_file_name(created.naive_utc(), id));
        write_at(&far, id, created);

        let out = find_rollout_by_id(&sessions(&home), id, false);
        assert_eq!(out.found, Some(far));
        // root, 2026, 2026/01, 2026/01/27 (probed once), 2020, 2020/01, 2020/01/01.
        assert_eq!(out.dirs_probed, 7);
        assert_eq!(out.files_examined, 2);
    }
}
