//! `StateRuntime`: the open state DB of one process, and `StateDbHandle`, the cheap shared
//! reference to it that entrypoints pass to every consumer.
//!
//! Opening registers the handle with the `ProcessContext` (a second open of the same file
//! in one process is refused). Connections get Codex's settings: WAL (or DELETE),
//! `synchronous = NORMAL`, a busy timeout, cached prepared statements. Every write
//! transaction begins IMMEDIATE, so a read-then-write can never hit `SQLITE_BUSY_SNAPSHOT`.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction};

use super::error::StateError;
use super::init_phase::{self, InitPhase, PhaseStatus};
use super::schema;
use crate::process::{HandleRegistration, ProcessContext};
use crate::variant::Variant;

/// Version of the state DB file name (Codex's `STATE_DB_VERSION`).
pub const STATE_DB_VERSION: u32 = 5;

/// File name of the state DB under the sqlite home (Codex's `state_5.sqlite`).
pub const STATE_DB_FILENAME: &str = "state_5.sqlite";

/// The handle type consumers receive: one shared runtime per process.
pub type StateDbHandle = Arc<StateRuntime>;

/// SQLite journal mode of the state DB.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum JournalMode {
    /// Write-ahead log (Codex's default).
    #[default]
    Wal,
    /// Rollback journal, for filesystems where WAL's shared memory is unsafe.
    Delete,
}

impl JournalMode {
    fn pragma_value(self) -> &'static str {
        match self {
            JournalMode::Wal => "wal",
            JournalMode::Delete => "delete",
        }
    }
}

/// Whether an open may create and migrate the DB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the directory and file if missing, set the journal mode, migrate.
    CreateAndMigrate,
    /// Open an existing file as it is: create nothing, migrate nothing, write nothing.
    ExistingOnly,
}

/// Where the DB lives and how connections are configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeOptions {
    pub codex_home: PathBuf,
    pub sqlite_home: PathBuf,
    pub journal_mode: JournalMode,
    pub busy_timeout: Duration,
    /// Provider recorded for rollouts whose `session_meta` names none.
    pub default_provider: String,
}

impl RuntimeOptions {
    /// Options with the sqlite home defaulting to the codex home.
    pub fn new(codex_home: impl Into<PathBuf>) -> Self {
        let codex_home = codex_home.into();
        RuntimeOptions {
            sqlite_home: codex_home.clone(),
            codex_home,
            journal_mode: JournalMode::Wal,
            busy_timeout: crate::timing::DEFAULT_BUSY_TIMEOUT,
            default_provider: crate::thread::DEFAULT_PROVIDER.to_string(),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.sqlite_home.join(STATE_DB_FILENAME)
    }
}

/// The open state DB of one process.
#[derive(Debug)]
pub struct StateRuntime {
    opts: RuntimeOptions,
    db_path: PathBuf,
    conn: Mutex<Connection>,
    ctx: Arc<ProcessContext>,
    /// The process-local high-water mark of allocated `updated_at_ms` values (Codex seeds
    /// it from `MAX(updated_at_ms)` at init; here at the first allocation).
    updated_at_mark: Mutex<Option<i64>>,
    /// What the listing reconcile remembers between two listings of this process (its
    /// directory watch). Opaque here: the state layer does not depend on the reconcile.
    listing_memo: Mutex<Option<Box<dyn Any + Send>>>,
    _registration: HandleRegistration,
}

impl StateRuntime {
    /// Opens (and with `CreateAndMigrate`, creates and migrates) the state DB.
    pub fn open(
        ctx: &Arc<ProcessContext>,
        opts: RuntimeOptions,
        mode: OpenMode,
    ) -> Result<StateDbHandle, StateError> {
        let db_path = opts.db_path();
        let registration = ctx.register_handle(&db_path)?;
        let conn = match mode {
            OpenMode::CreateAndMigrate => {
                std::fs::create_dir_all(&opts.sqlite_home).map_err(|source| StateError::Io {
                    path: opts.sqlite_home.clone(),
                    source,
                })?;
                create_and_migrate(&db_path, &opts, ctx)?
            }
            OpenMode::ExistingOnly => {
                let conn = connect(&db_path, &opts, false)?;
                schema::require_tables(&conn, &db_path)?;
                conn
            }
        };
        Ok(Arc::new(StateRuntime {
            opts,
            db_path,
            conn: Mutex::new(conn),
            ctx: ctx.clone(),
            updated_at_mark: Mutex::new(None),
            listing_memo: Mutex::new(None),
            _registration: registration,
        }))
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }
    pub fn codex_home(&self) -> &Path {
        &self.opts.codex_home
    }
    pub fn sqlite_home(&self) -> &Path {
        &self.opts.sqlite_home
    }
    pub fn options(&self) -> &RuntimeOptions {
        &self.opts
    }
    pub fn default_provider(&self) -> &str {
        &self.opts.default_provider
    }
    /// The process this handle belongs to.
    pub fn context(&self) -> &Arc<ProcessContext> {
        &self.ctx
    }

