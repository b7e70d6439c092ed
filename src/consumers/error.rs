//! The error type of the free-function consumers (name lookup, memory reset, git
//! metadata): a missing handle where the DB is required, a DB failure, or an unreadable
//! file. Each message names what was unavailable or which file failed.

use std::path::PathBuf;

use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// A DB-only consumer was given no handle. The text is `state db unavailable for <what>`.
    #[error("state db unavailable for {what}")]
    StateDbUnavailable { what: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("failed to read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ConsumerError {
    pub(crate) fn unavailable(what: impl Into<String>) -> Self {
        ConsumerError::StateDbUnavailable { what: what.into() }
    }
}
