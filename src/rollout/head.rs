//! The head reader: the verification primitive that tells which thread a rollout file
//! belongs to, by reading only its first few records.
//!
//! Owns [`read_session_meta_head`] and its error type. Lookups use it to check that a
//! candidate file's `session_meta.id` is the thread they are looking for; it never reads the
//! whole file and never writes.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;
use uuid::Uuid;

use super::line::{parse_line, RolloutLine};

/// How many kept records (`session_meta` / `response_item`) the head reader looks at.
pub const HEAD_RECORD_LIMIT: usize = 10;

/// The parts of a rollout's first `session_meta` that lookups and repair need.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMetaHead {
    /// `payload.id` as written (not necessarily a valid UUID).
    pub id: String,
    /// `payload.timestamp`: the session start.
    pub timestamp: Option<String>,
    pub cwd: Option<String>,
    pub model_provider: Option<String>,
    /// `payload.source` as raw JSON (a bare string or an object).
    pub source: Option<Value>,
    pub originator: Option<String>,
    pub cli_version: Option<String>,
}

impl SessionMetaHead {
    /// The id as a UUID, if it is one.
    pub fn thread_id(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.id).ok()
    }

    fn from_payload(payload: &Value) -> Option<Self> {
        let text = |key: &str| payload.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(SessionMetaHead {
            id: text("id")?,
            timestamp: text("timestamp"),
            cwd: text("cwd"),
            model_provider: text("model_provider"),
            source: payload.get("source").cloned(),
            originator: text("originator"),
            cli_version: text("cli_version"),
        })
    }
}

/// Why a rollout's head could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("rollout at {} is empty", path.display())]
    Empty { path: PathBuf },
    #[error("rollout at {} does not start with session metadata", path.display())]
    NotSessionMeta { path: PathBuf },
    #[error("failed to read rollout head at {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
}

impl HeadError {
    /// Short machine-readable reason: `empty`, `no_session_meta` or `io`.
    pub fn reason(&self) -> &'static str {
        match self {
            HeadError::Empty { .. } => "empty",
            HeadError::NotSessionMeta { .. } => "no_session_meta",
            HeadError::Io { .. } => "io",
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            HeadError::Empty { path }
            | HeadError::NotSessionMeta { path }
            | HeadError::Io { path, .. } => path,
        }
    }
}

/// Reads the first `limit` kept records of a rollout, line by line.
///
/// Blank, non-UTF-8 and unparseable lines (including a torn last line) are skipped and do not
/// count; only `session_meta` and `response_item` records are kept.
pub fn read_head_records(path: &Path, limit: usize) -> Result<Vec<RolloutLine>, HeadError> {
    let io_error = |err: std::io::Error| HeadError::Io {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let mut reader = super::reader::open_rollout(path).map_err(io_error)?;
    let mut kept = Vec::new();
    let mut buf = Vec::new();
    while kept.len() < limit {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io_error)? == 0 {
            break;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            continue;
        };
        match parse_line(text) {
            Some(line) if line.is_session_meta() || line.is_response_item() => kept.push(line),
            _ => {}
        }
    }
    Ok(kept)
}

