//! Typed errors of the state runtime, each naming the DB file and saying what to do.

use std::path::PathBuf;

use rusqlite::ErrorCode;

use crate::failpoints::FailpointError;
use crate::process::DuplicateHandle;

/// Coarse class of a SQLite failure, as Codex's init telemetry tags them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Busy,
    Locked,
    Corrupt,
    ReadOnly,
    Io,
    Migration,
    Lease,
    Injected,
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path} is not a SQLite database (corrupt or overwritten); nothing was changed. Move it aside (for example to {path}.corrupt) and start again to rebuild the index from the rollout files")]
    NotADatabase { path: PathBuf },
    #[error("cannot write to the state db at {path}: {detail}. Make the sqlite home writable, or use an open-only command")]
    ReadOnly { path: PathBuf, detail: String },
    #[error("cannot open the state db at {path}: {detail}. Check that the sqlite home exists and is a writable directory")]
    CannotOpen { path: PathBuf, detail: String },
    #[error("state db at {path} is busy: {detail} (another connection held the write lock past the busy timeout, or a stale read snapshot tried to write)")]
    Busy {
        path: PathBuf,
        detail: String,
        extended_code: i32,
    },
    #[error("state db at {path} failed during {context}: {source}")]
    Sqlite {
        path: PathBuf,
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state db at {path} has no {table} table; it is not a state db written by this tool or by Codex")]
    MissingSchema { path: PathBuf, table: &'static str },
    #[error("state db at {path} was made neither by Codex (no _sqlx_migrations table) nor by statedb-harness; its schema was left unchanged. Move it aside, or point --sqlite-home at the right directory")]
    ForeignSchema { path: PathBuf },
    #[error(
        "backfill lease at {path} is no longer held by owner {owner}; another worker took it over"
    )]
    LeaseLost { path: PathBuf, owner: String },
    #[error(transparent)]
    DuplicateHandle(#[from] DuplicateHandle),
    #[error(transparent)]
    Failpoint(#[from] FailpointError),
    #[error("i/o error at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StateError {
    /// Wraps a rusqlite error, recognising the classes a user must act on differently.
    pub fn sqlite(path: &std::path::Path, context: &'static str, source: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                StateError::NotADatabase { path }
            }
            Some(ErrorCode::ReadOnly) => StateError::ReadOnly {
                path,
                detail: source.to_string(),
            },
            Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
                StateError::CannotOpen {
                    path,
                    detail: source.to_string(),
                }
            }
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                let extended_code = match &source {
                    rusqlite::Error::SqliteFailure(e, _) => e.extended_code,
                    _ => 0,
                };
                let detail = if extended_code == rusqlite::ffi::SQLITE_BUSY_SNAPSHOT {
                    format!("{source} (SQLITE_BUSY_SNAPSHOT: a deferred transaction read an old snapshot, then tried to write)")
                } else {
                    source.to_string()
                };
                StateError::Busy {
                    path,
                    detail,
                    extended_code,
                }
            }
            _ => StateError::Sqlite {
                path,
                context,
                source,
            },
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            StateError::NotADatabase { .. } | StateError::MissingSchema { .. } => {
                ErrorClass::Corrupt
            }
            StateError::ForeignSchema { .. } => ErrorClass::Migration,
            StateError::ReadOnly { .. } => ErrorClass::ReadOnly,
            StateError::CannotOpen { .. } | StateError::Io { .. } => ErrorClass::Io,
            StateError::Busy { .. } => ErrorClass::Busy,
            StateError::LeaseLost { .. } => ErrorClass::Lease,
            StateError::Failpoint(_) => ErrorClass::Injected,
            StateError::DuplicateHandle(_) => ErrorClass::Locked,
            // `sqlite()` makes busy and locked errors `Busy`: what is left is unclassified.
            StateError::Sqlite { .. } => ErrorClass::Unknown,
        }
    }

    /// Whether this is `SQLITE_BUSY_SNAPSHOT`: a deferred transaction that read an old
    /// snapshot and then tried to write. No busy timeout retries it.
    pub fn is_busy_snapshot(&self) -> bool {
        matches!(
            self,
            StateError::Busy { extended_code, .. } if *extended_code == rusqlite::ffi::SQLITE_BUSY_SNAPSHOT
        )
    }

    pub fn is_killed(&self) -> bool {
        matches!(self, StateError::Failpoint(FailpointError::Killed { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(extended_code: std::ffi::c_int) -> StateError {
        let source = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(extended_code), None);
        StateError::sqlite(std::path::Path::new("state_5.sqlite"), "test", source)
    }

    /// A busy error caused by a stale snapshot says so (the fix is a different transaction
    /// mode, not a longer timeout); a plain busy error does not. Catches the label on the
    /// wrong one.
    #[test]
    fn a_busy_snapshot_is_named_and_a_plain_busy_is_not() {
        let snapshot = busy(rusqlite::ffi::SQLITE_BUSY_SNAPSHOT);
        let plain = busy(rusqlite::ffi::SQLITE_BUSY);
        assert!(
            matches!(&snapshot, StateError::Busy { extended_code, .. } if *extended_code == rusqlite::ffi::SQLITE_BUSY_SNAPSHOT),
            "{snapshot:?}"
        );
        assert!(
            snapshot.to_string().contains("SQLITE_BUSY_SNAPSHOT"),
            "{snapshot}"
        );
        assert!(matches!(&plain, StateError::Busy { .. }), "{plain:?}");
        assert!(
            !plain.to_string().contains("SQLITE_BUSY_SNAPSHOT"),
            "{plain}"
        );
    }
}
