//! The state machine behind `tests/prop_state_machine.rs`.
//!
//! - [`ModelMachine`] is the pure model (`ReferenceStateMachine`): which rollout file each
//!   thread slot has on disk (root, present or not, full or truncated), whether a write
//!   lock is armed for the next read, and whether the current process has a handle.
//! - [`StateDbMachine`] drives the real system (`StateMachineTest`): a temporary codex home,
//!   a real `state_5.sqlite`, and one `ProcessContext` + handle from `try_init`. It checks
//!   the invariants as postconditions of each lookup and listing, and after every
//!   transition compares the rollout files with the model.
//!
//! The implementation variant is a type parameter, so the same machine runs against the
//! reference and against seeded-bug variants.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use rusqlite::Connection;
use uuid::Uuid;

use crate::common::{
    assert_same_files, delete_row, files_under, flip_archived, outside_connection, set_row_path,
};
use statedb_harness::clock::real_now_ms;
use statedb_harness::faults::{Fault, RootName, Unverifiable};
use statedb_harness::lookup::{
    find_thread_path_in, list_threads, ListRequest, LookupResult, LookupSource,
};
use statedb_harness::process::ProcessContext;
use statedb_harness::rollout::head::read_session_meta_head;
use statedb_harness::rollout::layout::Root;
use statedb_harness::rollout::writer::{render_rollout, rollout_path_for, write_rollout};
use statedb_harness::rollout::RolloutSpec;
use statedb_harness::scenario::model::HandleMode;
use statedb_harness::scenario::record::{RecordedOp, Recording};
use statedb_harness::state::threads::SortKey;
use statedb_harness::state::StateDbHandle;
use statedb_harness::state_db::{try_init, StateDbConfig};
use statedb_harness::thread::Scope;
use statedb_harness::timing::Timings;
use statedb_harness::variant::Variant;

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

/// Which implementation the system under test runs.
pub trait VariantChoice {
    const VARIANT: Variant;
}

pub struct ReferenceImpl;
impl VariantChoice for ReferenceImpl {
    const VARIANT: Variant = Variant::Reference;
}

pub struct TrustsDbPath;
impl VariantChoice for TrustsDbPath {
    const VARIANT: Variant = Variant::LookupTrustsDbPath;
}

pub struct TimestampCursor;
impl VariantChoice for TimestampCursor {
    const VARIANT: Variant = Variant::ListTimestampCursor;
}

pub struct TrustsIndex;
impl VariantChoice for TrustsIndex {
    const VARIANT: Variant = Variant::ListTrustsIndex;
}

/// The system under test: one process on a temporary home.
pub struct Sut {
    // Field order is drop order: the handle closes before the home is deleted.
    handle: Option<StateDbHandle>,
    ctx: Arc<ProcessContext>,
    processes: u32,
    lock_armed: bool,
    cfg: StateDbConfig,
    home: tempfile::TempDir,
}

/// Timings short enough for thousands of cases: a stuck lease costs one 20ms wait, a
/// locked repair one 50ms busy timeout.
pub fn timings() -> Timings {
    Timings {
        lease: Duration::from_millis(500),
        poll_interval: Duration::from_millis(2),
        wait_timeout: Duration::from_millis(20),
        busy_timeout: Duration::from_millis(50),
        ..Timings::short()
    }
}

impl Sut {
    fn home(&self) -> &Path {
        self.home.path()
    }

    fn path_of(&self, slot: usize, root: Root) -> PathBuf {
        rollout_path_for(self.home(), &spec_of(slot, root))
    }

    fn new_process(&mut self, variant: Variant) -> Arc<ProcessContext> {
        self.processes += 1;
        ProcessContext::builder()
            .name(format!("p{}", self.processes))
            .variant(variant)
            .build()
    }

    fn outside(&self) -> Connection {
        outside_connection(self.home())
    }

    /// Takes the write lock from another connection if one is armed.
    fn blocker(&mut self) -> Option<Connection> {
        if !std::mem::take(&mut self.lock_armed) {
            return None;
        }
        let conn = self.outside();
        conn.execute_batch("BEGIN IMMEDIATE")
            .expect("take the write lock");
        Some(conn)
    }