    /// Takes the listing reconcile's memory out of the handle (one listing uses it at a
    /// time; a concurrent one walks without it).
    pub fn take_listing_memo(&self) -> Option<Box<dyn Any + Send>> {
        self.listing_memo
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Puts the listing reconcile's memory back for the next listing.
    pub fn put_listing_memo(&self, memo: Box<dyn Any + Send>) {
        *self
            .listing_memo
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(memo);
    }

    /// `PRAGMA data_version` of the main connection: it changes when another connection
    /// commits, never for this one's own commits.
    pub fn data_version(&self) -> Result<i64, StateError> {
        self.read("data_version", |c| {
            c.query_row("PRAGMA data_version", [], |r| r.get(0))
        })
    }

    /// A further connection of this handle (the lease heartbeat uses one so it never
    /// queues behind a batch on the main connection). It is part of this handle, not a
    /// second handle.
    pub fn extra_connection(&self) -> Result<Connection, StateError> {
        connect(&self.db_path, &self.opts, false)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        match self.conn.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Runs a read on the main connection.
    pub fn read<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let conn = self.lock();
        f(&conn).map_err(|e| StateError::sqlite(&self.db_path, context, e))
    }

    /// Runs `f` in a write transaction: IMMEDIATE in the reference (DEFERRED only in the
    /// `deferred-writes` seeded-bug variant). Commits on `Ok`, rolls back on `Err`.
    pub fn write<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut conn = self.lock();
        write_txn(&mut conn, &self.db_path, context, self.ctx.variant(), f)
    }

    /// Maps a rusqlite error of this DB.
    pub fn err(&self, context: &'static str) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |e| StateError::sqlite(&self.db_path, context, e)
    }