/// Reads and verifies a rollout's head (see the module docs).
///
/// Nothing kept within [`HEAD_RECORD_LIMIT`] records → [`HeadError::Empty`]; the first kept
/// record is not a `session_meta` with a string `id` → [`HeadError::NotSessionMeta`]. The
/// thread is the one named by the FIRST `session_meta`: forked rollouts embed their parent's
/// metadata later on, and that never changes the answer.
pub fn read_session_meta_head(path: &Path) -> Result<SessionMetaHead, HeadError> {
    // Only the first kept record decides, so read no further (the limit still bounds the
    // skipped garbage: `read_head_records` counts kept records only).
    let records = read_head_records(path, 1)?;
    let first = records.first().ok_or_else(|| HeadError::Empty {
        path: path.to_path_buf(),
    })?;
    first
        .is_session_meta()
        .then(|| SessionMetaHead::from_payload(&first.payload))
        .flatten()
        .ok_or_else(|| HeadError::NotSessionMeta {
            path: path.to_path_buf(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const CHILD: &str = "019bffa1-3c5e-7d20-9a4b-2f6c1e8d0b17";
    const PARENT: &str = "019bff00-0000-7000-8000-000000000001";

    fn meta(id: &str) -> String {
        format!(
            r#"{{"timestamp":"2026-01-27T12:34:56.801Z","type":"session_meta","payload":{{"id":"{id}","timestamp":"2026-01-27T12:34:56.512Z","cwd":"/p","originator":"codex_cli_rs","cli_version":"0.98.0","source":"cli","model_provider":"openai"}}}}"#
        )
    }

    const RESPONSE: &str = r#"{"timestamp":"2026-01-27T12:35:00.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[]}}"#;

    fn write(dir: &tempfile::TempDir, content: &str) -> PathBuf {
        let path = dir.path().join("rollout.jsonl");
        fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn empty_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_session_meta_head(&write(&dir, "")).unwrap_err();
        assert!(matches!(err, HeadError::Empty { .. }));
        assert_eq!(err.reason(), "empty");
    }

    #[test]
    fn only_garbage_lines_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "garbage\n{\"half\": \n\n[1]\n");
        let err = read_session_meta_head(&path).unwrap_err();
        assert!(matches!(err, HeadError::Empty { .. }));
        assert!(err.to_string().contains("is empty"));
        assert_eq!(err.path(), path);
    }

    #[test]
    fn response_item_first_is_not_session_meta() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, &format!("{RESPONSE}\n{}\n", meta(CHILD)));
        let err = read_session_meta_head(&path).unwrap_err();
        assert!(matches!(err, HeadError::NotSessionMeta { .. }));
        assert_eq!(err.reason(), "no_session_meta");
    }

    #[test]
    fn session_meta_without_string_id_is_not_session_meta() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            r#"{"timestamp":"t","type":"session_meta","payload":{"id":42}}"#,
        );
        let err = read_session_meta_head(&path).unwrap_err();
        assert_eq!(err.reason(), "no_session_meta");
    }

    #[test]
    fn fork_keeps_the_first_session_meta_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            &format!("{}\n{}\n{RESPONSE}\n", meta(CHILD), meta(PARENT)),
        );
        let head = read_session_meta_head(&path).unwrap();
        assert_eq!(head.id, CHILD);
        assert_eq!(head.thread_id(), Some(Uuid::parse_str(CHILD).unwrap()));
        assert_eq!(head.model_provider.as_deref(), Some("openai"));
        assert_eq!(head.source, Some(Value::from("cli")));
        // Both metas are within the head; the parent's is simply not the answer.
        assert_eq!(
            read_head_records(&path, HEAD_RECORD_LIMIT).unwrap().len(),
            3
        );
    }

    #[test]
    fn torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let torn = &RESPONSE[..RESPONSE.len() / 2];
        let path = write(&dir, &format!("{}\n{torn}", meta(CHILD)));
        assert_eq!(read_session_meta_head(&path).unwrap().id, CHILD);
        assert_eq!(
            read_head_records(&path, HEAD_RECORD_LIMIT).unwrap().len(),
            1
        );
    }

    #[test]
    fn blank_and_garbage_lines_before_the_meta_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = "\n  \n\r\nnot json\n".repeat(HEAD_RECORD_LIMIT);
        content.push_str(&meta(CHILD));
        let head = read_session_meta_head(&write(&dir, &content)).unwrap();
        assert_eq!(head.id, CHILD);
        assert_eq!(head.cwd.as_deref(), Some("/p"));
    }

    #[test]
    fn non_kept_kinds_are_skipped_before_the_meta() {
        let dir = tempfile::tempdir().unwrap();
        let content = format!(
            "{}\n{}\n",
            r#"{"timestamp":"t","type":"turn_context","payload":{"cwd":"/x"}}"#,
            meta(CHILD)
        );
        assert_eq!(
            read_session_meta_head(&write(&dir, &content)).unwrap().id,
            CHILD
        );
    }

    #[test]
    fn head_reads_at_most_the_record_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = format!("{}\n", meta(CHILD));
        content.push_str(&format!("{RESPONSE}\n").repeat(HEAD_RECORD_LIMIT * 3));
        let path = write(&dir, &content);
        assert_eq!(
            read_head_records(&path, HEAD_RECORD_LIMIT).unwrap().len(),
            HEAD_RECORD_LIMIT
        );
    }

    #[test]
    fn missing_file_is_io() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.jsonl");
        let err = read_session_meta_head(&path).unwrap_err();
        assert!(matches!(err, HeadError::Io { .. }));
        assert_eq!(err.reason(), "io");
        assert!(err.to_string().contains("nope.jsonl"));
    }
}
