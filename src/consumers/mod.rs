//! Consumers of the state DB: everything above lookup that a process wires together once
//! it has (or has failed to get) its handle.
//!
//! Each consumer receives the process's `Option<StateDbHandle>` (a bare handle where the DB
//! is required) and, where it needs the variant or failpoints, the process's
//! `Arc<ProcessContext>`. No consumer opens the DB itself; with `None` each keeps its
//! filesystem fallback or returns an explicit "state db unavailable for …" error.
//!
//! This module only declares the submodules and re-exports their main items:
//! - [`thread_store`]: read, list, archive and unarchive threads;
//! - [`thread_manager`]: hands the store and the handle to the sessions it starts;
//! - [`name_lookup`]: resolve a thread by its user-visible name;
//! - [`resume_last`]: the newest thread to resume (`resume --last`);
//! - [`memory_reset`], [`git_metadata`]: DB-only consumers;
//! - [`session_index`]: the legacy `session_index.jsonl` name index they share;
//! - [`error`]: the error type of the free-function consumers.

pub mod error;
pub mod git_metadata;
pub mod memory_reset;
pub mod name_lookup;
pub mod resume_last;
pub mod session_index;
pub mod thread_manager;
pub mod thread_store;

pub use error::ConsumerError;
pub use git_metadata::{update_thread_git_metadata, GitFields, GitMetadataPatch};
pub use memory_reset::reset_memory;
pub use name_lookup::{find_thread_by_name, NamedThread};
pub use resume_last::find_latest_thread;
pub use session_index::{read_session_index, thread_name_for, SessionIndexEntry};
pub use thread_manager::{AgentIdentity, Session, ThreadManager};
pub use thread_store::{
    ArchiveOutcome, LocalThreadStore, ReadThreadRequest, StoredHistory, StoredThread,
    ThreadReadSource, ThreadStoreError,
};
