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
use statedb_harness::lookup::{
    find_thread_path_in, list_threads, ListRequest, LookupResult, LookupSource,
};
use statedb_harness::process::ProcessContext;
use statedb_harness::rollout::head::read_session_meta_head;
use statedb_harness::rollout::layout::Root;
use statedb_harness::rollout::writer::{render_rollout, rollout_path_for, write_rollout};
use statedb_harness::rollout::RolloutSpec;
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
            .execute(
                "UPDATE backfill_state SET status = 'running', owner_id = ?1, owner_pid = 1,
                    owner_host = 'elsewhere', claimed_at_ms = ?3, heartbeat_at_ms = ?3,
                    lease_expires_at_ms = ?2, updated_at = ?3 / 1000 WHERE id = 1",
                (owner, expires, beat),
            )
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
                let listed = list_all(&sut, archived, page_size);
                drop(blocker);
                check_listing(&sut, model, archived, &listed);
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

fn check_listing(sut: &Sut, model: &Model, archived: bool, listed: &[Uuid]) {
    let unique: BTreeSet<Uuid> = listed.iter().copied().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "a thread was listed twice: {listed:?}"
    );
    let expected: BTreeSet<Uuid> = match &sut.handle {
        // From the DB: every row of that archived state whose file exists.
        Some(handle) => handle
            .all_threads()
            .expect("read rows")
            .into_iter()
            .filter(|row| row.is_archived() == archived && row.rollout_path.is_file())
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
