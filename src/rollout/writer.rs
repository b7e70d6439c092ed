//! Writes realistic rollout files for fixtures and scenarios.
//!
//! Owns [`RolloutSpec`] (what a synthetic session looks like), its deterministic rendering
//! to JSONL in Codex's line shape, and placing it on disk under a `codex_home` with a
//! matching mtime. Same spec, same bytes: nothing here reads the clock or a random source.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::layout::{active_rollout_path, archived_rollout_path, Root};
use super::line::{
    format_timestamp, KIND_EVENT_MSG, KIND_RESPONSE_ITEM, KIND_SESSION_META, KIND_TURN_CONTEXT,
};

/// Lines written per user message: turn_context, user_message, assistant reply, token_count.
const LINES_PER_TURN: usize = 4;
const BASE_INSTRUCTIONS: &str =
    "You are Codex, a coding agent. Work in the user's repository and keep changes minimal.";
const MODEL: &str = "gpt-5-codex";
const REASONING_EFFORT: &str = "medium";
const REASONING_SUMMARY: &str = "auto";
/// The sandbox of every fixture turn: one whose stored form does not depend on the machine.
const SANDBOX: &str = "read-only";
const APPROVAL_POLICY: &str = "on-request";
const MODEL_CONTEXT_WINDOW: i64 = 272_000;

/// `session_meta.git`: present when the session's cwd is inside a git repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitInfo {
    pub commit_hash: String,
    pub branch: String,
    pub repository_url: String,
}

/// Everything that determines a synthetic rollout's path and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutSpec {
    pub id: Uuid,
    /// Session start (UTC); the first line is written at this instant.
    pub created: DateTime<Utc>,
    /// The writing machine's UTC offset: decides the dated directory and the file name.
    pub utc_offset: FixedOffset,
    pub cwd: String,
    pub originator: String,
    pub cli_version: String,
    /// Bare source string (`cli`, `exec`, `vscode`, `mcp`).
    pub source: String,
    pub model_provider: String,
    pub git: Option<GitInfo>,
    /// One turn per message, in order.
    pub user_messages: Vec<String>,
    pub memory_mode: Option<String>,
    pub root: Root,
}

impl RolloutSpec {
    /// A plain CLI session in `/home/dev/project` with one user message, written in UTC to
    /// the active root.
    pub fn new(id: Uuid, created: DateTime<Utc>) -> Self {
        RolloutSpec {
            id,
            created,
            utc_offset: Utc.fix(),
            cwd: "/home/dev/project".to_string(),
            originator: "codex_cli_rs".to_string(),
            cli_version: "0.98.0".to_string(),
            source: "cli".to_string(),
            model_provider: "openai".to_string(),
            git: None,
            user_messages: vec!["Fix the flaky test in list.rs".to_string()],
            memory_mode: None,
            root: Root::Active,
        }
    }

    /// Total number of lines [`render_rollout`] writes.
    pub fn line_count(&self) -> usize {
        1 + LINES_PER_TURN * self.user_messages.len()
    }

    /// Write time of line `index` (0-based): whole seconds after `created`.
    pub fn line_time(&self, index: usize) -> DateTime<Utc> {
        i64::try_from(index)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .and_then(|offset| self.created.checked_add_signed(offset))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Write time of the last line: the file's mtime once written.
    pub fn last_line_time(&self) -> DateTime<Utc> {
        self.line_time(self.line_count() - 1)
    }
}

/// Where `spec` lives under `codex_home`: dated by local time (`created + utc_offset`) in the
/// active root, flat in the archived root.
pub fn rollout_path_for(codex_home: &Path, spec: &RolloutSpec) -> PathBuf {
    let local = spec.created.with_timezone(&spec.utc_offset).naive_local();
    match spec.root {
        Root::Active => active_rollout_path(codex_home, local, spec.id),
        Root::Archived => archived_rollout_path(codex_home, local, spec.id),
    }
}

#[derive(Serialize)]
struct SessionMetaPayload<'a> {
    id: Uuid,
    timestamp: String,
    cwd: &'a str,
    originator: &'a str,
    cli_version: &'a str,
    source: &'a str,
    model_provider: &'a str,
    base_instructions: BaseInstructions<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    git: Option<&'a GitInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_mode: Option<&'a str>,
}

#[derive(Serialize)]
struct BaseInstructions<'a> {
    text: &'a str,
}

/// A turn context in the shape Codex's reader accepts (`sandbox_policy` tagged with `type`,
/// `summary` present).
#[derive(Serialize)]
struct TurnContextPayload<'a> {
    cwd: &'a str,
    approval_policy: &'a str,
    sandbox_policy: SandboxPolicy<'a>,
    model: &'a str,
    effort: &'a str,
    summary: &'a str,
}

#[derive(Serialize)]
struct SandboxPolicy<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct UserMessagePayload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
    images: [&'a str; 0],
}

