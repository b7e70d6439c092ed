//! Deterministic fixture homes: a `codex_home` populated with realistic active and archived
//! rollouts plus a `session_index.jsonl`, all derived from a seed.
//!
//! Owns [`generate_home`]. Same seed and options give byte-identical files with identical
//! mtimes; nothing reads the clock or OS entropy, and nothing is written outside
//! `codex_home`. It never touches a state DB.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Offset, SecondsFormat, TimeDelta, Utc};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use uuid::Uuid;

use crate::rollout::layout::Root;
use crate::rollout::writer::{set_mtime, write_rollout, GitInfo, RolloutSpec};

/// File at the home root mapping thread ids to user-visible names.
pub const SESSION_INDEX_FILE: &str = "session_index.jsonl";

/// Spacing between consecutive threads' creation times, before jitter: 3h37m, so that even
/// a handful of threads spans several dated directories.
const THREAD_SPACING_MINUTES: i64 = 3 * 60 + 37;
/// Upper bound (exclusive) of the random extra age added to each thread.
const JITTER_MS: i64 = 600_000;

const CWDS: [&str; 5] = [
    "/home/dev/project",
    "/home/dev/src/statedb-harness",
    "/home/dev/work/api-server",
    "/Users/sam/code/webapp",
    "/home/dev/dotfiles",
];
const BRANCHES: [&str; 4] = ["main", "fix/flaky-list", "feature/state-db", "dev"];
const VERBS: [&str; 6] = ["fix", "refactor", "document", "speed-up", "test", "review"];
const ADJECTIVES: [&str; 6] = ["flaky", "slow", "broken", "legacy", "noisy", "unsafe"];
const NOUNS: [&str; 6] = ["list", "parser", "backfill", "lease", "cache", "migration"];
const FILES: [&str; 5] = ["list.rs", "lib.rs", "state.rs", "main.rs", "db.rs"];
const FOLLOW_UPS: [&str; 4] = [
    "Also add a regression test",
    "Run the full suite again",
    "Explain why it failed before",
    "Keep the public API unchanged",
];

/// How many threads to generate, from which seed, around which time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureOptions {
    /// Active rollouts (`sessions/YYYY/MM/DD/…`).
    pub threads: usize,
    /// Archived rollouts (`archived_sessions/…`), older than every active one.
    pub archived: usize,
    pub seed: u64,
    /// The newest thread is created shortly before this instant.
    pub base_time: DateTime<Utc>,
    /// UTC offset of the simulated machine (decides dated directories and file names).
    pub utc_offset: FixedOffset,
}

impl Default for FixtureOptions {
    /// 6 active and 2 archived threads, seed 0, base 2026-01-27T12:00:00Z, UTC.
    fn default() -> Self {
        FixtureOptions {
            threads: 6,
            archived: 2,
            seed: 0,
            base_time: DateTime::from_timestamp(1_769_515_200, 0).unwrap_or(DateTime::UNIX_EPOCH),
            utc_offset: Utc.fix(),
        }
    }
}

impl FixtureOptions {
    /// `threads` active and `archived` archived rollouts from `seed`, at the default base
    /// time unless so many threads, spaced hours apart going back from it, would reach
    /// before 1970 (about 170,000): then the base moves forward just enough.
    pub fn sized(threads: usize, archived: usize, seed: u64) -> Self {
        let mut opts = FixtureOptions {
            threads,
            archived,
            seed,
            ..FixtureOptions::default()
        };
        let span_ms = oldest_age_ms(opts.total());
        if opts.base_time.timestamp_millis() < span_ms {
            opts.base_time = DateTime::from_timestamp_millis(span_ms).unwrap_or(opts.base_time);
        }
        opts
    }

    fn total(&self) -> usize {
        self.threads.saturating_add(self.archived)
    }
}

/// The greatest age a thread of a home of `total` can have: its spacing plus the jitter.
fn oldest_age_ms(total: usize) -> i64 {
    i64::try_from(total)
        .unwrap_or(i64::MAX)
        .saturating_mul(THREAD_SPACING_MINUTES * 60_000)
        .saturating_add(JITTER_MS)
}

/// One generated thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureThread {
    pub id: Uuid,
    pub path: PathBuf,
    pub root: Root,
    /// Name recorded in `session_index.jsonl` (e.g. `fix-flaky-list-3`).
    pub name: String,
}

