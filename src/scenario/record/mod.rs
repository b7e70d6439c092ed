//! Recordings: a small, harness-level vocabulary of operations — lookups, listings, faults,
//! a write lock held over the next read, startups, notes — and the writer that turns a
//! sequence of them into a valid scenario file.
//!
//! This is how a failing sequence found by a fuzzer or a property test becomes a permanent
//! scenario: the test maps its own transitions onto [`RecordedOp`]s (it knows its model;
//! this module knows the scenario format), and [`Recording::write`] puts the file where
//! someone can read it, replay it and commit it under `scenarios/`.
//!
//! The writer owns the translation rules: every fault is declared with `at = "step"` and
//! applied by an `inject` step in order; a held lock is a `lock_holder` process worker
//! started (and waited for) right before the next read and killed right after it; a
//! startup is an `init` step. The output is serialised from [`Scenario`] and parsed back
//! (with validation) before it is returned, so a recording never produces a file the
//! runner would reject.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod style;
mod writer;

pub use style::slug;

use style::catalog_style;
use writer::Writer;

use super::model::{CheckSpec, DbSetup, HandleMode, HomeSpec, Oracle, Scenario, Step, TimingSpec};
use crate::faults::Fault;
use crate::state::JournalMode;
use crate::thread::Scope;

/// How long a recorded lock holder holds its write transaction. It is killed right after
/// the read it blocks, so this only bounds a run whose controller died.
pub const LOCK_HOLD: Duration = Duration::from_secs(60);

/// One recorded operation, in the harness's terms (thread aliases of the scenario home).
#[derive(Debug, Clone, PartialEq)]
pub enum RecordedOp {
    /// A lookup in a fresh process. `expect_found`: `Some(true)` — the thread's own current
    /// file must come back; `Some(false)` — nothing may come back; `None` — only the
    /// always-checked invariants apply. `then_db_hit`: a second lookup right after must be
    /// a verified DB hit on the thread's own file (after a hit or a read-repair).
    Lookup {
        thread: String,
        scope: Scope,
        handle: HandleMode,
        expect_found: Option<bool>,
        then_db_hit: bool,
    },
    /// Every page of a listing. `expect_all`: every thread whose file is under that root
    /// is listed (exactly once is always checked).
    ListAll {
        archived: bool,
        page_size: usize,
        handle: HandleMode,
        expect_all: bool,
    },
    /// Damage applied at this point of the sequence.
    Fault(Fault),
    /// Another process holds the DB's write lock during the next lookup or listing.
    HoldWriteLockDuringNext,
    /// A process startup through the backfill gate; `expect_timeout` says whether it must
    /// time out waiting for another owner (else it must succeed).
    Init { expect_timeout: bool },
    /// Free text for the reader (an approximation, where the sequence came from); it goes
    /// into the scenario's description.
    Note(String),
}

/// A named sequence of operations on a generated home of `active` + `archived` threads
/// (aliased `t0..`, `a0..`, indexed before the first operation).
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub name: String,
    pub description: String,
    pub active: usize,
    pub archived: usize,
    /// The index is expected to match the files at the end (adds the
    /// `index_matches_files` oracle).
    pub index_whole: bool,
    pub ops: Vec<RecordedOp>,
}

/// Tag every recorded scenario carries.
pub const RECORDED_TAG: &str = "recorded";

impl Recording {
    pub fn new(name: impl Into<String>, active: usize, archived: usize) -> Self {
        Recording {
            name: name.into(),
            description: String::new(),
            active,
            archived,
            index_whole: false,
            ops: Vec::new(),
        }
    }

    /// The scenario this recording stands for.
    pub fn to_scenario(&self) -> Scenario {
        let mut w = Writer::default();
        for op in &self.ops {
            w.op(op);
        }
        if w.lock_armed {
            w.notes.push(
                "a write lock was armed after the last read; with no read to block it is left out"
                    .into(),
            );
        }
        let mut description = self.description.trim().to_string();
        if !w.notes.is_empty() {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str("Notes:");
            for n in &w.notes {
                description.push_str("\n- ");
                description.push_str(n);
            }
        }
        let mut scenario = Scenario {
            name: self.name.clone(),
            description,
            tags: vec![RECORDED_TAG.to_string()],
            timing_dependent: None,
            timing: TimingSpec::default(),
            home: HomeSpec {
                threads: self.active,
                archived: self.archived,
                db: DbSetup::Indexed,
                journal_mode: JournalMode::Wal,
                separate_sqlite_home: false,
                files: Vec::new(),
            },
            faults: std::mem::take(&mut w.faults),
            workers: std::mem::take(&mut w.workers),
            steps: std::mem::take(&mut w.steps),
            checks: if self.index_whole {
                vec![CheckSpec {
                    oracle: Oracle::IndexMatchesFiles,
                }]
            } else {
                Vec::new()
            },
        };
        // `inject` steps name the ids the runner derives (`kind`, or `kind#index` when a
        // kind repeats), known only now.
        let ids: Vec<String> = (0..scenario.faults.len())
            .map(|i| scenario.fault_id(i))
            .collect();
        for (step, fault) in w.injects {
            scenario.steps[step] = Step::Inject {
                fault: ids[fault].clone(),
            };
        }
        scenario
    }

