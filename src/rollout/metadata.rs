//! Full metadata extraction from one rollout file, for backfill and slow-path repair.
//!
//! Owns [`extract_metadata`]: reads every line, picks a builder (the first usable
//! `session_meta`, else the file name), then folds the items that carry thread metadata into
//! a [`ThreadMetadata`]. It never touches the database and never decides archive state; the
//! caller does both.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::codex_shape::{
    accepts_token_usage, accepts_turn_context, normalize_cwd, stored_approval,
    stored_sandbox_policy,
};
use super::layout::parse_rollout_file_name;
use super::line::{parse_line, KIND_EVENT_MSG, KIND_SESSION_META, KIND_TURN_CONTEXT};
use crate::thread::ThreadMetadata;

/// Source recorded when the builder comes from the file name (Codex's default source).
pub(crate) const FALLBACK_SOURCE: &str = "vscode";
/// First-message preview for a user message that only carries images.
const IMAGE_ONLY_PREVIEW: &str = "[Image]";

/// What [`extract_metadata`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction {
    pub metadata: ThreadMetadata,
    /// Lines that were not blank but could not be parsed (never fatal).
    pub parse_errors: usize,
}

/// Why a rollout yielded no metadata at all.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("failed to read rollout {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("empty session file: {}", path.display())]
    Empty { path: PathBuf },
    #[error("rollout missing metadata builder: {}", path.display())]
    MissingBuilder { path: PathBuf },
}

impl ExtractError {
    pub fn path(&self) -> &Path {
        match self {
            ExtractError::Io { path, .. }
            | ExtractError::Empty { path }
            | ExtractError::MissingBuilder { path } => path,
        }
    }
}

/// The line kinds extraction folds, reduced to their payloads. Response items and
/// compaction summaries are never needed, so they are not kept in memory.
enum Item {
    SessionMeta(Value),
    TurnContext(Value),
    Event(Value),
}

/// Extracts a thread's metadata from its rollout, following Codex's backfill rules.
///
/// `default_provider` fills `model_provider` when no line names one. `rollout_path` is
/// `path` as given, `archived_at_ms` is `None`, `updated_at_ms` is the file's mtime (or
/// `created_at_ms` when that is unreadable).
pub fn extract_metadata(path: &Path, default_provider: &str) -> Result<Extraction, ExtractError> {
    let io_error = |err: std::io::Error| ExtractError::Io {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let mtime_ms = std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok());

    let mut reader = super::reader::open_rollout(path).map_err(io_error)?;
    let mut items = Vec::new();
    let mut parsed = 0usize;
    let mut parse_errors = 0usize;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io_error)? == 0 {
            break;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            parse_errors += 1;
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let Some(line) = parse_line(text) else {
            parse_errors += 1;
            continue;
        };
        parsed += 1;
        match line.kind.as_str() {
            KIND_SESSION_META => items.push(Item::SessionMeta(line.payload)),
            // Codex's reader rejects a turn context in another shape: so do we.
            KIND_TURN_CONTEXT if accepts_turn_context(&line.payload) => {
                items.push(Item::TurnContext(line.payload))
            }
            KIND_TURN_CONTEXT => parse_errors += 1,
            KIND_EVENT_MSG => items.push(Item::Event(line.payload)),
            _ => {}
        }
    }
    if parsed == 0 {
        return Err(ExtractError::Empty {
            path: path.to_path_buf(),
        });
    }

    let mut metadata = items
        .iter()
        .find_map(|item| match item {
            Item::SessionMeta(payload) => builder_from_session_meta(path, payload),
            _ => None,
        })
        .or_else(|| builder_from_file_name(path))
        .ok_or_else(|| ExtractError::MissingBuilder {
            path: path.to_path_buf(),
        })?;

    let mut folder = Folder::default();
    for item in &items {
        folder.apply(&mut metadata, item);
    }
    if metadata.model_provider.is_empty() {
        metadata.model_provider = default_provider.to_string();
    }
    metadata.cwd = normalize_cwd(&metadata.cwd);
    metadata.memory_mode = folder.memory_mode;
    metadata.updated_at_ms = mtime_ms.unwrap_or(metadata.created_at_ms);
    metadata.archived_at_ms = None;
    Ok(Extraction {
        metadata,
        parse_errors,
    })
}

