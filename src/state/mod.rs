//! The state runtime: one SQLite connection set on `state_5.sqlite`, its schema and
//! migrations, and the two tables the reference uses (`threads`, `backfill_state`).
//!
//! Everything here is blocking; async callers go through `spawn_blocking`.

pub mod backfill_state;
pub mod creation;
mod error;
pub mod init_phase;
pub mod legacy_files;
mod runtime;
pub mod schema;
pub mod thread_columns;
pub mod thread_pages;
pub mod threads;

pub use error::{ErrorClass, StateError};
pub use runtime::{
    JournalMode, OpenMode, RuntimeOptions, StateDbHandle, StateRuntime, STATE_DB_FILENAME,
};

/// Runs `f` in a write transaction on a connection that is not the runtime's main one
/// (the lease heartbeat's), with the same begin behaviour.
pub fn runtime_write_txn<T>(
    conn: &mut rusqlite::Connection,
    db_path: &std::path::Path,
    variant: crate::variant::Variant,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StateError>,
) -> Result<T, StateError> {
    runtime::write_txn(conn, db_path, "extra connection write", variant, f)
}