    /// The scenario as TOML, checked: the text is parsed and validated like a file from
    /// `scenarios/` before it is returned.
    pub fn to_toml(&self) -> Result<String, String> {
        let scenario = self.to_scenario();
        let body = toml::to_string_pretty(&scenario)
            .map_err(|e| format!("cannot serialise the scenario: {e}"))?;
        let text = format!(
            "# Recorded by statedb-harness (scenario::record): {}\n\n{}",
            self.name,
            catalog_style(&body)?
        );
        let file = PathBuf::from(format!("{}.toml", slug(&self.name)));
        Scenario::parse(&file, &text).map_err(|e| format!("recorded scenario is invalid: {e}"))?;
        Ok(text)
    }

    /// Writes the scenario into `dir` (created if needed) as `<slug of the name>.toml`, or
    /// `<slug>_2.toml`, `_3`, ... when that name is taken: an existing file is never
    /// overwritten. Returns the path written.
    pub fn write(&self, dir: &Path) -> io::Result<PathBuf> {
        let text = self
            .to_toml()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        std::fs::create_dir_all(dir)?;
        let stem = slug(&self.name);
        for n in 1u32.. {
            let name = if n == 1 {
                format!("{stem}.toml")
            } else {
                format!("{stem}_{n}.toml")
            };
            let path = dir.join(name);
            match std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    file.write_all(text.as_bytes())?;
                    return Ok(path);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("u32 file suffixes ran out")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{RootName, Unverifiable};
    use crate::scenario::model::{Expect, FaultTime, Role, WorkerKind};

    fn t(alias: &str) -> String {
        alias.to_string()
    }

    /// A recording that uses every op kind (and the fault shapes recordings produce).
    fn every_op() -> Recording {
        let mut r = Recording::new("Every op: kind, once!", 3, 1);
        r.description = "All of them.".into();
        r.index_whole = true;
        r.ops = vec![
            RecordedOp::Note("t2 stands for a thread written later".into()),
            RecordedOp::Fault(Fault::SameTimestamp {
                threads: vec![t("t0"), t("t1")],
            }),
            RecordedOp::Fault(Fault::DeleteRow { thread: t("t2") }),
            RecordedOp::Lookup {
                thread: t("t0"),
                scope: Scope::Active,
                handle: HandleMode::Init,
                expect_found: Some(true),
                then_db_hit: true,
            },
            RecordedOp::Fault(Fault::StaleRow {
                thread: t("t0"),
                points_to: t("t1"),
            }),
            RecordedOp::Fault(Fault::UnverifiableRow {
                thread: t("t1"),
                content: Unverifiable::Empty,
            }),
            RecordedOp::Fault(Fault::MoveRollout {
                thread: t("a0"),
                to: RootName::Active,
            }),
            RecordedOp::HoldWriteLockDuringNext,
            RecordedOp::Fault(Fault::DeleteRow { thread: t("t1") }),
            RecordedOp::Lookup {
                thread: t("t2"),
                scope: Scope::Any,
                handle: HandleMode::OpenOnly,
                expect_found: Some(false),
                then_db_hit: false,
            },
            RecordedOp::Fault(Fault::StuckLease {
                expires_in: Duration::from_secs(600),
            }),
            RecordedOp::Init {
                expect_timeout: true,
            },
            RecordedOp::ListAll {
                archived: false,
                page_size: 1,
                handle: HandleMode::None,
                expect_all: true,
            },
            RecordedOp::HoldWriteLockDuringNext,
            RecordedOp::ListAll {
                archived: true,
                page_size: 3,
                handle: HandleMode::OpenOnly,
                expect_all: false,
            },
            RecordedOp::Fault(Fault::ExpiredLease {
                age: Duration::from_secs(3600),
                checkpoint_after: None,
            }),
            RecordedOp::Init {
                expect_timeout: false,
            },
            RecordedOp::Lookup {
                thread: t("a0"),
                scope: Scope::Archived,
                handle: HandleMode::Init,
                expect_found: None,
                then_db_hit: false,
            },
        ];
        r
    }

    fn kinds(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(crate::scenario::runner::step_label)
            .collect()
    }

    #[test]
    fn a_recording_of_every_op_kind_is_a_valid_scenario_that_round_trips() {
        let r = every_op();
        let text = r.to_toml().unwrap();
        let parsed = Scenario::parse(Path::new("every.toml"), &text).unwrap();
        let direct = r.to_scenario();
        assert_eq!(
            toml::to_string_pretty(&parsed).unwrap(),
            toml::to_string_pretty(&direct).unwrap(),
            "{text}"
        );
        assert_eq!((parsed.home.threads, parsed.home.archived), (3, 1));
        assert_eq!(parsed.tags, vec![RECORDED_TAG.to_string()]);
        assert!(parsed
            .description
            .starts_with("All of them.\n\nNotes:\n- t2 stands"));
        assert!(parsed.faults.iter().all(|f| f.at == FaultTime::Step));
        assert_eq!(
            kinds(&parsed.steps),
            [
                "inject same_timestamp",
                "inject delete_row#1",
                "lookup t0",
                "lookup t0",
                "inject stale_row",
                "inject unverifiable_row",
                "inject move_rollout",
                "inject delete_row#5",
                "start lock1",
                "wait_for lock1 lock_held",
                "lookup t2 any open-only",
                "kill lock1",
                "join lock1",
                "inject stuck_lease",
                "init",
                "list",
                "start lock2",
                "wait_for lock2 lock_held",
                "list",
                "kill lock2",
                "join lock2",
                "inject expired_lease",
                "init",
                "lookup a0 archived",
            ]
        );
        for w in &parsed.workers {
            assert_eq!(
                (w.kind, w.role, w.hold),
                (WorkerKind::Process, Role::LockHolder, Some(LOCK_HOLD))
            );
        }
        let expects: Vec<&Expect> = parsed
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Lookup { expect, .. } | Step::List { expect, .. } | Step::Init { expect } => {
                    Some(expect)
                }
                _ => None,
            })
            .collect();
        let show = |e: &Expect| toml::to_string(e).unwrap().replace('\n', " ");
        let shown: Vec<String> = expects.into_iter().map(show).collect();
        assert_eq!(
            shown,
            [
                "ok = true path = \"t0\" ",
                "ok = true source = \"db\" path = \"t0\" ",
                "ok = false path = \"none\" ",
                "ok = false timed_out = true ",
                "ok = true all_threads = true ",
                "ok = true ",
                "ok = true timed_out = false ",
                "",
            ]
        );
        assert_eq!(parsed.checks.len(), 1);
        assert_eq!(parsed.checks[0].oracle, Oracle::IndexMatchesFiles);
        assert!(
            text.contains("expect = { ok = true, path = \"t0\" }"),
            "{text}"
        );
        assert!(text.contains("threads = [\"t0\", \"t1\"]"), "{text}");
    }

