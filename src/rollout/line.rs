//! The JSONL line model of a rollout file: one JSON object per line with a write
//! `timestamp`, an item `type` and its `payload`.
//!
//! Owns parsing a single line into a [`RolloutLine`] and formatting line timestamps. It does
//! not interpret payloads; the head reader and metadata extraction do that.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// `type` of the first line of every rollout: the session's metadata.
pub const KIND_SESSION_META: &str = "session_meta";
/// `type` of a model/user conversation item.
pub const KIND_RESPONSE_ITEM: &str = "response_item";
/// `type` of a compaction summary.
pub const KIND_COMPACTED: &str = "compacted";
/// `type` of a per-turn context snapshot (cwd, policies, model).
pub const KIND_TURN_CONTEXT: &str = "turn_context";
/// `type` of an event (user messages, token counts, …).
pub const KIND_EVENT_MSG: &str = "event_msg";

/// The item kinds this crate understands. Lines of any other kind are treated like invalid
/// lines (skipped and, where counted, counted as parse errors), as Codex's typed reader does.
pub const KNOWN_KINDS: [&str; 5] = [
    KIND_SESSION_META,
    KIND_RESPONSE_ITEM,
    KIND_COMPACTED,
    KIND_TURN_CONTEXT,
    KIND_EVENT_MSG,
];

/// One parsed rollout line.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutLine {
    /// Write time (`YYYY-MM-DDTHH:MM:SS.mmmZ`), when the line carries one.
    pub timestamp: Option<String>,
    /// The item's `type`, one of [`KNOWN_KINDS`].
    pub kind: String,
    /// The item's `payload` (always a JSON object).
    pub payload: Value,
}

impl RolloutLine {
    pub fn is_session_meta(&self) -> bool {
        self.kind == KIND_SESSION_META
    }

    pub fn is_response_item(&self) -> bool {
        self.kind == KIND_RESPONSE_ITEM
    }

    /// `payload.type` of an `event_msg` line (`user_message`, `token_count`, …).
    pub fn event_type(&self) -> Option<&str> {
        if self.kind != KIND_EVENT_MSG {
            return None;
        }
        self.payload.get("type").and_then(Value::as_str)
    }
}

/// Parses one line. Returns `None` for anything that is not a JSON object with a known
/// string `type`, an object `payload`, and (if present) a string `timestamp`. Surrounding
/// whitespace, including a trailing `\r`, is ignored; extra fields such as `ordinal` are too.
pub fn parse_line(text: &str) -> Option<RolloutLine> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    let Value::Object(mut object) = serde_json::from_str::<Value>(trimmed).ok()? else {
        return None;
    };
    let kind = match object.get("type") {
        Some(Value::String(kind)) if KNOWN_KINDS.contains(&kind.as_str()) => kind.clone(),
        _ => return None,
    };
    let timestamp = match object.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(ts)) => Some(ts.clone()),
        Some(_) => return None,
    };
    let payload = object.remove("payload")?;
    if !payload.is_object() {
        return None;
    }
    Some(RolloutLine {
        timestamp,
        kind,
        payload,
    })
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: the millisecond UTC form used for line and session timestamps.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn parses_a_session_meta_line() {
        let line = parse_line(
            r#"{"timestamp":"2026-01-27T12:34:56.801Z","type":"session_meta","payload":{"id":"x"},"ordinal":3}"#,
        )
        .unwrap();
        assert_eq!(line.timestamp.as_deref(), Some("2026-01-27T12:34:56.801Z"));
        assert!(line.is_session_meta());
        assert_eq!(line.payload, json!({"id": "x"}));
    }

    #[test]
    fn event_type_reads_the_payload_tag() {
        let line =
            parse_line(r#"{"timestamp":"t","type":"event_msg","payload":{"type":"token_count"}}"#)
                .unwrap();
        assert_eq!(line.event_type(), Some("token_count"));
        let meta = parse_line(r#"{"type":"session_meta","payload":{"type":"x"}}"#).unwrap();
        assert_eq!(meta.event_type(), None);
    }

    #[test]
    fn rejects_invalid_and_unknown_lines() {
        let bad = [
            "",
            "   ",
            "not json",
            "[1,2]",
            r#"{"timestamp":"t","type":"session_meta","payload":{"id":"x""#,
            r#"{"timestamp":"t","type":"brand_new_kind","payload":{}}"#,
            r#"{"timestamp":"t","type":"session_meta"}"#,
            r#"{"timestamp":"t","type":"session_meta","payload":"text"}"#,
            r#"{"timestamp":5,"type":"session_meta","payload":{}}"#,
            r#"{"timestamp":"t","type":7,"payload":{}}"#,
        ];
        for text in bad {
            assert_eq!(parse_line(text), None, "{text:?}");
        }
    }

    #[test]
    fn tolerates_crlf_and_missing_timestamp() {
        let line =
            parse_line("{\"type\":\"compacted\",\"payload\":{\"message\":\"m\"}}\r").unwrap();
        assert_eq!(line.kind, KIND_COMPACTED);
        assert_eq!(line.timestamp, None);
    }

    #[test]
    fn format_timestamp_is_millisecond_utc_z() {
        let t = Utc.with_ymd_and_hms(2026, 1, 27, 12, 34, 56).unwrap()
            + chrono::Duration::milliseconds(7);
        assert_eq!(format_timestamp(t), "2026-01-27T12:34:56.007Z");
    }
}
