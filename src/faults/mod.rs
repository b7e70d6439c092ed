//! Fault injectors: damage done to a scenario's home from outside the code under test —
//! DB rows, rollout files, the DB file itself, the lease row, directory permissions.
//!
//! Faults are a closed enum (deserialised from scenario TOML); nothing runs arbitrary code.
//! Each injector reports whether it fired: one that finds nothing to damage fails, so a
//! scenario can never pass while silently not exercising its fault. Injectors only touch
//! paths inside the scenario's own home. Faults that live inside the code under test
//! (pauses, errors, deaths at named points) are failpoints (`crate::failpoints`); contention
//! and clock skew come from workers.

mod appear;
mod db;
mod files;
mod home;
mod pages;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use appear::Landing;
pub use home::{HomeModel, ThreadEntry};
pub use pages::PageDamage;

/// Content of an unverifiable rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unverifiable {
    /// Zero bytes.
    Empty,
    /// Lines that are not JSON.
    Garbled,
    /// Valid lines whose first record is a response item, not session metadata.
    ResponseItemFirst,
}

/// Which root a rollout moves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootName {
    Active,
    Archived,
}

/// One injectable fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The row of `thread` points at `points_to`'s rollout (another thread's JSONL).
    StaleRow { thread: String, points_to: String },
    /// The row of `thread` points at a path that does not exist.
    MissingFileRow { thread: String },
    /// The row of `thread` points at a new file whose head cannot be verified.
    UnverifiableRow {
        thread: String,
        content: Unverifiable,
    },
    /// The row of `thread` is deleted (its rollout stays).
    DeleteRow { thread: String },
    /// The row of `thread` carries the opposite archived flag.
    WrongArchivedFlag { thread: String },
    /// The rollout of `thread` moves to the other root; the DB is not told.
    MoveRollout { thread: String, to: RootName },
    /// A second valid file claims `thread`'s id (a copy in another directory).
    DuplicateIdFile { thread: String },
    /// The DB file is overwritten with bytes that are not a database.
    CorruptDb,
    /// The sqlite home becomes read-only (immutable for root); undone at teardown.
    ReadonlySqliteHome,
    /// `backfill_state.status` is set to a value no version writes.
    UnknownStatus { status: String },
    /// A live lease held by a foreign owner that never finishes (fresh heartbeat, far expiry).
    StuckLease {
        #[serde(with = "crate::timing::humantime_serde_compat")]
        expires_in: Duration,
    },
    /// A `running` lease whose owner went silent `age` ago, optionally with a checkpoint.
    ExpiredLease {
        #[serde(with = "crate::timing::humantime_serde_compat")]
        age: Duration,
        #[serde(default)]
        checkpoint_after: Option<String>,
    },
    /// The last line of `thread`'s rollout is cut in half (a torn append).
    TornLastLine { thread: String },
    /// The rollout of `thread` is deleted (the row stays).
    DeleteFile { thread: String },
    /// The rollout of `thread` is truncated to zero bytes.
    EmptyFile { thread: String },
    /// The first line of `thread`'s rollout is replaced by garbage.
    GarbleHead { thread: String },
    /// The rows of `threads` get the same created/updated millisecond (ties a cursor must
    /// not lose).
    SameTimestamp { threads: Vec<String> },
    /// The `backfill_state` singleton row is deleted.
    DeleteBackfillRow,
    /// A new thread's rollout appears with no row (restored from a backup, copied from
    /// another machine) next to `beside`'s, in a new day, or archived; alias `new<N>`.
    NewRollout {
        beside: String,
        #[serde(default)]
        into: Landing,
    },
    /// The row of `thread` gets a user-given name (`title`) that no rollout holds.
    DbOnlyTitle { thread: String, title: String },
    /// The DB stays a SQLite file, but the `threads` leaf page holding `thread`'s row (or,
    /// without `thread`, the schema page) is torn or overwritten.
    DamagePage {
        #[serde(default)]
        thread: Option<String>,
        #[serde(default)]
        how: PageDamage,
    },
    /// The home was copied with its DB from another home, which was then damaged: every
    /// row names the other home's (verifiable) copy of its rollout.
    CopiedHome,
}

