//! statedb-harness: a reference implementation of Codex-compatible SQLite state-DB handle
//! plumbing, and a fault-injection harness around it.
//!
//! Layers, lowest first (nothing imports upward):
//!
//! - `clock`, `timing`, `events`, `failpoints`, `variant`, `process` — per-process values
//!   passed explicitly (no globals): time, timings, event sink, failpoints, the
//!   implementation variant and the handle registry.
//! - `thread` — the thread record; `rollout` — the files, which are the truth.
//! - `state` — the SQLite runtime, schema, `threads` and `backfill_state` (fenced lease).
//! - `recovery` — a damaged DB set aside, its DB-only values salvaged and carried over.
//! - `backfill` — the lease-guarded scan; `state_db` — `init` / `try_init` / `open_existing`.
//! - `lookup` — verified path lookup, read-repair, listing.
//! - `consumers` — thread store, thread manager and sessions, name lookup, resume-last,
//!   DB-only consumers; each takes the process's `Option<StateDbHandle>`, none opens one.
//! - `entrypoints` — cli / exec / app-server / mcp-server: initialise the handle once and
//!   wire the consumers.
//! - `sqlite_home` — where the DB lives, and whether a handle answers for a home.
//! - `fixture` — deterministic homes; `cli` — the command line.

pub mod audit;
pub mod backfill;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod codex;
pub mod consumers;
pub mod defects;
pub mod entrypoints;
pub mod events;
pub mod failpoints;
pub mod faults;
pub mod fixture;
pub mod layer;
pub mod lookup;
pub mod mutants;
pub mod observe;
pub mod process;
pub mod recovery;
pub mod rollout;
pub mod scenario;
pub mod sqlite_home;
pub mod state;
pub mod state_db;
pub mod target;
pub mod thread;
pub mod timing;
pub mod variant;