    fn lookup(&self, slot: usize, scope: Scope) -> LookupResult {
        find_thread_path_in(
            &self.ctx,
            self.handle.as_ref(),
            self.home(),
            &id_of(slot).to_string(),
            scope,
        )
    }

    fn set_row_path(&self, slot: usize, path: &Path) {
        set_row_path(&self.outside(), id_of(slot), path);
    }

    fn set_lease(&self, lease: Lease) {
        let now = real_now_ms();
        let (owner, expires, beat) = match lease {
            Lease::Stuck => ("stuck-live-owner", now + 600_000, now),
            Lease::Expired => ("dead-owner", now - 60_000, now - 3_600_000),
        };
        self.outside()
            .execute_batch(&format!(
                "UPDATE backfill_state SET status = 'running', updated_at = {beat} / 1000 WHERE id = 1;
                 INSERT OR REPLACE INTO statedb_harness_lease (id, owner_id, owner_pid, owner_host,
                    claimed_at_ms, heartbeat_at_ms, lease_expires_at_ms, state_updated_at)
                 VALUES (1, '{owner}', 1, 'elsewhere', {beat}, {beat}, {expires}, {beat} / 1000);"
            ))
            .expect("set lease");
    }
}

fn in_scope(root: Root, scope: Scope) -> bool {
    scope
        .archived_filter()
        .is_none_or(|archived| archived == root.is_archived())
}

/// The system-under-test side of the machine, for implementation `V`.
pub struct StateDbMachine<V>(PhantomData<V>);

impl<V: VariantChoice> StateMachineTest for StateDbMachine<V> {
    type SystemUnderTest = Sut;
    type Reference = ModelMachine;

    fn init_test(model: &Model) -> Sut {
        let home = tempfile::tempdir().expect("tempdir");
        for (slot, file) in &model.files {
            write_rollout(home.path(), &spec_of(*slot, file.root)).expect("write rollout");
        }
        let decoy = empty_decoy_path(home.path());
        std::fs::create_dir_all(decoy.parent().expect("parent")).expect("decoy dir");
        std::fs::write(&decoy, b"").expect("decoy");
        let cfg = StateDbConfig::new(home.path(), timings());
        let mut sut = Sut {
            handle: None,
            ctx: ProcessContext::plain("unused"),
            processes: 0,
            lock_armed: false,
            cfg,
            home,
        };
        sut.ctx = sut.new_process(V::VARIANT);
        let report = try_init(&sut.ctx, &sut.cfg).expect("first init on a fresh home");
        sut.handle = Some(report.handle);
        sut
    }