impl Fault {
    /// The kind name as written in scenarios.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::StaleRow { .. } => "stale_row",
            Fault::MissingFileRow { .. } => "missing_file_row",
            Fault::UnverifiableRow { .. } => "unverifiable_row",
            Fault::DeleteRow { .. } => "delete_row",
            Fault::WrongArchivedFlag { .. } => "wrong_archived_flag",
            Fault::MoveRollout { .. } => "move_rollout",
            Fault::DuplicateIdFile { .. } => "duplicate_id_file",
            Fault::CorruptDb => "corrupt_db",
            Fault::ReadonlySqliteHome => "readonly_sqlite_home",
            Fault::UnknownStatus { .. } => "unknown_status",
            Fault::StuckLease { .. } => "stuck_lease",
            Fault::ExpiredLease { .. } => "expired_lease",
            Fault::TornLastLine { .. } => "torn_last_line",
            Fault::DeleteFile { .. } => "delete_file",
            Fault::EmptyFile { .. } => "empty_file",
            Fault::GarbleHead { .. } => "garble_head",
            Fault::SameTimestamp { .. } => "same_timestamp",
            Fault::DeleteBackfillRow => "delete_backfill_row",
            Fault::NewRollout { .. } => "new_rollout",
            Fault::DamagePage { .. } => "damage_page",
            Fault::DbOnlyTitle { .. } => "db_only_title",
            Fault::CopiedHome => "copied_home",
        }
    }

    /// Thread aliases the fault names (validated against the home before anything runs).
    pub fn thread_aliases(&self) -> Vec<&str> {
        match self {
            Fault::StaleRow { thread, points_to } => vec![thread, points_to],
            Fault::MissingFileRow { thread }
            | Fault::UnverifiableRow { thread, .. }
            | Fault::DeleteRow { thread }
            | Fault::WrongArchivedFlag { thread }
            | Fault::MoveRollout { thread, .. }
            | Fault::DuplicateIdFile { thread }
            | Fault::TornLastLine { thread }
            | Fault::DeleteFile { thread }
            | Fault::EmptyFile { thread }
            | Fault::GarbleHead { thread } => vec![thread],
            Fault::NewRollout { beside, .. } => vec![beside],
            Fault::DamagePage { thread, .. } => thread.iter().map(String::as_str).collect(),
            Fault::DbOnlyTitle { thread, .. } => vec![thread],
            Fault::SameTimestamp { threads } => threads.iter().map(String::as_str).collect(),
            _ => vec![],
        }
    }

    /// Whether the fault changes rollout bytes (so the "reference never changes a rollout"
    /// invariant re-baselines after it).
    pub fn touches_rollouts(&self) -> bool {
        matches!(
            self,
            Fault::UnverifiableRow { .. }
                | Fault::MoveRollout { .. }
                | Fault::DuplicateIdFile { .. }
                | Fault::TornLastLine { .. }
                | Fault::DeleteFile { .. }
                | Fault::EmptyFile { .. }
                | Fault::GarbleHead { .. }
                | Fault::NewRollout { .. }
                | Fault::CopiedHome
        )
    }

    /// Applies the fault. `Ok(what it did)` when it fired; `Err(why not)` otherwise.
    pub fn apply(&self, home: &mut HomeModel) -> Result<String, String> {
        match self {
            Fault::StaleRow { thread, points_to } => {
                let target = home.thread(points_to)?.path.clone();
                db::set_row_path(home, thread, &target)
            }
            Fault::MissingFileRow { thread } => {
                let id = home.thread(thread)?.id;
                let gone = home
                    .codex_home
                    .join("sessions/2099/01/01")
                    .join(format!("rollout-2099-01-01T00-00-00-{id}.jsonl"));
                db::set_row_path(home, thread, &gone)
            }
            Fault::UnverifiableRow { thread, content } => {
                let path = files::write_unverifiable(home, thread, *content)?;
                db::set_row_path(home, thread, &path)
            }
            Fault::DeleteRow { thread } => db::delete_row(home, thread),
            Fault::WrongArchivedFlag { thread } => db::flip_archived(home, thread),
            Fault::MoveRollout { thread, to } => files::move_rollout(home, thread, *to),
            Fault::DuplicateIdFile { thread } => files::duplicate(home, thread),
            Fault::CorruptDb => files::corrupt_db(home),
            Fault::ReadonlySqliteHome => files::make_readonly(home),
            Fault::UnknownStatus { status } => db::set_status(home, status),
            Fault::StuckLease { expires_in } => db::stuck_lease(home, *expires_in),
            Fault::ExpiredLease {
                age,
                checkpoint_after,
            } => db::expired_lease(home, *age, checkpoint_after.as_deref()),
            Fault::TornLastLine { thread } => files::torn_last_line(home, thread),
            Fault::DeleteFile { thread } => files::delete_file(home, thread),
            Fault::EmptyFile { thread } => files::empty_file(home, thread),
            Fault::GarbleHead { thread } => files::garble_head(home, thread),
            Fault::SameTimestamp { threads } => db::same_timestamp(home, threads),
            Fault::DeleteBackfillRow => db::delete_backfill_row(home),
            Fault::NewRollout { beside, into } => appear::new_rollout(home, beside, *into),
            Fault::DamagePage { thread, how } => pages::damage_page(home, thread.as_deref(), *how),
            Fault::DbOnlyTitle { thread, title } => db::set_title(home, thread, title),
            Fault::CopiedHome => files::copied_home(home),
        }
    }
}

