//! Recording a transition sequence as a scenario file (`recording_of`).

use std::collections::BTreeMap;
use std::time::Duration;

use proptest_state_machine::ReferenceStateMachine;

use statedb_harness::faults::{Fault, RootName, Unverifiable};
use statedb_harness::rollout::layout::Root;
use statedb_harness::scenario::model::HandleMode;
use statedb_harness::scenario::record::{RecordedOp, Recording};

use super::*;

/// How a slot's rollout comes into a recorded scenario's home.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// In the model's initial files: generated and indexed, like the machine's first init.
    Initial(Root),
    /// First written by transition `step` (1-based). Scenarios have no fault that writes a
    /// rollout, so it is generated up front; its row is deleted at once, as a freshly
    /// written rollout has none.
    WrittenLater { step: usize, root: Root },
    /// Never has a rollout but is named (looked up, or a row is pointed at it): generated,
    /// then its file and row are deleted, which is exactly the machine's state.
    Never,
}

impl Origin {
    fn root(self) -> Root {
        match self {
            Origin::Initial(root) | Origin::WrittenLater { root, .. } => root,
            Origin::Never => Root::Active,
        }
    }
}

/// Where a recorded scenario's DB row of a slot points (by the rollout it names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowPath {
    /// The file slot `.0` had under root `.1` (gone once it moves or is deleted).
    Rollout(usize, Root),
    /// A file under `sessions/odd/` that `unverifiable_row` created (it stays).
    Unverifiable,
    /// A path that never exists.
    Missing,
}

/// A recorded scenario's DB row of a slot, as far as the recording can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Absent,
    /// Perhaps indexed by a resumed backfill (which scans past its last checkpoint only).
    Maybe,
    /// Exists; where it points and its archived flag, when known.
    Exists {
        path: Option<RowPath>,
        archived: Option<bool>,
    },
}

/// The recorded scenario's own state while the sequence is mapped: its files, which differ
/// from the model where the mapping approximates, and its rows, which decide whether a row
/// fault fires and what a listing must return.
struct Shadow {
    alias: BTreeMap<usize, String>,
    files: BTreeMap<usize, FileState>,
    rows: BTreeMap<usize, Row>,
}

impl Shadow {
    fn alias(&self, slot: usize) -> String {
        self.alias[&slot].clone()
    }

    fn file(&self, slot: usize) -> FileState {
        self.files[&slot]
    }

    fn exists(&self, path: RowPath) -> bool {
        match path {
            RowPath::Rollout(slot, root) => {
                let f = self.file(slot);
                f.exists && f.root == root
            }
            RowPath::Unverifiable => true,
            RowPath::Missing => false,
        }
    }

    /// Whether a listing of `archived` must return every thread whose file is in that root:
    /// from the files (no handle) every such file must be readable; from the DB every such
    /// thread's row must carry that flag and point at an existing file.
    fn listing_is_complete(&self, archived: bool, from_db: bool) -> bool {
        self.files
            .iter()
            .filter(|(_, f)| f.exists && f.root.is_archived() == archived)
            .all(|(slot, f)| {
                if !from_db {
                    return f.content == Content::Full;
                }
                match self.rows[slot] {
                    Row::Exists {
                        path: Some(path),
                        archived: Some(flag),
                    } => flag == archived && self.exists(path),
                    _ => false,
                }
            })
    }
}

fn slots_of(t: &Transition) -> Vec<usize> {
    use Transition::*;
    match t {
        WriteRollout { slot, .. }
        | Archive { slot }
        | Unarchive { slot }
        | DeleteRow { slot }
        | DeleteFile { slot }
        | TruncateFile { slot }
        | Lookup { slot, .. } => vec![*slot],
        CorruptRow { slot, fault } => match fault {
            RowFault::OtherThread(other) => vec![*slot, *other],
            _ => vec![*slot],
        },
        HoldWriteLock | Reinit { .. } | ListAll { .. } => vec![],
    }
}

