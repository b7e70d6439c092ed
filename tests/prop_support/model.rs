//! The pure model (`ReferenceStateMachine`): thread slots and their files, row faults,
//! leases, the transitions and their strategies and preconditions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::DateTime;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use proptest_state_machine::ReferenceStateMachine;
use uuid::Uuid;

use statedb_harness::rollout::layout::Root;
use statedb_harness::rollout::RolloutSpec;
use statedb_harness::thread::Scope;

/// Thread slots a run can use. Slots are fixed identities (see [`spec_of`]).
pub const SLOTS: usize = 5;
/// 2026-01-27T12:00:00.123Z, the creation time of slots 0 and 1.
const BASE_MS: i64 = 1_769_515_200_123;
/// Creation times step back 9h per pair of slots, so the dated directories differ.
const PAIR_STEP_MS: i64 = 9 * 3600 * 1000;

/// The rollout of thread slot `slot` under `root`. Slots `2n` and `2n+1` are created at the
/// same instant with the same number of lines, so their `updated_at` ties and listings must
/// order them by id.
pub fn spec_of(slot: usize, root: Root) -> RolloutSpec {
    let created_ms = BASE_MS - (slot / 2) as i64 * PAIR_STEP_MS;
    let created = DateTime::from_timestamp_millis(created_ms).expect("valid time");
    let id = uuid::Builder::from_unix_timestamp_millis(created_ms as u64, &[slot as u8 + 1; 10])
        .into_uuid();
    let mut spec = RolloutSpec::new(id, created);
    spec.root = root;
    spec.user_messages = vec![format!("Task number {slot}")];
    spec
}

pub fn id_of(slot: usize) -> Uuid {
    spec_of(slot, Root::Active).id
}

/// An empty rollout-named file that belongs to no slot: a row can be pointed at it.
pub fn empty_decoy_path(home: &Path) -> PathBuf {
    home.join("sessions/2026/01/01/rollout-2026-01-01T00-00-00-019b7700-0000-7000-8000-00000000dec0.jsonl")
}

/// Whether a slot's file holds the writer's bytes or was truncated to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Full,
    Empty,
}

/// One slot's rollout file as the model knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    pub root: Root,
    pub exists: bool,
    pub content: Content,
}

/// The model: files per slot, plus the two facts about the process that change outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub files: BTreeMap<usize, FileState>,
    /// A blocker will hold the write lock during the next lookup or listing.
    pub lock_armed: bool,
    /// The current process has a handle (false after a re-init against a stuck lease).
    pub has_handle: bool,
}

impl Model {
    fn present(&self, pred: impl Fn(&FileState) -> bool) -> Vec<usize> {
        self.files
            .iter()
            .filter(|(_, f)| f.exists && pred(f))
            .map(|(slot, _)| *slot)
            .collect()
    }

    fn has_file(&self, slot: usize) -> bool {
        self.files.get(&slot).is_some_and(|f| f.exists)
    }
}

/// Where a corrupted row is made to point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFault {
    /// At the current path of another slot's rollout.
    OtherThread(usize),
    /// At a path that does not exist.
    MissingPath,
    /// At the empty decoy rollout.
    EmptyFile,
    /// Flip `archived` (the path stays).
    FlipArchived,
}

/// The lease a re-init finds in `backfill_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// `running`, owned by a live worker whose lease runs for minutes: never stolen.
    Stuck,
    /// `running`, owned by a dead worker whose lease ran out: taken over.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    WriteRollout { slot: usize, root: Root },
    Archive { slot: usize },
    Unarchive { slot: usize },
    CorruptRow { slot: usize, fault: RowFault },
    DeleteRow { slot: usize },
    DeleteFile { slot: usize },
    TruncateFile { slot: usize },
    HoldWriteLock,
    Reinit { lease: Lease },
    Lookup { slot: usize, scope: Scope },
    ListAll { archived: bool, page_size: usize },
}

/// The reference state machine (pure model).
pub struct ModelMachine;

fn any_slot() -> impl Strategy<Value = usize> {
    0..SLOTS
}

fn any_scope() -> impl Strategy<Value = Scope> {
    prop_oneof![Just(Scope::Active), Just(Scope::Archived), Just(Scope::Any)]
}

fn any_root() -> impl Strategy<Value = Root> {
    prop_oneof![3 => Just(Root::Active), 1 => Just(Root::Archived)]
}