/// Every injector kind with a one-line description (for `list-scenarios` and docs).
pub const FAULT_KINDS: &[(&str, &str)] = &[
    ("stale_row", "row points at another thread's rollout"),
    (
        "missing_file_row",
        "row points at a path that does not exist",
    ),
    (
        "unverifiable_row",
        "row points at an empty / garbled / response-item-first file",
    ),
    ("delete_row", "row deleted; the rollout stays"),
    (
        "wrong_archived_flag",
        "row carries the opposite archived flag",
    ),
    (
        "move_rollout",
        "rollout moved between sessions/ and archived_sessions/ after indexing",
    ),
    (
        "duplicate_id_file",
        "a second valid file claims the same id",
    ),
    (
        "corrupt_db",
        "state_5.sqlite overwritten with bytes that are not a database",
    ),
    (
        "readonly_sqlite_home",
        "sqlite home made read-only (immutable for root)",
    ),
    (
        "unknown_status",
        "backfill_state.status set to an unknown value",
    ),
    (
        "stuck_lease",
        "live lease of a foreign owner that never finishes",
    ),
    ("expired_lease", "running lease whose owner went silent"),
    ("torn_last_line", "last line of a rollout cut in half"),
    ("delete_file", "rollout deleted; the row stays"),
    ("empty_file", "rollout truncated to zero bytes"),
    ("garble_head", "first line of a rollout replaced by garbage"),
    (
        "same_timestamp",
        "rows share one created/updated millisecond (cursor ties)",
    ),
    (
        "delete_backfill_row",
        "the backfill_state singleton row deleted",
    ),
    (
        "new_rollout",
        "a new thread's rollout appears after indexing, with no row (restored/copied)",
    ),
    (
        "db_only_title",
        "a thread gets a user-given name stored only in the DB",
    ),
    (
        "damage_page",
        "a threads leaf page (or the schema page) torn or overwritten; still a SQLite file",
    ),
    (
        "copied_home",
        "home copied with its DB: rows name the (damaged) original home's files",
    ),
];