#[derive(Serialize)]
struct AssistantMessagePayload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    role: &'a str,
    content: [OutputText; 1],
}

#[derive(Serialize)]
struct OutputText {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

#[derive(Serialize)]
struct TokenCountPayload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    info: TokenInfo,
    rate_limits: Option<()>,
}

#[derive(Serialize)]
struct TokenInfo {
    total_token_usage: TokenUsage,
    last_token_usage: TokenUsage,
    model_context_window: i64,
}

/// Codex's five token fields (its reader rejects a usage without any of them).
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct TokenUsage {
    input_tokens: i64,
    cached_input_tokens: i64,
    output_tokens: i64,
    reasoning_output_tokens: i64,
    total_tokens: i64,
}

impl TokenUsage {
    fn with_total(self) -> Self {
        TokenUsage {
            total_tokens: self.input_tokens + self.output_tokens,
            ..self
        }
    }
}

/// Accumulates `{"timestamp":…,"type":…,"payload":…}` lines, keeping struct field order (a
/// `serde_json::Value` would sort the keys).
struct LineSink<'a> {
    spec: &'a RolloutSpec,
    out: String,
    index: usize,
}

impl LineSink<'_> {
    fn push(&mut self, kind: &str, payload: &impl Serialize) {
        // Serializing these plain structs cannot fail; an empty object keeps the line valid.
        let payload = serde_json::to_string(payload).unwrap_or_else(|_| "{}".to_string());
        let timestamp = format_timestamp(self.spec.line_time(self.index));
        self.out.push_str(&format!(
            r#"{{"timestamp":"{timestamp}","type":"{kind}","payload":{payload}}}"#
        ));
        self.out.push('\n');
        self.index += 1;
    }
}

/// Renders `spec` as JSONL (one `\n`-terminated line per item). Deterministic.
pub fn render_rollout(spec: &RolloutSpec) -> String {
    let mut sink = LineSink {
        spec,
        out: String::new(),
        index: 0,
    };
    sink.push(
        KIND_SESSION_META,
        &SessionMetaPayload {
            id: spec.id,
            timestamp: format_timestamp(spec.created),
            cwd: &spec.cwd,
            originator: &spec.originator,
            cli_version: &spec.cli_version,
            source: &spec.source,
            model_provider: &spec.model_provider,
            base_instructions: BaseInstructions {
                text: BASE_INSTRUCTIONS,
            },
            git: spec.git.as_ref(),
            memory_mode: spec.memory_mode.as_deref(),
        },
    );

    let mut total = TokenUsage::default();
    for message in &spec.user_messages {
        sink.push(
            KIND_TURN_CONTEXT,
            &TurnContextPayload {
                cwd: &spec.cwd,
                approval_policy: APPROVAL_POLICY,
                sandbox_policy: SandboxPolicy { kind: SANDBOX },
                model: MODEL,
                effort: REASONING_EFFORT,
                summary: REASONING_SUMMARY,
            },
        );
        sink.push(
            KIND_EVENT_MSG,
            &UserMessagePayload {
                kind: "user_message",
                message,
                images: [],
            },
        );
        sink.push(
            KIND_RESPONSE_ITEM,
            &AssistantMessagePayload {
                kind: "message",
                role: "assistant",
                content: [OutputText {
                    kind: "output_text",
                    text: assistant_reply(message),
                }],
            },
        );
        // Invented but plausible usage, growing with the message and the conversation.
        let len = i64::try_from(message.len()).unwrap_or(0);
        let last = TokenUsage {
            input_tokens: 1_200 + 16 * len + total.total_tokens / 4,
            cached_input_tokens: total.input_tokens / 2,
            output_tokens: 180 + 7 * len,
            reasoning_output_tokens: 64 + 2 * len,
            total_tokens: 0,
        }
        .with_total();
        total = TokenUsage {
            input_tokens: total.input_tokens + last.input_tokens,
            cached_input_tokens: total.cached_input_tokens + last.cached_input_tokens,
            output_tokens: total.output_tokens + last.output_tokens,
            reasoning_output_tokens: total.reasoning_output_tokens + last.reasoning_output_tokens,
            total_tokens: 0,
        }
        .with_total();
        sink.push(
            KIND_EVENT_MSG,
            &TokenCountPayload {
                kind: "token_count",
                info: TokenInfo {
                    total_token_usage: total,
                    last_token_usage: last,
                    model_context_window: MODEL_CONTEXT_WINDOW,
                },
                rate_limits: None,
            },
        );
    }
    sink.out
}

fn assistant_reply(message: &str) -> String {
    format!("I looked into \"{message}\" and made the change; the tests pass now.")
}

