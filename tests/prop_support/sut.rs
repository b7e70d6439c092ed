//! The system under test (`StateMachineTest`): a real home and DB driven by the
//! transitions, with the invariants checked as postconditions.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest_state_machine::StateMachineTest;
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
use statedb_harness::state::threads::SortKey;
use statedb_harness::state::StateDbHandle;
use statedb_harness::state_db::{try_init, StateDbConfig};
use statedb_harness::thread::Scope;
use statedb_harness::timing::Timings;
use statedb_harness::variant::Variant;

use super::*;

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

pub fn in_scope(root: Root, scope: Scope) -> bool {
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
            ..ListRequest::default()
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