#[derive(Serialize)]
struct SessionIndexLine<'a> {
    id: Uuid,
    thread_name: &'a str,
    updated_at: String,
}

/// Populates `codex_home` with `opts.threads` active and `opts.archived` archived rollouts and
/// a `session_index.jsonl`, returning the threads newest first (active, then archived).
///
/// Thread `i` is created at `base_time − i×3h37m − jitter (< 10 min)`, with a UUIDv7 id
/// carrying that time and random bits from a `ChaCha8Rng` seeded with `opts.seed`.
pub fn generate_home(codex_home: &Path, opts: &FixtureOptions) -> io::Result<Vec<FixtureThread>> {
    // Checked before any file is written, so a home that cannot fit leaves nothing behind.
    if opts.base_time.timestamp_millis() < oldest_age_ms(opts.total()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} threads spaced {THREAD_SPACING_MINUTES} minutes apart do not fit between 1970 and the base time {}; use FixtureOptions::sized, which moves the base forward",
                opts.total(),
                opts.base_time.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        ));
    }
    fs::create_dir_all(codex_home)?;
    crate::state::creation::mark_harness_home(codex_home)?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let total = opts.total();
    let mut threads = Vec::with_capacity(total);
    let mut index = String::new();
    let mut newest_update = opts.base_time;

    for i in 0..total {
        let root = if i < opts.threads {
            Root::Active
        } else {
            Root::Archived
        };
        let (spec, name) = thread_spec(&mut rng, i, root, opts)?;
        let path = write_rollout(codex_home, &spec)?;
        let updated = spec.last_line_time();
        newest_update = newest_update.max(updated);

        let line = SessionIndexLine {
            id: spec.id,
            thread_name: &name,
            updated_at: updated.to_rfc3339_opts(SecondsFormat::Millis, true),
        };
        index.push_str(&serde_json::to_string(&line).map_err(io::Error::other)?);
        index.push('\n');
        threads.push(FixtureThread {
            id: spec.id,
            path,
            root,
            name,
        });
    }

    let index_path = codex_home.join(SESSION_INDEX_FILE);
    fs::write(&index_path, index)?;
    set_mtime(&index_path, newest_update)?;
    // Same seed, same bytes and mtimes: the marker too.
    set_mtime(
        &codex_home.join(crate::state::creation::HOME_MARKER),
        opts.base_time,
    )?;
    Ok(threads)
}

