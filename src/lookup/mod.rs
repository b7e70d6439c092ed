//! Thread lookup and listing on top of the state DB, with the files as the truth.
//!
//! `find_thread_path` prefers a DB path whose file head names the requested thread, falls
//! back to an exact-UUID filesystem search, read-repairs the row with compare-and-swap, and
//! only as a last resort returns an unverifiable DB path. `list_threads` pages the DB with a
//! `(timestamp, id)` keyset cursor and reports rows whose file is missing instead of
//! deleting them.

mod filter;
mod find;
mod list;
mod repair;

pub use filter::ListFilter;
pub use find::{find_thread_path, find_thread_path_in, FallbackReason, LookupResult, LookupSource};
pub use list::{list_threads, list_threads_in, Cursor, ListError, ListItem, ListPage, ListRequest};
pub use repair::{read_repair, RepairOutcome};