impl ReferenceStateMachine for ModelMachine {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        prop::collection::vec(any_root(), 1..=3)
            .prop_map(|roots| Model {
                files: roots
                    .into_iter()
                    .enumerate()
                    .map(|(slot, root)| {
                        let file = FileState {
                            root,
                            exists: true,
                            content: Content::Full,
                        };
                        (slot, file)
                    })
                    .collect(),
                lock_armed: false,
                has_handle: true,
            })
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Transition> {
        use Transition::*;
        let mut options: Vec<(u32, BoxedStrategy<Transition>)> = Vec::new();
        let absent: Vec<usize> = (0..SLOTS).filter(|s| !state.has_file(*s)).collect();
        if !absent.is_empty() {
            let write =
                (select(absent), any_root()).prop_map(|(slot, root)| WriteRollout { slot, root });
            options.push((3, write.boxed()));
        }
        let active = state.present(|f| f.root == Root::Active);
        if !active.is_empty() {
            options.push((2, select(active).prop_map(|slot| Archive { slot }).boxed()));
        }
        let archived = state.present(|f| f.root == Root::Archived);
        if !archived.is_empty() {
            options.push((
                2,
                select(archived).prop_map(|slot| Unarchive { slot }).boxed(),
            ));
        }
        let present = state.present(|_| true);
        if !present.is_empty() {
            options.push((
                1,
                select(present).prop_map(|slot| DeleteFile { slot }).boxed(),
            ));
        }
        let full = state.present(|f| f.content == Content::Full);
        if !full.is_empty() {
            options.push((
                1,
                select(full).prop_map(|slot| TruncateFile { slot }).boxed(),
            ));
        }
        // Faults and lookups mostly aim at slots that have a rollout (else they rarely meet).
        let known: Vec<usize> = state.files.keys().copied().collect();
        let slot = || prop_oneof![4 => select(known.clone()), 1 => any_slot()];
        let fault = prop_oneof![
            2 => slot().prop_map(RowFault::OtherThread),
            1 => Just(RowFault::MissingPath),
            1 => Just(RowFault::EmptyFile),
            1 => Just(RowFault::FlipArchived),
        ];
        options.push((
            4,
            (slot(), fault)
                .prop_filter("a row points at another thread", |(slot, fault)| {
                    *fault != RowFault::OtherThread(*slot)
                })
                .prop_map(|(slot, fault)| CorruptRow { slot, fault })
                .boxed(),
        ));
        options.push((1, slot().prop_map(|slot| DeleteRow { slot }).boxed()));
        if !state.lock_armed {
            options.push((1, Just(HoldWriteLock).boxed()));
        }
        options.push((
            1,
            prop_oneof![Just(Lease::Stuck), Just(Lease::Expired)]
                .prop_map(|lease| Reinit { lease })
                .boxed(),
        ));
        options.push((
            8,
            (slot(), any_scope())
                .prop_map(|(slot, scope)| Lookup { slot, scope })
                .boxed(),
        ));
        options.push((
            2,
            (any::<bool>(), 1..=4usize)
                .prop_map(|(archived, page_size)| ListAll {
                    archived,
                    page_size,
                })
                .boxed(),
        ));
        Union::new_weighted(options).boxed()
    }

    fn preconditions(state: &Model, transition: &Transition) -> bool {
        use Transition::*;
        let file = |slot: &usize| state.files.get(slot).filter(|f| f.exists);
        match transition {
            WriteRollout { slot, .. } => !state.has_file(*slot),
            Archive { slot } => file(slot).is_some_and(|f| f.root == Root::Active),
            Unarchive { slot } => file(slot).is_some_and(|f| f.root == Root::Archived),
            DeleteFile { slot } => file(slot).is_some(),
            TruncateFile { slot } => file(slot).is_some_and(|f| f.content == Content::Full),
            CorruptRow { slot, fault } => *fault != RowFault::OtherThread(*slot),
            HoldWriteLock => !state.lock_armed,
            DeleteRow { .. } | Reinit { .. } | Lookup { .. } | ListAll { .. } => true,
        }
    }

    fn apply(mut state: Model, transition: &Transition) -> Model {
        use Transition::*;
        match transition {
            WriteRollout { slot, root } => {
                let file = FileState {
                    root: *root,
                    exists: true,
                    content: Content::Full,
                };
                state.files.insert(*slot, file);
            }
            Archive { slot } => {
                state.files.get_mut(slot).expect("precondition").root = Root::Archived
            }
            Unarchive { slot } => {
                state.files.get_mut(slot).expect("precondition").root = Root::Active
            }
            DeleteFile { slot } => state.files.get_mut(slot).expect("precondition").exists = false,
            TruncateFile { slot } => {
                state.files.get_mut(slot).expect("precondition").content = Content::Empty
            }
            HoldWriteLock => state.lock_armed = true,
            Lookup { .. } | ListAll { .. } => state.lock_armed = false,
            Reinit { lease } => state.has_handle = *lease == Lease::Expired,
            // The model holds the files only; rows are the system's business.
            CorruptRow { .. } | DeleteRow { .. } => {}
        }
        state
    }
}