    fn apply(mut sut: Sut, model: &Model, transition: Transition) -> Sut {
        use Transition::*;
        match transition {
            WriteRollout { slot, root } => {
                write_rollout(sut.home(), &spec_of(slot, root)).expect("write rollout");
            }
            Archive { slot } => move_file(
                &sut.path_of(slot, Root::Active),
                &sut.path_of(slot, Root::Archived),
            ),
            Unarchive { slot } => move_file(
                &sut.path_of(slot, Root::Archived),
                &sut.path_of(slot, Root::Active),
            ),
            DeleteFile { slot } => {
                let root = model.files[&slot].root;
                std::fs::remove_file(sut.path_of(slot, root)).expect("delete file");
            }
            TruncateFile { slot } => {
                let root = model.files[&slot].root;
                std::fs::File::options()
                    .write(true)
                    .open(sut.path_of(slot, root))
                    .and_then(|f| f.set_len(0))
                    .expect("truncate file");
            }
            CorruptRow { slot, fault } => match fault {
                RowFault::OtherThread(other) => {
                    let root = model.files.get(&other).map_or(Root::Active, |f| f.root);
                    sut.set_row_path(slot, &sut.path_of(other, root));
                }
                RowFault::MissingPath => {
                    sut.set_row_path(slot, &sut.home().join("sessions/2099/01/01/gone.jsonl"))
                }
                RowFault::EmptyFile => sut.set_row_path(slot, &empty_decoy_path(sut.home())),
                RowFault::FlipArchived => {
                    flip_archived(&sut.outside(), id_of(slot));
                }
            },
            DeleteRow { slot } => {
                delete_row(&sut.outside(), id_of(slot));
            }
            HoldWriteLock => sut.lock_armed = true,
            Reinit { lease } => {
                sut.set_lease(lease);
                // The old process exits; a new one starts with its own context.
                sut.handle = None;
                sut.ctx = sut.new_process(V::VARIANT);
                let outcome = try_init(&sut.ctx, &sut.cfg);
                match (lease, outcome) {
                    (Lease::Stuck, Err(err)) => assert!(
                        err.is_timeout(),
                        "a stuck live lease must end in the wait timeout, got: {err}"
                    ),
                    (Lease::Stuck, Ok(_)) => panic!("a live owner's lease was taken over"),
                    (Lease::Expired, Ok(report)) => {
                        assert!(report.backfill.ran, "an expired lease must be taken over");
                        sut.handle = Some(report.handle);
                    }
                    (Lease::Expired, Err(err)) => {
                        panic!("init failed although the lease had expired: {err}")
                    }
                }
            }
            Lookup { slot, scope } => {
                let blocker = sut.blocker();
                let locked = blocker.is_some();
                let result = sut.lookup(slot, scope);
                drop(blocker);
                check_lookup(&sut, model, slot, scope, &result, locked);
            }
            ListAll {
                archived,
                page_size,
            } => {
                let blocker = sut.blocker();
                let locked = blocker.is_some();
                let unrowed = unrowed_rollouts(&sut, model, archived);
                let listed = list_all(&sut, archived, page_size);
                drop(blocker);
                check_listing(&sut, model, archived, &listed);
                // Files added behind the DB's back are listed (unless the reconcile's
                // write could not get the lock).
                if !locked {
                    let missing: Vec<_> =
                        unrowed.iter().filter(|id| !listed.contains(id)).collect();
                    assert!(
                        missing.is_empty(),
                        "listing (archived={archived}) skipped rollouts on disk that had no row: {missing:?} (listed {listed:?})"
                    );
                }
            }
        }
        assert_eq!(sut.handle.is_some(), model.has_handle, "handle presence");
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        check_files_match_model(sut, model);
    }
}

fn move_file(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("parent")).expect("target dir");
    std::fs::rename(from, to).expect("move rollout");
}

fn check_lookup(
    sut: &Sut,
    model: &Model,
    slot: usize,
    scope: Scope,
    r: &LookupResult,
    locked: bool,
) {
    let id = id_of(slot);
    // 1. A returned path belongs to the requested thread (the unverified last resort aside).
    if let Some(path) = &r.path {
        if r.source != Some(LookupSource::UnverifiedDb) {
            let head = read_session_meta_head(path).map(|h| h.id);
            assert_eq!(
                head.as_deref().ok(),
                Some(id.to_string().as_str()),
                "lookup of slot {slot} ({scope:?}) returned {} whose head is {head:?}: {r:?}",
                path.display()
            );
        }
    }
    // 2. A non-empty rollout in the looked-up scope is found, at its one location.
    if let Some(file) = model.files.get(&slot) {
        if file.exists && file.content == Content::Full && in_scope(file.root, scope) {
            let expected = sut.path_of(slot, file.root);
            assert_eq!(
                r.path.as_deref(),
                Some(expected.as_path()),
                "slot {slot} has a rollout in scope {scope:?} but the lookup said: {r:?}"
            );
            assert!(
                matches!(r.source, Some(LookupSource::Db | LookupSource::Filesystem)),
                "slot {slot}: a verifiable rollout came back unverified: {r:?}"
            );
        }
    }
    if sut.handle.is_none() {
        return;
    }
    // 3. With a handle and no lock, a filesystem hit is read-repaired.
    if r.source == Some(LookupSource::Filesystem) && !locked {
        assert!(
            r.repaired,
            "slot {slot}: filesystem hit was not repaired: {r:?}"
        );
    }
    // 4. After a repair or a verified hit, the next lookup is a DB hit on the same path.
    if r.repaired || r.source == Some(LookupSource::Db) {
        let again = sut.lookup(slot, scope);
        assert_eq!(
            (again.source, &again.path),
            (Some(LookupSource::Db), &r.path),
            "slot {slot}: the lookup after {r:?} was not a DB hit: {again:?}"
        );
    }
}