/// Writes `spec` under `codex_home` (creating parent directories), sets the file's mtime to
/// the last line's time, and returns the path.
pub fn write_rollout(codex_home: &Path, spec: &RolloutSpec) -> std::io::Result<PathBuf> {
    let path = rollout_path_for(codex_home, spec);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&path, render_rollout(spec))?;
    set_mtime(&path, spec.last_line_time())?;
    Ok(path)
}

/// Sets `path`'s mtime to `time` (clamped to the Unix epoch).
pub(crate) fn set_mtime(path: &Path, time: DateTime<Utc>) -> std::io::Result<()> {
    let ms = u64::try_from(time.timestamp_millis()).unwrap_or(0);
    let file = fs::File::options().write(true).open(path)?;
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::head::read_session_meta_head;
    use crate::rollout::line::parse_line;
    use crate::rollout::metadata::extract_metadata;
    use chrono::TimeZone;
    use serde_json::Value;

    fn spec() -> RolloutSpec {
        let created =
            Utc.with_ymd_and_hms(2026, 1, 27, 12, 34, 56).unwrap() + TimeDelta::milliseconds(512);
        let id = uuid::Builder::from_unix_timestamp_millis(
            u64::try_from(created.timestamp_millis()).unwrap(),
            &[3; 10],
        )
        .into_uuid();
        let mut spec = RolloutSpec::new(id, created);
        spec.user_messages = vec!["first task".into(), "second task".into()];
        spec.git = Some(GitInfo {
            commit_hash: "3f2a9c1d".into(),
            branch: "main".into(),
            repository_url: "git@github.com:example/project.git".into(),
        });
        spec
    }

    #[test]
    fn path_uses_local_time_and_root() {
        let home = Path::new("/h");
        let mut s = spec();
        s.utc_offset = FixedOffset::east_opt(12 * 3600).unwrap();
        let path = rollout_path_for(home, &s);
        assert_eq!(
            path,
            home.join(format!(
                "sessions/2026/01/28/rollout-2026-01-28T00-34-56-{}.jsonl",
                s.id
            ))
        );
        s.root = Root::Archived;
        assert_eq!(
            rollout_path_for(home, &s),
            home.join(format!(
                "archived_sessions/rollout-2026-01-28T00-34-56-{}.jsonl",
                s.id
            ))
        );
    }

    #[test]
    fn render_is_deterministic_and_shaped_like_codex() {
        let s = spec();
        let text = render_rollout(&s);
        assert_eq!(text, render_rollout(&s.clone()));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), s.line_count());
        assert!(lines[0].starts_with(
            r#"{"timestamp":"2026-01-27T12:34:56.512Z","type":"session_meta","payload":{"id":""#
        ));
        let kinds: Vec<String> = lines
            .iter()
            .map(|l| {
                let line = parse_line(l).unwrap();
                line.event_type().map_or(line.kind.clone(), str::to_owned)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "session_meta",
                "turn_context",
                "user_message",
                "response_item",
                "token_count",
                "turn_context",
                "user_message",
                "response_item",
                "token_count"
            ]
        );
        let last = parse_line(lines[8]).unwrap();
        assert_eq!(last.timestamp.as_deref(), Some("2026-01-27T12:35:04.512Z"));
    }

    #[test]
    fn written_file_reads_back_through_head_and_extraction() {
        let home = tempfile::tempdir().unwrap();
        let s = spec();
        let path = write_rollout(home.path(), &s).unwrap();
        assert_eq!(path, rollout_path_for(home.path(), &s));
        assert_eq!(
            read_session_meta_head(&path).unwrap().thread_id(),
            Some(s.id)
        );

        let m = extract_metadata(&path, "unused").unwrap().metadata;
        assert_eq!(m.id, s.id);
        assert_eq!(m.created_at_ms, s.created.timestamp_millis());
        assert_eq!(m.updated_at_ms, s.last_line_time().timestamp_millis());
        assert_eq!(m.first_user_message, "first task");
        assert_eq!(m.git_branch.as_deref(), Some("main"));
        assert_eq!(m.approval_mode, "on-request");
        assert_eq!(m.model.as_deref(), Some("gpt-5-codex"));
        assert!(m.tokens_used > 0);
    }

    #[test]
    fn token_totals_increase_and_memory_mode_is_written() {
        let mut s = spec();
        s.memory_mode = Some("disabled".into());
        let text = render_rollout(&s);
        let totals: Vec<i64> = text
            .lines()
            .filter_map(parse_line)
            .filter(|l| l.event_type() == Some("token_count"))
            .map(|l| {
                l.payload
                    .pointer("/info/total_token_usage/total_tokens")
                    .and_then(Value::as_i64)
                    .unwrap()
            })
            .collect();
        assert_eq!(totals.len(), 2);
        assert!(totals[0] > 0 && totals[1] > totals[0]);
        assert!(text
            .lines()
            .next()
            .unwrap()
            .contains(r#""memory_mode":"disabled""#));
    }
}