/// A stuck lease's remaining time: far past any recorded scenario's run.
const STUCK_LEASE: Duration = Duration::from_secs(600);
/// How long ago an expired lease's owner went silent.
const EXPIRED_LEASE_AGE: Duration = Duration::from_secs(3600);

/// Maps a machine sequence (from `initial`) to a [`Recording`] whose scenario replays it on
/// a generated home.
///
/// Slot `k` becomes an alias by the root its rollout starts in (`t<i>` for active, `a<j>`
/// for archived, in slot order). Slots first written by the sequence are generated up front
/// without a row, and slots that never have a rollout are generated and then deleted (file
/// and row). Archive/Unarchive become `move_rollout`; the row faults `stale_row`,
/// `missing_file_row`, `unverifiable_row` (empty) and `wrong_archived_flag`; `delete_row`,
/// `delete_file`, `empty_file` stay what they are; a held lock covers the next read; a
/// re-init is a `stuck_lease` or `expired_lease` fault and an `init` step. Slots `2n` and
/// `2n+1` tie on `updated_at` in the machine: when the sequence lists, their rows get one
/// timestamp (`same_timestamp`). Lookups expect the thread's own file when the scenario's
/// home has it readable in scope, then a DB hit (as the machine checks); listings expect
/// every thread of their root when the recorded rows say so. Whatever cannot be reproduced
/// is left out and said in a note in the scenario's description.
pub fn recording_of(sequence: &[Transition], initial: &Model, name: &str) -> Recording {
    use Transition::*;
    let mut origin: BTreeMap<usize, Origin> = initial
        .files
        .iter()
        .map(|(slot, f)| (*slot, Origin::Initial(f.root)))
        .collect();
    for (i, t) in sequence.iter().enumerate() {
        for slot in slots_of(t) {
            origin.entry(slot).or_insert(Origin::Never);
        }
        if let WriteRollout { slot, root } = t {
            if origin[slot] == Origin::Never {
                origin.insert(
                    *slot,
                    Origin::WrittenLater {
                        step: i + 1,
                        root: *root,
                    },
                );
            }
        }
    }
    let (mut active, mut archived) = (0, 0);
    let mut shadow = Shadow {
        alias: BTreeMap::new(),
        files: BTreeMap::new(),
        rows: BTreeMap::new(),
    };
    for (slot, o) in &origin {
        let root = o.root();
        let alias = if root.is_archived() {
            archived += 1;
            format!("a{}", archived - 1)
        } else {
            active += 1;
            format!("t{}", active - 1)
        };
        shadow.alias.insert(*slot, alias);
        let exists = *o != Origin::Never;
        let file = FileState {
            root,
            exists,
            content: Content::Full,
        };
        shadow.files.insert(*slot, file);
        let row = match o {
            Origin::Initial(_) => Row::Exists {
                path: Some(RowPath::Rollout(*slot, root)),
                archived: Some(root.is_archived()),
            },
            _ => Row::Absent,
        };
        shadow.rows.insert(*slot, row);
    }

    let mut ops = Vec::new();
    let names: Vec<String> = shadow
        .alias
        .iter()
        .map(|(slot, alias)| format!("slot {slot} is {alias}"))
        .collect();
    ops.push(RecordedOp::Note(names.join(", ")));
    for (slot, o) in &origin {
        let alias = shadow.alias(*slot);
        match o {
            Origin::Initial(_) => {}
            Origin::WrittenLater { step, .. } => {
                ops.push(RecordedOp::Note(format!(
                    "slot {slot} is first written by step {step}; no fault writes a rollout, so \
                     {alias}'s exists from the start (without a row, like a new rollout)"
                )));
                ops.push(RecordedOp::Fault(Fault::DeleteRow { thread: alias }));
            }
            Origin::Never => {
                ops.push(RecordedOp::Note(format!(
                    "slot {slot} never has a rollout: {alias}'s file and row are deleted first"
                )));
                ops.push(RecordedOp::Fault(Fault::DeleteRow {
                    thread: alias.clone(),
                }));
                ops.push(RecordedOp::Fault(Fault::DeleteFile { thread: alias }));
            }
        }
    }
    if sequence.iter().any(|t| matches!(t, ListAll { .. })) {
        let initial_slots: Vec<usize> = initial.files.keys().copied().collect();
        for pair in initial_slots.chunk_by(|a, b| a / 2 == b / 2) {
            if let [a, b] = pair {
                let threads = vec![shadow.alias(*a), shadow.alias(*b)];
                ops.push(RecordedOp::Note(format!(
                    "slots {a} and {b} tie on updated_at: {} and {} get one timestamp",
                    threads[0], threads[1]
                )));
                ops.push(RecordedOp::Fault(Fault::SameTimestamp { threads }));
            }
        }
    }

    let mut model = initial.clone();
    for (i, t) in sequence.iter().enumerate() {
        let step = i + 1;
        let left_out = |why: &str| RecordedOp::Note(format!("step {step} ({t:?}) {why}; left out"));
        let handle = if !model.has_handle {
            HandleMode::None
        } else if model.lock_armed {
            // A lookup starting up under the lock would go on without the DB; the machine's
            // process already has its handle.
            HandleMode::OpenOnly
        } else {
            HandleMode::Init
        };
        match t {
            WriteRollout { slot, .. } => {
                if !matches!(origin[slot], Origin::WrittenLater { step: s, .. } if s == step) {
                    ops.push(left_out("writes a rollout again: no fault writes one"));
                }
            }
            Archive { slot } | Unarchive { slot } => {
                let (from, to, name) = match t {
                    Archive { .. } => (Root::Active, Root::Archived, RootName::Archived),
                    _ => (Root::Archived, Root::Active, RootName::Active),
                };
                let f = shadow.file(*slot);
                if f.exists && f.root == from {
                    ops.push(RecordedOp::Fault(Fault::MoveRollout {
                        thread: shadow.alias(*slot),
                        to: name,
                    }));
                    shadow.files.get_mut(slot).expect("aliased").root = to;
                } else {
                    ops.push(left_out("moves a rollout this home does not have there"));
                }
            }
            DeleteFile { slot } => {
                if shadow.file(*slot).exists {
                    ops.push(RecordedOp::Fault(Fault::DeleteFile {
                        thread: shadow.alias(*slot),
                    }));
                    shadow.files.get_mut(slot).expect("aliased").exists = false;
                } else {
                    ops.push(left_out("deletes a rollout this home does not have"));
                }
            }
            TruncateFile { slot } => {
                if shadow.file(*slot).exists {
                    ops.push(RecordedOp::Fault(Fault::EmptyFile {
                        thread: shadow.alias(*slot),
                    }));
                    shadow.files.get_mut(slot).expect("aliased").content = Content::Empty;
                } else {
                    ops.push(left_out("truncates a rollout this home does not have"));
                }
            }
            CorruptRow { slot, fault } => match shadow.rows[slot] {
                Row::Exists { path, archived } => {
                    let thread = shadow.alias(*slot);
                    let (fault, path, archived) = match fault {
                        RowFault::OtherThread(other) => (
                            Fault::StaleRow {
                                thread,
                                points_to: shadow.alias(*other),
                            },
                            Some(RowPath::Rollout(*other, shadow.file(*other).root)),
                            archived,
                        ),
                        RowFault::MissingPath => (
                            Fault::MissingFileRow { thread },
                            Some(RowPath::Missing),
                            archived,
                        ),
                        RowFault::EmptyFile => (
                            Fault::UnverifiableRow {
                                thread,
                                content: Unverifiable::Empty,
                            },
                            Some(RowPath::Unverifiable),
                            archived,
                        ),
                        RowFault::FlipArchived => (
                            Fault::WrongArchivedFlag { thread },
                            path,
                            archived.map(|a| !a),
                        ),
                    };
                    ops.push(RecordedOp::Fault(fault));
                    shadow.rows.insert(*slot, Row::Exists { path, archived });
                }
                Row::Absent => ops.push(left_out("damages a row that does not exist (a no-op)")),
                Row::Maybe => ops.push(left_out(
                    "damages a row the resumed backfill may not have written",
                )),
            },
            DeleteRow { slot } => match shadow.rows[slot] {
                Row::Exists { .. } => {
                    ops.push(RecordedOp::Fault(Fault::DeleteRow {
                        thread: shadow.alias(*slot),
                    }));
                    shadow.rows.insert(*slot, Row::Absent);
                }
                Row::Absent => ops.push(left_out("deletes a row that does not exist (a no-op)")),
                Row::Maybe => ops.push(left_out(
                    "deletes a row the resumed backfill may not have written",
                )),
            },
            HoldWriteLock => ops.push(RecordedOp::HoldWriteLockDuringNext),
            Reinit {
                lease: Lease::Stuck,
            } => {
                ops.push(RecordedOp::Fault(Fault::StuckLease {
                    expires_in: STUCK_LEASE,
                }));
                ops.push(RecordedOp::Init {
                    expect_timeout: true,
                });
            }
            Reinit {
                lease: Lease::Expired,
            } => {
                ops.push(RecordedOp::Fault(Fault::ExpiredLease {
                    age: EXPIRED_LEASE_AGE,
                    checkpoint_after: None,
                }));
                ops.push(RecordedOp::Init {
                    expect_timeout: false,
                });
                // The taken-over backfill re-indexes readable rollouts past its checkpoint.
                for (slot, f) in &shadow.files {
                    if !(f.exists && f.content == Content::Full) {
                        continue;
                    }
                    let row = shadow.rows.get_mut(slot).expect("aliased");
                    let own = Row::Exists {
                        path: Some(RowPath::Rollout(*slot, f.root)),
                        archived: Some(f.root.is_archived()),
                    };
                    *row = match *row {
                        Row::Absent | Row::Maybe => Row::Maybe,
                        same if same == own => own,
                        Row::Exists { .. } => Row::Exists {
                            path: None,
                            archived: None,
                        },
                    };
                }
            }
            Lookup { slot, scope } => {
                let f = shadow.file(*slot);
                let found = f.exists && f.content == Content::Full && in_scope(f.root, *scope);
                let repairs = found && handle == HandleMode::Init;
                ops.push(RecordedOp::Lookup {
                    thread: shadow.alias(*slot),
                    scope: *scope,
                    handle,
                    expect_found: found.then_some(true),
                    then_db_hit: repairs,
                });
                if repairs {
                    // A DB hit on the own file keeps the row; anything else is repaired to
                    // the own file and its root's flag. A flag only matters to the DB
                    // answer when the scope filters by it.
                    let own = RowPath::Rollout(*slot, f.root);
                    let archived = match (scope.archived_filter(), shadow.rows[slot]) {
                        (Some(_), _) => Some(f.root.is_archived()),
                        (
                            None,
                            Row::Exists {
                                path: Some(p),
                                archived,
                            },
                        ) if p == own => archived,
                        (None, Row::Exists { path: Some(_), .. } | Row::Absent) => {
                            Some(f.root.is_archived())
                        }
                        (None, Row::Exists { path: None, .. } | Row::Maybe) => None,
                    };
                    shadow.rows.insert(
                        *slot,
                        Row::Exists {
                            path: Some(own),
                            archived,
                        },
                    );
                }
            }
            ListAll {
                archived,
                page_size,
            } => ops.push(RecordedOp::ListAll {
                archived: *archived,
                page_size: *page_size,
                handle,
                expect_all: shadow.listing_is_complete(*archived, handle != HandleMode::None),
            }),
        }
        model = ModelMachine::apply(model, t);
    }

    let rollouts: Vec<String> = initial
        .files
        .iter()
        .map(|(slot, f)| format!("slot {slot} {}", f.root.subdir()))
        .collect();
    let mut description = format!(
        "A sequence of the state-machine property test (tests/prop_state_machine.rs), \
         recorded as a scenario. Initial rollouts: {}. Transitions:",
        rollouts.join(", ")
    );
    for (i, t) in sequence.iter().enumerate() {
        description.push_str(&format!("\n{}. {t:?}", i + 1));
    }
    Recording {
        name: name.to_string(),
        description,
        active,
        archived,
        index_whole: false,
        ops,
    }
}