/// Every page of a listing, as ids (the pages themselves are checked on the way).
fn list_all(sut: &Sut, archived: bool, page_size: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut cursor = None;
    // Bound the walk so a cursor that never advances fails instead of hanging.
    for _ in 0..=(2 * SLOTS + 2) {
        let req = ListRequest {
            archived,
            page_size,
            cursor: cursor.take(),
            sort: SortKey::Updated,
            prune: false,
        };
        let page = list_threads(sut.handle.as_ref(), sut.home(), &req).expect("list page");
        assert!(
            page.items.len() <= page_size,
            "page larger than asked: {page:?}"
        );
        ids.extend(page.items.iter().map(|i| i.thread_id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
    panic!("listing did not end after {} pages: {ids:?}", 2 * SLOTS + 2);
}

/// Readable rollouts of the listed root whose thread has no row at all: what a listing
/// with a handle must add to the index and show.
fn unrowed_rollouts(sut: &Sut, model: &Model, archived: bool) -> Vec<Uuid> {
    let Some(handle) = &sut.handle else {
        return Vec::new();
    };
    let rows: BTreeSet<Uuid> = handle
        .all_threads()
        .expect("read rows")
        .into_iter()
        .map(|r| r.id)
        .collect();
    model
        .files
        .iter()
        .filter(|(_, f)| f.exists && f.content == Content::Full && f.root.is_archived() == archived)
        .map(|(slot, _)| id_of(*slot))
        .filter(|id| !rows.contains(id))
        .collect()
}

fn check_listing(sut: &Sut, model: &Model, archived: bool, listed: &[Uuid]) {
    let unique: BTreeSet<Uuid> = listed.iter().copied().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "a thread was listed twice: {listed:?}"
    );
    let expected: BTreeSet<Uuid> = match &sut.handle {
        // From the DB: every row of that archived state whose file exists in the scope's
        // root and is not another thread's (by its head).
        Some(handle) => handle
            .all_threads()
            .expect("read rows")
            .into_iter()
            .filter(|row| {
                let root = if archived {
                    Root::Archived
                } else {
                    Root::Active
                };
                row.is_archived() == archived
                    && row.rollout_path.is_file()
                    && row.rollout_path.starts_with(root.dir(sut.home()))
                    && !matches!(read_session_meta_head(&row.rollout_path),
                        Ok(h) if h.thread_id().is_some_and(|t| t != row.id))
            })
            .map(|row| row.id)
            .collect(),
        // From the files: every readable rollout in that root.
        None => model
            .files
            .iter()
            .filter(|(_, f)| {
                f.exists && f.content == Content::Full && f.root.is_archived() == archived
            })
            .map(|(slot, _)| id_of(*slot))
            .collect(),
    };
    assert_eq!(
        unique, expected,
        "listing (archived={archived}) skipped or invented threads"
    );
}

/// Every file under the two roots equals the model: the code under test never creates,
/// changes or removes a rollout.
fn check_files_match_model(sut: &Sut, model: &Model) {
    let relative = |path: PathBuf| {
        path.strip_prefix(sut.home())
            .expect("in home")
            .to_path_buf()
    };
    let mut expected: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    expected.insert(relative(empty_decoy_path(sut.home())), Vec::new());
    for (slot, file) in model.files.iter().filter(|(_, f)| f.exists) {
        let spec = spec_of(*slot, file.root);
        let bytes = match file.content {
            Content::Full => render_rollout(&spec).into_bytes(),
            Content::Empty => Vec::new(),
        };
        expected.insert(relative(rollout_path_for(sut.home(), &spec)), bytes);
    }
    let actual: BTreeMap<PathBuf, Vec<u8>> = files_under(sut.home())
        .into_iter()
        .filter(|(path, _)| Root::ALL.iter().any(|root| path.starts_with(root.subdir())))
        .collect();
    assert_same_files(&actual, &expected, "rollout files on disk vs the model");
}

// ---------------------------------------------------------------------------------------
// Recording a sequence as a scenario
// ---------------------------------------------------------------------------------------

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