/// Draws thread `i`'s spec and name. The draw order is part of the fixture format: changing
/// it changes every generated home.
fn thread_spec(
    rng: &mut ChaCha8Rng,
    i: usize,
    root: Root,
    opts: &FixtureOptions,
) -> io::Result<(RolloutSpec, String)> {
    let steps = i64::try_from(i).map_err(io::Error::other)?;
    let age = TimeDelta::try_minutes(steps.saturating_mul(THREAD_SPACING_MINUTES))
        .and_then(|spacing| {
            spacing.checked_add(&TimeDelta::milliseconds(rng.gen_range(0..JITTER_MS)))
        })
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "fixture thread age overflows")
        })?;
    let created = opts
        .base_time
        .checked_sub_signed(age)
        .filter(|t| t.timestamp_millis() >= 0)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fixture thread {i} would be created before the Unix epoch"),
            )
        })?;
    let created_ms = u64::try_from(created.timestamp_millis()).map_err(io::Error::other)?;
    let mut random_bytes = [0u8; 10];
    rng.fill_bytes(&mut random_bytes);
    let id = uuid::Builder::from_unix_timestamp_millis(created_ms, &random_bytes).into_uuid();

    let mut spec = RolloutSpec::new(id, created);
    spec.utc_offset = opts.utc_offset;
    spec.root = root;
    spec.cwd = pick(rng, &CWDS).to_string();
    spec.model_provider = if rng.gen_bool(0.75) {
        "openai"
    } else {
        "azure"
    }
    .to_string();
    let (source, originator) = match rng.gen_range(0..3) {
        0 => ("cli", "codex_cli_rs"),
        1 => ("exec", "codex_exec"),
        _ => ("vscode", "codex_vscode"),
    };
    spec.source = source.to_string();
    spec.originator = originator.to_string();
    spec.cli_version = format!("0.{}.{}", rng.gen_range(90..100), rng.gen_range(0..4));
    if rng.gen_bool(0.8) {
        let mut sha = [0u8; 20];
        rng.fill_bytes(&mut sha);
        let project = spec.cwd.rsplit('/').next().unwrap_or("project");
        spec.git = Some(GitInfo {
            commit_hash: sha.iter().map(|b| format!("{b:02x}")).collect(),
            branch: pick(rng, &BRANCHES).to_string(),
            repository_url: format!("git@github.com:example/{project}.git"),
        });
    }
    if rng.gen_bool(0.1) {
        spec.memory_mode = Some("disabled".to_string());
    }

    let verb = pick(rng, &VERBS);
    let adjective = pick(rng, &ADJECTIVES);
    let noun = pick(rng, &NOUNS);
    let file = pick(rng, &FILES);
    let mut messages = vec![format!(
        "{} the {adjective} {noun} in {file}",
        capitalize(&verb.replace('-', " "))
    )];
    for _ in 0..rng.gen_range(0..3) {
        messages.push(pick(rng, &FOLLOW_UPS).to_string());
    }
    spec.user_messages = messages;
    Ok((spec, format!("{verb}-{adjective}-{noun}-{i}")))
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::head::read_session_meta_head;
    use crate::rollout::layout::{parse_rollout_file_name, uuid_v7_unix_ms};
    use crate::rollout::metadata::extract_metadata;
    use crate::rollout::search::{collect_rollout_files, find_rollout_by_id, SearchVia};
    use std::collections::{BTreeMap, HashSet};
    use std::time::SystemTime;

    /// Every regular file under `dir`, by relative path, with its bytes and mtime.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                if entry.file_type().unwrap().is_dir() {
                    stack.push(path);
                } else {
                    let mtime = entry.metadata().unwrap().modified().unwrap();
                    let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                    out.insert(rel, (fs::read(&path).unwrap(), mtime));
                }
            }
        }
        out
    }

    fn opts() -> FixtureOptions {
        FixtureOptions {
            threads: 12,
            archived: 4,
            seed: 42,
            ..FixtureOptions::default()
        }
    }

    #[test]
    fn a_home_too_large_for_the_default_base_is_refused_before_any_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let opts = FixtureOptions {
            threads: 200_000,
            ..FixtureOptions::default()
        };
        let err = generate_home(&home, &opts).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("FixtureOptions::sized"), "{err}");
        assert!(!home.exists(), "nothing may be written for a refused home");
    }

    #[test]
    fn sized_keeps_small_homes_and_fits_a_million_after_1970() {
        assert_eq!(FixtureOptions::sized(6, 2, 0), FixtureOptions::default());
        let opts = FixtureOptions::sized(1_000_000, 5, 9);
        assert!(opts.base_time > FixtureOptions::default().base_time);
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let (oldest, _) = thread_spec(&mut rng, opts.total() - 1, Root::Archived, &opts).unwrap();
        assert!(oldest.created.timestamp_millis() >= 0);
        // Just enough: one more spacing would not fit.
        let one_more = FixtureOptions {
            threads: 1_000_000 + 5 + 1,
            archived: 0,
            ..opts.clone()
        };
        assert!(one_more.base_time.timestamp_millis() < oldest_age_ms(one_more.total()));
    }

    #[test]
    fn default_base_time_is_2026_01_27_noon_utc() {
        let d = FixtureOptions::default();
        assert_eq!(d.base_time.to_rfc3339(), "2026-01-27T12:00:00+00:00");
        assert_eq!(d.utc_offset.local_minus_utc(), 0);
        assert_eq!(d.seed, 0);
    }

    #[test]
    fn same_seed_gives_identical_bytes_and_mtimes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ta = generate_home(a.path(), &opts()).unwrap();
        let tb = generate_home(b.path(), &opts()).unwrap();
        let sa = snapshot(a.path());
        assert_eq!(
            sa.len(),
            16 + 2,
            "rollouts, the session index and the home marker"
        );
        assert_eq!(sa, snapshot(b.path()));
        let ids =
            |t: &[FixtureThread]| t.iter().map(|t| (t.id, t.name.clone())).collect::<Vec<_>>();
        assert_eq!(ids(&ta), ids(&tb));
    }

    #[test]
    fn different_seeds_give_different_homes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ta = generate_home(a.path(), &opts()).unwrap();
        let tb = generate_home(b.path(), &FixtureOptions { seed: 43, ..opts() }).unwrap();
        assert_ne!(ta[0].id, tb[0].id);
    }

    #[test]
    fn threads_are_verifiable_v7_rollouts_in_the_right_roots() {
        let home = tempfile::tempdir().unwrap();
        let threads = generate_home(home.path(), &opts()).unwrap();
        assert_eq!(threads.len(), 16);
        assert_eq!(
            threads.iter().filter(|t| t.root == Root::Archived).count(),
            4
        );
        assert!(threads[12..].iter().all(|t| t.root == Root::Archived));
        let unique: HashSet<Uuid> = threads.iter().map(|t| t.id).collect();
        assert_eq!(unique.len(), threads.len());

        for t in &threads {
            assert!(t.path.starts_with(t.root.dir(home.path())));
            assert_eq!(
                read_session_meta_head(&t.path).unwrap().thread_id(),
                Some(t.id)
            );
            let name = t.path.file_name().unwrap().to_str().unwrap();
            let parsed = parse_rollout_file_name(name).unwrap();
            assert_eq!(parsed.id, t.id);
            // UTC fixture: the name's second is the id's embedded millisecond, truncated.
            assert_eq!(
                parsed.timestamp.and_utc().timestamp(),
                uuid_v7_unix_ms(&t.id).unwrap().div_euclid(1000)
            );
            let m = extract_metadata(&t.path, "openai").unwrap();
            assert_eq!(m.parse_errors, 0);
            assert!(m.metadata.has_user_event);
            assert!(["openai", "azure"].contains(&m.metadata.model_provider.as_str()));
            assert!(["cli", "exec", "vscode"].contains(&m.metadata.source.as_str()));

            let flat = t.root.is_archived();
            let found = find_rollout_by_id(&t.root.dir(home.path()), t.id, flat);
            assert_eq!(found.found.as_ref(), Some(&t.path));
            if !flat {
                assert_eq!(found.via, Some(SearchVia::DayProbe));
            }
        }
        let (active, warnings) = collect_rollout_files(&Root::Active.dir(home.path()));
        assert_eq!(active.len(), 12);
        let day_dirs: HashSet<&Path> = active.iter().filter_map(|p| p.parent()).collect();
        assert!(day_dirs.len() > 1, "threads spread over several days");
        assert!(warnings.is_empty());
    }

    #[test]
    fn session_index_has_one_line_per_thread() {
        let home = tempfile::tempdir().unwrap();
        let threads = generate_home(home.path(), &opts()).unwrap();
        let text = fs::read_to_string(home.path().join(SESSION_INDEX_FILE)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), threads.len());
        for (line, t) in lines.iter().zip(&threads) {
            assert_eq!(line["id"], t.id.to_string());
            assert_eq!(line["thread_name"], t.name.as_str());
            let updated = line["updated_at"].as_str().unwrap();
            assert!(DateTime::parse_from_rfc3339(updated).is_ok(), "{updated}");
        }
        let names: HashSet<&str> = threads.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), threads.len());
        assert!(threads[3].name.ends_with("-3"));
    }

    #[test]
    fn never_writes_outside_codex_home() {
        let outer = tempfile::tempdir().unwrap();
        let home = outer.path().join("nested/.codex");
        let threads = generate_home(&home, &opts()).unwrap();
        let top: Vec<_> = fs::read_dir(outer.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(top, vec![std::ffi::OsString::from("nested")]);
        let mut in_home: Vec<_> = fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        in_home.sort();
        assert_eq!(
            in_home,
            [
                ".statedb-harness-home",
                "archived_sessions",
                "session_index.jsonl",
                "sessions"
            ]
        );
        assert!(threads.iter().all(|t| t.path.starts_with(&home)));
    }

    #[test]
    fn utc_offset_moves_names_and_directories_to_local_time() {
        let home = tempfile::tempdir().unwrap();
        let offset = FixedOffset::east_opt(13 * 3600).unwrap();
        let threads = generate_home(
            home.path(),
            &FixtureOptions {
                threads: 1,
                archived: 0,
                utc_offset: offset,
                ..FixtureOptions::default()
            },
        )
        .unwrap();
        let ms = uuid_v7_unix_ms(&threads[0].id).unwrap();
        let local = DateTime::from_timestamp_millis(ms)
            .unwrap()
            .with_timezone(&offset);
        let expected_dir = home
            .path()
            .join(local.format("sessions/%Y/%m/%d").to_string());
        assert_eq!(threads[0].path.parent().unwrap(), expected_dir);
        assert!(threads[0]
            .path
            .to_string_lossy()
            .contains(&local.format("rollout-%Y-%m-%dT%H-%M-%S-").to_string()));
    }
}