    /// `PRAGMA integrity_check`: `["ok"]` for a healthy file.
    pub fn integrity_check(&self) -> Result<Vec<String>, StateError> {
        self.read("integrity_check", |c| {
            let mut stmt = c.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    /// Codex's unique-millisecond allocation for `updated_at_ms`: a candidate newer than
    /// this process's high-water mark becomes the mark; one at least a second older is kept
    /// as it is (historical values such as file mtimes); anything else (the same hot
    /// second) gets mark + 1 ms. Unique and increasing within one process only.
    pub fn allocate_updated_at_ms(&self, candidate: i64) -> Result<i64, StateError> {
        let mut mark = match self.updated_at_mark.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let current = match *mark {
            Some(m) => m,
            None => self.read("updated_at high-water mark", |c| {
                let expr = super::thread_columns::ThreadColumns::of(c)?.updated_ms_expr();
                c.query_row(
                    &format!("SELECT COALESCE(MAX({expr}), 0) FROM threads"),
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })?,
        };
        let (value, next) = if candidate > current {
            (candidate, candidate)
        } else if candidate <= current - 1000 {
            (candidate, current)
        } else {
            (current + 1, current + 1)
        };
        *mark = Some(next);
        Ok(value)
    }

    /// The journal mode the file is actually in.
    pub fn journal_mode(&self) -> Result<String, StateError> {
        self.read("journal_mode", |c| {
            c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        })
    }
}

/// Begins a transaction with the behaviour the variant dictates and runs `f` in it.
pub(crate) fn write_txn<T>(
    conn: &mut Connection,
    db_path: &Path,
    context: &'static str,
    variant: Variant,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, StateError>,
) -> Result<T, StateError> {
    let behavior = variant.decisions().write_begin();
    let tx = conn
        .transaction_with_behavior(behavior)
        .map_err(|e| StateError::sqlite(db_path, context, e))?;
    let value = f(&tx)?;
    tx.commit()
        .map_err(|e| StateError::sqlite(db_path, context, e))?;
    Ok(value)
}

/// Attempts at creating/migrating before a `Busy` error is final.
const OPEN_ATTEMPTS: u32 = 5;

/// Opens (creating if needed), sets the journal mode and migrates. Processes starting
/// together race on creating the file and switching its journal mode, where SQLite can
/// return BUSY without calling the busy handler; such attempts are retried with backoff.
fn create_and_migrate(
    db_path: &Path,
    opts: &RuntimeOptions,
    ctx: &ProcessContext,
) -> Result<Connection, StateError> {
    let mut backoff = Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        let mut phase = InitPhase::OpenState;
        let result = connect(db_path, opts, true).and_then(|mut conn| {
            set_journal_mode(&conn, db_path, opts.journal_mode)?;
            phase = InitPhase::MigrateState;
            schema::migrate(&mut conn, db_path, ctx.variant())?;
            Ok(conn)
        });
        match result {
            Err(StateError::Busy { .. }) if attempt < OPEN_ATTEMPTS => {
                tracing::info!(path = %db_path.display(), attempt, "state db busy while opening; retrying");
                std::thread::sleep(backoff);
                backoff *= 2;
                attempt += 1;
            }
            Err(err) => {
                if phase == InitPhase::MigrateState {
                    init_phase::record(ctx, InitPhase::OpenState, PhaseStatus::Success);
                }
                init_phase::record(ctx, phase, PhaseStatus::Failed(err.class()));
                return Err(err);
            }
            Ok(conn) => {
                init_phase::record(ctx, InitPhase::OpenState, PhaseStatus::Success);
                init_phase::record(ctx, InitPhase::MigrateState, PhaseStatus::Success);
                return Ok(conn);
            }
        }
    }
}

fn connect(db_path: &Path, opts: &RuntimeOptions, create: bool) -> Result<Connection, StateError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(db_path, flags)
        .map_err(|e| StateError::sqlite(db_path, "open", e))?;
    conn.busy_timeout(opts.busy_timeout)
        .map_err(|e| StateError::sqlite(db_path, "busy_timeout", e))?;
    conn.set_prepared_statement_cache_capacity(64);
    // synchronous is a per-connection setting; it writes nothing to the file.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| StateError::sqlite(db_path, "synchronous", e))?;
    // Touch the header so a file that is not a database fails here with a clear error.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| StateError::sqlite(db_path, "open", e))?;
    Ok(conn)
}

fn set_journal_mode(
    conn: &Connection,
    db_path: &Path,
    mode: JournalMode,
) -> Result<(), StateError> {
    let is_new = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| StateError::sqlite(db_path, "open", e))?
        == 0;
    if is_new {
        // Only effective before the first table exists; existing DBs are never vacuumed here.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(|e| StateError::sqlite(db_path, "auto_vacuum", e))?;
    }
    let got: String = conn
        .query_row(
            &format!("PRAGMA journal_mode = {}", mode.pragma_value()),
            [],
            |r| r.get(0),
        )
        .map_err(|e| StateError::sqlite(db_path, "journal_mode", e))?;
    if !got.eq_ignore_ascii_case(mode.pragma_value()) {
        tracing::warn!(path = %db_path.display(), wanted = mode.pragma_value(), got, "journal mode not applied");
    }
    Ok(())
}
