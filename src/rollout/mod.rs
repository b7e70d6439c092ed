//! Rollout files: the append-only JSONL session logs that are the source of truth the state
//! DB mirrors.
//!
//! This module only declares the submodules and re-exports their main items:
//! - [`layout`]: roots, file names, dated paths, watermarks (pure path arithmetic);
//! - [`line`](mod@line): the JSONL line model;
//! - [`head`]: the head reader that verifies which thread a file belongs to;
//! - [`metadata`]: full metadata extraction for backfill and slow repair;
//! - [`writer`]: deterministic realistic rollouts for fixtures and scenarios;
//! - [`search`]: filesystem collection and exact-UUID lookup.

pub mod codex_shape;
pub mod head;
pub mod layout;
pub mod line;
pub mod metadata;
pub mod reader;
pub mod search;
pub mod writer;

pub use head::{read_session_meta_head, HeadError, SessionMetaHead, HEAD_RECORD_LIMIT};
pub use layout::{
    active_rollout_path, archived_rollout_path, is_rollout_file_name, parse_rollout_file_name,
    rollout_file_name, root_of, uuid_v7_unix_ms, watermark_for, ParsedRolloutName, Root,
    ARCHIVED_SESSIONS_SUBDIR, SESSIONS_SUBDIR,
};
pub use line::{format_timestamp, parse_line, RolloutLine};
pub use metadata::{extract_metadata, ExtractError, Extraction};
pub use search::{collect_rollout_files, find_rollout_by_id, SearchOutcome, SearchVia};
pub use writer::{render_rollout, rollout_path_for, write_rollout, GitInfo, RolloutSpec};