/// A builder from a `session_meta` payload whose id is a UUID and whose `timestamp` parses.
fn builder_from_session_meta(path: &Path, payload: &Value) -> Option<ThreadMetadata> {
    let id = Uuid::parse_str(str_field(payload, "id")?).ok()?;
    let created = parse_session_timestamp(str_field(payload, "timestamp")?)?;
    let mut metadata = ThreadMetadata::new(id, path.to_path_buf(), created.timestamp_millis());
    // Everything else the builder takes is exactly what folding this same meta sets.
    apply_session_meta(&mut metadata, payload);
    Some(metadata)
}

/// A builder from the file name: id from its UUID, creation time from its timestamp read
/// as UTC (Codex's behaviour, even though writers put local time there), default source.
fn builder_from_file_name(path: &Path) -> Option<ThreadMetadata> {
    let name = path.file_name()?.to_str()?;
    let parsed = parse_rollout_file_name(name)?;
    let created_ms = parsed.timestamp.and_utc().timestamp_millis();
    let mut metadata = ThreadMetadata::new(parsed.id, path.to_path_buf(), created_ms);
    metadata.source = FALLBACK_SOURCE.to_string();
    Some(metadata)
}

/// `%Y-%m-%dT%H-%M-%S` (as UTC) or RFC 3339.
fn parse_session_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H-%M-%S") {
        return Some(naive.and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// State carried across the fold that is not a plain overwrite of a metadata field.
#[derive(Default)]
struct Folder {
    memory_mode: Option<String>,
}

impl Folder {
    fn apply(&mut self, metadata: &mut ThreadMetadata, item: &Item) {
        match item {
            Item::SessionMeta(payload) => {
                // Forked rollouts embed the parent's session_meta: only our own counts.
                let own = str_field(payload, "id")
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .is_some_and(|id| id == metadata.id);
                if own {
                    apply_session_meta(metadata, payload);
                    if let Some(mode) = str_field(payload, "memory_mode") {
                        self.memory_mode = Some(mode.to_string());
                    }
                }
            }
            Item::TurnContext(payload) => apply_turn_context(metadata, payload),
            Item::Event(payload) => apply_event(metadata, payload),
        }
    }
}

fn apply_session_meta(metadata: &mut ThreadMetadata, payload: &Value) {
    if let Some(source) = payload.get("source").filter(|v| !v.is_null()) {
        metadata.source = serde_text(source);
    }
    if let Some(nickname) = str_field(payload, "agent_nickname") {
        metadata.agent_nickname = Some(nickname.to_string());
    }
    if let Some(role) = str_field(payload, "agent_role") {
        metadata.agent_role = Some(role.to_string());
    }
    if let Some(provider) = str_field(payload, "model_provider") {
        metadata.model_provider = provider.to_string();
    }
    if let Some(version) = str_field(payload, "cli_version").filter(|s| !s.is_empty()) {
        metadata.cli_version = version.to_string();
    }
    if let Some(cwd) = str_field(payload, "cwd").filter(|s| !s.is_empty()) {
        metadata.cwd = cwd.to_string();
    }
    if let Some(originator) = str_field(payload, "originator") {
        metadata.originator = Some(originator.to_string());
    }
    if let Some(agent_path) = str_field(payload, "agent_path") {
        metadata.agent_path = Some(agent_path.to_string());
    }
    if let Some(thread_source) = present(payload, "thread_source") {
        metadata.thread_source = Some(serde_text(thread_source));
    }
    if let Some(git) = payload.get("git").filter(|g| g.is_object()) {
        metadata.git_sha = str_field(git, "commit_hash").map(str::to_owned);
        metadata.git_branch = str_field(git, "branch").map(str::to_owned);
        metadata.git_origin_url = str_field(git, "repository_url").map(str::to_owned);
    }
}

fn apply_turn_context(metadata: &mut ThreadMetadata, payload: &Value) {
    if metadata.cwd.is_empty() {
        if let Some(cwd) = str_field(payload, "cwd") {
            metadata.cwd = cwd.to_string();
        }
    }
    if let Some(policy) = present(payload, "sandbox_policy") {
        metadata.sandbox_policy = stored_sandbox_policy(policy);
    }
    if let Some(approval) = str_field(payload, "approval_policy") {
        metadata.approval_mode = stored_approval(approval);
    }
    if let Some(model) = str_field(payload, "model") {
        metadata.model = Some(model.to_string());
    }
    // Each turn states its effort; a turn without one clears it (as Codex does).
    metadata.reasoning_effort = present(payload, "effort").map(serde_text);
}

fn apply_event(metadata: &mut ThreadMetadata, payload: &Value) {
    match str_field(payload, "type") {
        Some("token_count") => {
            let total = payload
                .pointer("/info/total_token_usage")
                .filter(|usage| accepts_token_usage(usage))
                .and_then(|usage| usage.get("total_tokens"))
                .and_then(|v| v.as_i64().or_else(|| v.as_u64().map(|_| i64::MAX)));
            if let Some(total) = total {
                metadata.tokens_used = total.max(0);
            }
        }
        Some("user_message") => {
            metadata.has_user_event = true;
            let text = str_field(payload, "message").unwrap_or("").trim();
            let has_images = payload
                .get("images")
                .and_then(Value::as_array)
                .is_some_and(|images| !images.is_empty());
            // The first message that has anything to show sets the preview; the first with
            // text sets the title. For the usual first message with text, that is one message.
            if metadata.first_user_message.is_empty() {
                if !text.is_empty() {
                    metadata.first_user_message = text.to_string();
                } else if has_images {
                    metadata.first_user_message = IMAGE_ONLY_PREVIEW.to_string();
                }
            }
            if metadata.title.is_empty() && !text.is_empty() {
                metadata.title = text.to_string();
            }
        }
        _ => {}
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A field that is present and not `null`.
fn present<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.get(key).filter(|v| !v.is_null())
}

/// Codex's storage form of an enum-like serde value: the bare string if it is a JSON
/// string, else its JSON text.
pub(crate) fn serde_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::fs;
    use std::time::{Duration, SystemTime};

    const ID: &str = "019bffa1-3c5e-7d20-9a4b-2f6c1e8d0b17";
    const PARENT: &str = "019bff00-0000-7000-8000-000000000001";

    fn meta_line(id: &str, extra: &str) -> String {
        format!(
            r#"{{"timestamp":"2026-01-27T12:34:56.801Z","type":"session_meta","payload":{{"id":"{id}","timestamp":"2026-01-27T12:34:56.512Z","cwd":"/home/dev/project","originator":"codex_cli_rs","cli_version":"0.98.0","source":"cli","model_provider":"openai","git":{{"commit_hash":"3f2a9c1d","branch":"main","repository_url":"git@github.com:example/project.git"}}{extra}}}}}"#
        )
    }

    fn user_line(message: &str, images: &str) -> String {
        format!(
            r#"{{"timestamp":"2026-01-27T12:35:02.114Z","type":"event_msg","payload":{{"type":"user_message","message":"{message}","images":{images}}}}}"#
        )
    }

    const TURN: &str = r#"{"timestamp":"2026-01-27T12:35:02.000Z","type":"turn_context","payload":{"cwd":"/other","approval_policy":"never","sandbox_policy":{"type":"danger-full-access"},"model":"gpt-5-codex","effort":"high","summary":"auto"}}"#;
    const TOKENS: &str = r#"{"timestamp":"2026-01-27T12:35:09.000Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":1000,"cached_input_tokens":0,"output_tokens":234,"reasoning_output_tokens":0,"total_tokens":1234}}}}"#;
    /// The shapes older fixtures wrote, which Codex's reader rejects.
    const LEGACY_TURN: &str = r#"{"timestamp":"2026-01-27T12:35:02.000Z","type":"turn_context","payload":{"cwd":"/other","approval_policy":"never","sandbox_policy":{"mode":"workspace-write"},"model":"gpt-5-codex","effort":"high"}}"#;
    const LEGACY_TOKENS: &str = r#"{"timestamp":"2026-01-27T12:35:09.000Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"total_tokens":1234}}}}"#;

    fn file_name() -> String {
        format!("rollout-2026-01-27T13-34-56-{ID}.jsonl")
    }

    fn write(dir: &tempfile::TempDir, lines: &[String]) -> PathBuf {
        let path = dir.path().join(file_name());
        fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    fn set_mtime(path: &Path, ms: u64) {
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
            .unwrap();
    }

    #[test]
    fn extract_uses_session_meta() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            &[
                meta_line(ID, ""),
                TURN.to_string(),
                user_line("  Fix the flaky test  ", "[]"),
                TOKENS.to_string(),
            ],
        );
        set_mtime(&path, 1_769_517_309_000);
        let out = extract_metadata(&path, "fallback-provider").unwrap();
        let m = &out.metadata;
        let created = Utc
            .with_ymd_and_hms(2026, 1, 27, 12, 34, 56)
            .unwrap()
            .timestamp_millis()
            + 512;
        assert_eq!(out.parse_errors, 0);
        assert_eq!(m.id, Uuid::parse_str(ID).unwrap());
        assert_eq!(m.rollout_path, path);
        assert_eq!(m.created_at_ms, created);
        assert_eq!(m.updated_at_ms, 1_769_517_309_000);
        assert_eq!(m.source, "cli");
        assert_eq!(m.model_provider, "openai");
        assert_eq!(
            m.cwd, "/home/dev/project",
            "turn_context cwd must not override"
        );
        assert_eq!(m.cli_version, "0.98.0");
        assert_eq!(m.git_sha.as_deref(), Some("3f2a9c1d"));
        assert_eq!(m.git_branch.as_deref(), Some("main"));
        assert_eq!(
            m.git_origin_url.as_deref(),
            Some("git@github.com:example/project.git")
        );
        assert_eq!(m.sandbox_policy, r#"{"type":"disabled"}"#);
        assert_eq!(m.approval_mode, "never");
        assert_eq!(m.model.as_deref(), Some("gpt-5-codex"));
        assert_eq!(m.reasoning_effort.as_deref(), Some("high"));
        assert_eq!(m.first_user_message, "Fix the flaky test");
        assert_eq!(m.title, "Fix the flaky test");
        assert!(m.has_user_event);
        assert_eq!(m.tokens_used, 1234);
        assert_eq!(m.memory_mode, None);
        assert_eq!(m.archived_at_ms, None);
    }

    #[test]
    fn legacy_turn_context_and_token_count_are_ignored_as_codex_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            &[
                meta_line(ID, ""),
                LEGACY_TURN.to_string(),
                user_line("hello", "[]"),
                LEGACY_TOKENS.to_string(),
            ],
        );
        let out = extract_metadata(&path, "p").unwrap();
        assert_eq!(
            out.parse_errors, 1,
            "the legacy turn context is a parse error"
        );
        let m = &out.metadata;
        assert_eq!(m.model, None);
        assert_eq!(m.reasoning_effort, None);
        assert_eq!(m.tokens_used, 0);
        assert_eq!(m.sandbox_policy, crate::thread::DEFAULT_SANDBOX_POLICY);
        assert_eq!(m.approval_mode, "on-request");
    }

    #[test]
    fn latest_memory_mode_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            &[
                meta_line(ID, r#","memory_mode":"disabled""#),
                user_line("hi", "[]"),
                meta_line(ID, r#","memory_mode":"polluted""#),
                meta_line(PARENT, r#","memory_mode":"parent-mode""#),
            ],
        );
        let out = extract_metadata(&path, "openai").unwrap();
        assert_eq!(out.metadata.memory_mode.as_deref(), Some("polluted"));
    }

    #[test]
    fn falls_back_to_file_name_with_only_compacted_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            &[r#"{"timestamp":"2026-01-27T12:40:00.000Z","type":"compacted","payload":{"message":"summary"}}"#.to_string()],
        );
        let out = extract_metadata(&path, "openai").unwrap();
        let m = &out.metadata;
        assert_eq!(m.id, Uuid::parse_str(ID).unwrap());
        // The name's (local) timestamp is read as UTC, seconds precision.
        assert_eq!(
            m.created_at_ms,
            Utc.with_ymd_and_hms(2026, 1, 27, 13, 34, 56)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(m.source, "vscode");
        assert_eq!(m.model_provider, "openai");
        assert!(!m.has_user_event);
    }

    #[test]
    fn garbled_middle_line_is_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            &[
                meta_line(ID, ""),
                r#"{"timestamp":"2026-01-27T12:35:00.000Z","type":"event_msg","pay"#.to_string(),
                String::new(),
                "\u{0}\u{1}binary".to_string(),
                user_line("after the garbage", "[]"),
            ],
        );
        let out = extract_metadata(&path, "openai").unwrap();
        assert_eq!(out.parse_errors, 2, "blank lines are not errors");
        assert_eq!(out.metadata.first_user_message, "after the garbage");
    }

    #[test]
    fn fork_parent_meta_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let parent = format!(
            r#"{{"timestamp":"2026-01-27T12:34:57.000Z","type":"session_meta","payload":{{"id":"{PARENT}","timestamp":"2026-01-20T08:00:00.000Z","cwd":"/parent","cli_version":"0.1.0","source":"exec","model_provider":"azure","memory_mode":"disabled","git":{{"commit_hash":"parentsha","branch":"parent","repository_url":"u"}}}}}}"#
        );
        let path = write(&dir, &[meta_line(ID, ""), parent]);
        let m = extract_metadata(&path, "openai").unwrap().metadata;
        assert_eq!(m.id, Uuid::parse_str(ID).unwrap());
        assert_eq!(m.cwd, "/home/dev/project");
        assert_eq!(m.source, "cli");
        assert_eq!(m.model_provider, "openai");
        assert_eq!(m.cli_version, "0.98.0");
        assert_eq!(m.git_sha.as_deref(), Some("3f2a9c1d"));
        assert_eq!(m.memory_mode, None);
    }

    #[test]
    fn non_string_source_is_stored_as_json_text() {
        let dir = tempfile::tempdir().unwrap();
        let line = meta_line(ID, "").replace(
            r#""source":"cli""#,
            r#""source":{"subagent":{"other":"x"}}"#,
        );
        let path = write(&dir, &[line]);
        let m = extract_metadata(&path, "openai").unwrap().metadata;
        assert_eq!(m.source, r#"{"subagent":{"other":"x"}}"#);
    }

    #[test]
    fn image_only_first_message_sets_preview_but_not_title() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            &[
                meta_line(ID, ""),
                user_line("", r#"["data:image/png;base64,AAAA"]"#),
            ],
        );
        let m = extract_metadata(&path, "openai").unwrap().metadata;
        assert_eq!(m.first_user_message, "[Image]");
        assert_eq!(m.title, "");
        assert!(m.has_user_event);
    }

    #[test]
    fn missing_provider_uses_default_and_negative_tokens_clamp() {
        let dir = tempfile::tempdir().unwrap();
        let line = meta_line(ID, "").replace(r#""model_provider":"openai","#, "");
        let tokens = TOKENS.replace("1234", "-5");
        let path = write(&dir, &[line, tokens]);
        let m = extract_metadata(&path, "default-p").unwrap().metadata;
        assert_eq!(m.model_provider, "default-p");
        assert_eq!(m.tokens_used, 0);
    }

    #[test]
    fn only_garbage_is_empty_and_unnamed_file_has_no_builder() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = write(&dir, &["nope".to_string(), "{".to_string()]);
        assert!(matches!(
            extract_metadata(&garbage, "openai"),
            Err(ExtractError::Empty { .. })
        ));

        let unnamed = dir.path().join("notes.jsonl");
        fs::write(&unnamed, TOKENS).unwrap();
        let err = extract_metadata(&unnamed, "openai").unwrap_err();
        assert!(matches!(err, ExtractError::MissingBuilder { .. }));
        assert!(err.to_string().contains("notes.jsonl"));
    }

    #[test]
    fn missing_file_is_io_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.jsonl");
        let err = extract_metadata(&path, "openai").unwrap_err();
        assert!(matches!(err, ExtractError::Io { .. }));
        assert_eq!(err.path(), path);
    }
}
