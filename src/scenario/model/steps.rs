//! `[[step]]` and `[[check]]`: the controller's actions, what each must observe, and the
//! oracles run after the last step.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::expect::{Expect, RowExpect};
use super::is_default;
use super::workers::HandleMode;
use crate::entrypoints::EntrypointKind;
use crate::thread::Scope;
use crate::timing::humantime_serde_compat as hs;

/// `[[step]]`: one action of the controller, with what it must observe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Start a declared worker.
    Start { worker: String },
    /// Wait until a worker emits an event (`kind`, or `failpoint:<name>`).
    WaitFor {
        worker: String,
        event: String,
        #[serde(with = "hs::option", default)]
        timeout: Option<Duration>,
    },
    /// Release a paused failpoint of a worker.
    Release { worker: String, failpoint: String },
    /// SIGKILL a process worker.
    Kill { worker: String },
    /// Wait for a worker to end and check its outcome.
    Join {
        worker: String,
        #[serde(with = "hs::option", default)]
        timeout: Option<Duration>,
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// Apply a `[[fault]]` declared with `at = "step"`.
    Inject { fault: String },
    /// A deliberate wait (e.g. for a lease to expire); counted as declared waiting time.
    Sleep {
        #[serde(rename = "for", with = "hs")]
        duration: Duration,
    },
    /// Process startup in a fresh one-shot process context.
    Init {
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// A lookup in a fresh one-shot process context.
    Lookup {
        thread: String,
        #[serde(default, skip_serializing_if = "is_default")]
        scope: Scope,
        /// Ask about another (empty) codex home with this process's handle.
        #[serde(default, skip_serializing_if = "is_default")]
        ask_other_home: bool,
        #[serde(default, skip_serializing_if = "is_default")]
        handle: HandleMode,
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// Page through a listing in a fresh one-shot process context.
    List {
        #[serde(default)]
        archived: bool,
        #[serde(default)]
        page_size: Option<usize>,
        #[serde(default, skip_serializing_if = "is_default")]
        prune: bool,
        /// Ask about another (empty) codex home with this process's handle.
        #[serde(default, skip_serializing_if = "is_default")]
        ask_other_home: bool,
        /// Start from this cursor (any form a client may hold) instead of the first page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        /// Keep only these source kinds (Codex's `sourceKinds`; empty: all).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sources: Vec<String>,
        /// Keep only these model providers (Codex's `modelProviders`; empty: all).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        providers: Vec<String>,
        #[serde(default, skip_serializing_if = "is_default")]
        handle: HandleMode,
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// Archive (or with `unarchive`, unarchive) a thread in a fresh one-shot process context.
    Archive {
        thread: String,
        #[serde(default, skip_serializing_if = "is_default")]
        unarchive: bool,
        #[serde(default, skip_serializing_if = "is_default")]
        handle: HandleMode,
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// Run an entrypoint's wiring in a fresh one-shot process context.
    Entrypoint {
        entrypoint: EntrypointKind,
        #[serde(default, skip_serializing_if = "is_default")]
        expect: Expect,
    },
    /// Check the DB row of a thread directly.
    ExpectRow { thread: String, expect: RowExpect },
    /// Check the backfill state directly.
    ExpectBackfill {
        /// The raw status column: a fault may have stored any text there.
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        rows: Option<i64>,
    },
    /// Run an oracle now.
    Check { oracle: Oracle },
    /// Check which files the sqlite home holds (names relative to it): every `present`
    /// one is a file (unchanged, when the scenario declared it as a `[[home.file]]`), no
    /// `absent` one exists.
    ExpectFiles {
        #[serde(default)]
        present: Vec<String>,
        #[serde(default)]
        absent: Vec<String>,
    },
}

/// `[[check]]`: a global check after the last step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub oracle: Oracle,
}

/// Oracles comparing the DB with the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Oracle {
    /// Every verifiable rollout has a row pointing at it (or at another file of the same
    /// id), with the archived flag of its root; no row points at a missing or foreign file.
    IndexMatchesFiles,
    /// The backfill state is `complete`.
    BackfillComplete,
    /// No DB file exists (nothing was created).
    NoDbFile,
    /// Exactly one write marked the backfill complete (from the DB's own write log,
    /// `observe::writes`).
    OneBackfillRun,
    /// The bytes a DB-damaging fault left are kept in a `state_5.sqlite.corrupt-*` file
    /// next to the DB.
    DamagedDbKept,
}