    #[test]
    fn without_index_whole_there_is_no_oracle_and_a_dangling_lock_is_noted() {
        let mut r = Recording::new("x", 1, 0);
        r.ops = vec![RecordedOp::HoldWriteLockDuringNext];
        let sc = Scenario::parse(Path::new("x.toml"), &r.to_toml().unwrap()).unwrap();
        assert!(sc.checks.is_empty());
        assert!(sc.workers.is_empty() && sc.steps.is_empty());
        assert!(
            sc.description.contains("no read to block"),
            "{}",
            sc.description
        );
    }

    #[test]
    fn an_alias_the_home_lacks_is_rejected() {
        let mut r = Recording::new("x", 1, 0);
        r.ops = vec![RecordedOp::Fault(Fault::DeleteFile { thread: t("t1") })];
        let err = r.to_toml().unwrap_err();
        assert!(err.contains("unknown thread 't1'"), "{err}");
    }

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(
            slug("Lookup trusts DB path: t0 (seed 7)"),
            "lookup_trusts_db_path_t0_seed_7"
        );
        assert_eq!(slug("  --  "), "scenario");
        assert_eq!(slug("ÄÖ x"), "x");
        assert!(slug(&"a b ".repeat(100)).len() <= 80);
    }

    #[test]
    fn writing_never_overwrites_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let r = every_op();
        let first = r.write(dir.path()).unwrap();
        let second = r.write(&dir.path().join(".")).unwrap();
        assert_eq!(first.file_name().unwrap(), "every_op_kind_once.toml");
        assert_eq!(second.file_name().unwrap(), "every_op_kind_once_2.toml");
        let text = std::fs::read_to_string(&second).unwrap();
        assert_eq!(text, r.to_toml().unwrap());
        assert!(Scenario::load(&first).is_ok());
    }
}
